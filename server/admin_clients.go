package server

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/gorilla/mux"

	"github.com/latchauth/latch/clients"
)

// adminClientIn is the body of POST and PUT /admin/clients: the client's
// own JSON (embedded, so a field added to clients.Client is accepted here
// at once) and optionally a secret chosen by the caller. created_at and
// updated_at are accepted, so a GET can be edited and sent back, and
// ignored.
type adminClientIn struct {
	clients.Client
	Secret string `json:"client_secret,omitempty"`
}

// adminClientOut is a client as the admin API answers it. The secret
// hashes are never part of it (json:"-"); client_secret is the clear
// secret, only in the answer that generated it.
type adminClientOut struct {
	*clients.Client
	Secret string `json:"client_secret,omitempty"`
}

// clientOut shows c with empty lists as [] rather than null.
func clientOut(c *clients.Client, secret string) adminClientOut {
	v := *c
	v.TokenEndpointAuthMethod = c.GetTokenEndpointAuthMethod() // "" means the default: show it
	clients.Defaults(&v)                                       // rows stored before lists were always [] may hold null
	return adminClientOut{Client: &v, Secret: secret}
}

func (s *Server) clientManager() *clients.Manager {
	return &clients.Manager{Store: s.store, Hasher: s.cfg.Hasher, Rules: s.clientRules()}
}

func clientWhat(id string) string { return fmt.Sprintf("client %q", id) }

// handleAdminListClients is GET /admin/clients: a page of clients by ID.
func (s *Server) handleAdminListClients(w http.ResponseWriter, r *http.Request) {
	p, ok := readAdminPage(w, r.URL.Query())
	if !ok {
		return
	}
	list, err := s.store.ListClientsPage(r.Context(), p.after, p.limit+1)
	if err != nil {
		s.writeAdminError(w, r, "client list", err)
		return
	}
	items := make([]adminClientOut, len(list))
	for i, c := range list {
		items[i] = clientOut(c, "")
	}
	writeJSON(w, http.StatusOK, adminPageOf(items, p, func(c adminClientOut) string { return c.ID }))
}

// handleAdminCreateClient is POST /admin/clients. A confidential client
// without a client_secret gets a generated one, answered once; a chosen
// one is hashed with argon2id and not echoed.
func (s *Server) handleAdminCreateClient(w http.ResponseWriter, r *http.Request) {
	var in adminClientIn
	if !readAdminBody(w, r, &in) {
		return
	}
	c := in.Client
	if c.IsPublic() && in.Secret != "" {
		adminBadRequest(w, "The request is not valid: see fields.",
			clients.FieldError{Field: "client_secret", Reason: "must be empty for a public client (token_endpoint_auth_method: none)"})
		return
	}
	var secret string
	var err error
	create := func() { secret, err = s.clientManager().Create(r.Context(), &c, in.Secret) }
	if in.Secret != "" {
		s.boundHashing(create) // a chosen secret is hashed with argon2id
	} else {
		create()
	}
	if err != nil {
		s.writeAdminError(w, r, clientWhat(c.ID), err)
		return
	}
	s.log.InfoContext(r.Context(), "admin API: client created", "client_id", c.ID)
	if in.Secret != "" {
		secret = ""
	}
	w.Header().Set("Location", s.url("/admin/clients/"+url.PathEscape(c.ID)))
	writeJSON(w, http.StatusCreated, clientOut(&c, secret))
}

// handleAdminGetClient is GET /admin/clients/{id}.
func (s *Server) handleAdminGetClient(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	c, err := s.clientManager().Get(r.Context(), id)
	if err != nil {
		s.writeAdminError(w, r, clientWhat(id), err)
		return
	}
	writeJSON(w, http.StatusOK, clientOut(c, ""))
}

// handleAdminUpdateClient is PUT /admin/clients/{id}: the body replaces
// every setting; the secret stays unless client_secret sets a new one
// (rotate with POST .../secret to have one generated).
func (s *Server) handleAdminUpdateClient(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	var in adminClientIn
	if !readAdminBody(w, r, &in) {
		return
	}
	if in.ID != "" && in.ID != id {
		adminBadRequest(w, "The request is not valid: see fields.",
			clients.FieldError{Field: "client_id", Reason: fmt.Sprintf("must be %q, the client of the path, or left out", id)})
		return
	}
	c := in.Client
	c.ID = id
	if in.Secret != "" {
		if c.IsPublic() {
			adminBadRequest(w, "The request is not valid: see fields.",
				clients.FieldError{Field: "client_secret", Reason: "must be empty for a public client (token_endpoint_auth_method: none)"})
			return
		}
		var hash string
		var err error
		s.boundHashing(func() { hash, err = clients.HashChosen(in.Secret) })
		if err != nil {
			s.writeAdminError(w, r, clientWhat(id), err)
			return
		}
		c.SetSecret(in.Secret, hash)
	}
	m := s.clientManager()
	err := s.adminTx(r.Context(), func(ctx context.Context) error {
		// Manager.Update keeps the secret hash but not the RFC 7592
		// registration token hash: keep it too, or an admin edit would
		// lock a dynamically registered client out of its registration.
		old, err := m.Get(ctx, id)
		if err != nil {
			return err
		}
		c.RegistrationTokenHash = old.RegistrationTokenHash
		return m.Update(ctx, &c)
	})
	if err != nil {
		s.writeAdminError(w, r, clientWhat(id), err)
		return
	}
	s.log.InfoContext(r.Context(), "admin API: client updated", "client_id", id)
	writeJSON(w, http.StatusOK, clientOut(&c, ""))
}

// handleAdminDeleteClient is DELETE /admin/clients/{id}: the client and
// every token, code and session issued to it go at once.
func (s *Server) handleAdminDeleteClient(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	if err := s.clientManager().Delete(r.Context(), id); err != nil {
		s.writeAdminError(w, r, clientWhat(id), err)
		return
	}
	s.log.InfoContext(r.Context(), "admin API: client deleted", "client_id", id)
	writeAdminNoContent(w)
}

// handleAdminRotateSecret is POST /admin/clients/{id}/secret: a new
// generated secret, answered once; the old one stops working at once.
func (s *Server) handleAdminRotateSecret(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	m := s.clientManager()
	c, err := m.Get(r.Context(), id)
	if err != nil {
		s.writeAdminError(w, r, clientWhat(id), err)
		return
	}
	if method := c.GetTokenEndpointAuthMethod(); !clients.NeedsSecret(method) {
		adminBadRequest(w, fmt.Sprintf("Client %q authenticates with %s and has no secret to rotate.", id, method))
		return
	}
	var secret string
	err = s.adminTx(r.Context(), func(ctx context.Context) error {
		var err error
		if secret, err = m.RotateSecret(ctx, id); err != nil {
			return err
		}
		c, err = m.Get(ctx, id) // as stored, with its new updated_at
		return err
	})
	if err != nil {
		s.writeAdminError(w, r, clientWhat(id), err)
		return
	}
	s.log.InfoContext(r.Context(), "admin API: client secret rotated", "client_id", id)
	writeJSON(w, http.StatusOK, clientOut(c, secret))
}
