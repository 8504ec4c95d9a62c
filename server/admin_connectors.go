package server

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/storage"
)

// /admin/connectors: the upstream identity providers. A connector is
// written with the keys of one config.yaml connectors entry (as JSON);
// what is read back never holds its client secret (nor any other secret
// of its config): only whether one is set.

// adminConnector is a connector as the admin API shows it.
type adminConnector struct {
	ID              string   `json:"id"`
	Type            string   `json:"type"`
	Name            string   `json:"name"`
	Source          string   `json:"source"` // config | api
	RedirectURI     string   `json:"redirect_uri"`
	Issuer          string   `json:"issuer,omitempty"`
	Preset          string   `json:"preset,omitempty"`
	BaseURL         string   `json:"base_url,omitempty"`
	ClientID        string   `json:"client_id,omitempty"`
	ClientSecretSet bool     `json:"client_secret_set"`
	Scopes          []string `json:"scopes"`
	LinkByEmail     bool     `json:"link_by_email"`
	RefreshCheck    bool     `json:"refresh_check"`
	// ldap: where the directory is and who searches it.
	Host            string `json:"host,omitempty"`
	BindDN          string `json:"bind_dn,omitempty"`
	BindPasswordSet bool   `json:"bind_password_set,omitempty"`
}

func (s *Server) connectorOut(k *storage.Connector) adminConnector {
	out := adminConnector{ID: k.ID, Type: k.Type, Name: k.Name, Source: k.Source,
		RedirectURI: UpstreamRedirectURI(s.cfg.Issuer, k.ID), Scopes: []string{}}
	if c, err := config.ParseConnector(k.Config); err == nil {
		out.Issuer, out.Preset, out.BaseURL, out.ClientID = c.Issuer, c.Preset, c.BaseURL, c.ClientID
		out.ClientSecretSet, out.LinkByEmail, out.RefreshCheck = c.ClientSecret != "", c.LinkByEmail, c.ChecksRefresh()
		out.Scopes = adminStrings(c.Scopes)
		out.Host, out.BindDN, out.BindPasswordSet = c.LDAP.Host, c.LDAP.BindDN, c.LDAP.BindPassword != ""
	}
	return out
}

// adminConnectors is the store's Connectors capability, or it answers 501.
func (s *Server) adminConnectors(w http.ResponseWriter) storage.Connectors {
	cs := s.connectorStore()
	if cs == nil {
		writeJSON(w, http.StatusNotImplemented, adminError{Error: "not_implemented", Description: "This store keeps no connectors."})
	}
	return cs
}

func connectorWhat(id string) string { return "connector " + `"` + id + `"` }

func (s *Server) handleAdminListConnectors(w http.ResponseWriter, r *http.Request) {
	cs := s.adminConnectors(w)
	if cs == nil {
		return
	}
	all, err := cs.ListConnectors(r.Context())
	if err != nil {
		s.writeAdminError(w, r, "connectors", err)
		return
	}
	out := make([]adminConnector, 0, len(all))
	for _, k := range all {
		out = append(out, s.connectorOut(k))
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
}

func (s *Server) handleAdminGetConnector(w http.ResponseWriter, r *http.Request) {
	cs := s.adminConnectors(w)
	if cs == nil {
		return
	}
	id := mux.Vars(r)["id"]
	k, err := cs.GetConnector(r.Context(), id)
	if err != nil {
		s.writeAdminError(w, r, connectorWhat(id), err)
		return
	}
	writeJSON(w, http.StatusOK, s.connectorOut(k))
}

// handleAdminCreateConnector is POST /admin/connectors: 201 with the
// connector, 409 when the id is taken.
func (s *Server) handleAdminCreateConnector(w http.ResponseWriter, r *http.Request) {
	cs := s.adminConnectors(w)
	if cs == nil {
		return
	}
	var raw json.RawMessage
	if !readAdminBody(w, r, &raw) {
		return
	}
	c, err := config.ParseConnector(raw)
	if err != nil {
		adminBadRequest(w, err.Error())
		return
	}
	rec, err := ConnectorRecord(c, ConnectorFromAPI)
	if err == nil {
		err = cs.CreateConnector(r.Context(), rec)
	}
	if err != nil {
		s.writeAdminError(w, r, connectorWhat(c.ID), err)
		return
	}
	s.log.InfoContext(r.Context(), "admin API: connector created", "connector", c.ID)
	writeJSON(w, http.StatusCreated, s.connectorOut(rec))
}

func (s *Server) handleAdminDeleteConnector(w http.ResponseWriter, r *http.Request) {
	cs := s.adminConnectors(w)
	if cs == nil {
		return
	}
	id := mux.Vars(r)["id"]
	if err := cs.DeleteConnector(r.Context(), id); err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			s.log.ErrorContext(r.Context(), "admin API: delete connector", "error", err)
		}
		s.writeAdminError(w, r, connectorWhat(id), err)
		return
	}
	s.log.InfoContext(r.Context(), "admin API: connector deleted", "connector", id)
	writeAdminNoContent(w)
}
