package server

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/connector"
	"github.com/latchauth/latch/connector/ldap"
	"github.com/latchauth/latch/connector/oauth2"
	"github.com/latchauth/latch/connector/oidc"
	"github.com/latchauth/latch/storage"
	"github.com/latchauth/latch/templates"
)

// The upstream identity providers (connectors) the login page offers. They
// live in the database (config.yaml's are upserted at start, the CLI and
// the admin API add more), and every instance reads the list again after
// at most upstreamsTTL, so a connector added or deleted on one instance is
// offered or refused by all within that time. A connector whose stored
// config did not change is kept, with what it learned (an OIDC upstream's
// discovery document and keys).

const (
	pathUpstreamPrefix = "/login/"
	// upstreamsTTL is how long the list is trusted (SPEC: at most 5 s).
	upstreamsTTL = 5 * time.Second
	// upstreamAttemptLifespan is how long a person has at the upstream.
	upstreamAttemptLifespan = 10 * time.Minute
	// ceremonyUpstream is the kind of an upstream sign-in's ceremony row.
	ceremonyUpstream = "upstream"
	// amrFederated is the amr of a sign-in at an upstream (README:
	// RFC 8176 has no value for it; "fed" is Latch's).
	amrFederated = "fed"
)

// upstream is one connector, built.
type upstream struct {
	cfg       config.Connector
	stored    []byte // the stored config it was built from
	redirect  connector.RedirectConnector
	password  connector.PasswordConnector
	refresher connector.Refresher
}

// upstreams is the cached list.
type upstreams struct {
	mu     sync.Mutex
	loaded time.Time
	list   []*upstream
}

// connectorStore is the store's Connectors capability, or nil.
func (s *Server) connectorStore() storage.Connectors {
	cs, _ := s.store.(storage.Connectors)
	return cs
}

// upstreamList returns the connectors, by id. A stored connector that
// cannot be built (a type this binary lacks) is logged and left out.
func (s *Server) upstreamList(ctx context.Context) ([]*upstream, error) {
	cs := s.connectorStore()
	if cs == nil {
		return nil, nil
	}
	u := &s.upstreams
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.loaded.IsZero() && s.now().Sub(u.loaded) < upstreamsTTL {
		return u.list, nil
	}
	rows, err := cs.ListConnectors(ctx)
	if err != nil {
		return nil, err
	}
	old := map[string]*upstream{}
	for _, up := range u.list {
		old[up.cfg.ID] = up
	}
	list := make([]*upstream, 0, len(rows))
	for _, row := range rows {
		if up, ok := old[row.ID]; ok && bytes.Equal(up.stored, row.Config) {
			list = append(list, up)
			continue
		}
		up, err := s.buildUpstream(row)
		if err != nil {
			s.log.WarnContext(ctx, "connector left out", "connector", row.ID, "error", err)
			continue
		}
		list = append(list, up)
	}
	u.list, u.loaded = list, s.now()
	return list, nil
}

// findUpstream returns the connector with that id, or nil.
func (s *Server) findUpstream(ctx context.Context, id string) (*upstream, error) {
	list, err := s.upstreamList(ctx)
	if err != nil {
		return nil, err
	}
	for _, up := range list {
		if up.cfg.ID == id {
			return up, nil
		}
	}
	return nil, nil
}

// UpstreamRedirectURI is a connector's redirect URI at its upstream.
func UpstreamRedirectURI(issuer, id string) string {
	return issuer + pathUpstreamPrefix + id + "/callback"
}

// buildUpstream makes the connector of a stored row: the one place that
// knows which package serves which type.
func (s *Server) buildUpstream(row *storage.Connector) (*upstream, error) {
	c, err := config.ParseConnector(row.Config)
	if err != nil {
		return nil, err
	}
	redirect := UpstreamRedirectURI(s.cfg.Issuer, c.ID)
	rules := connector.Rules{AllowedDomains: c.AllowedDomains, AllowedGroups: c.AllowedGroups}
	var impl any
	switch {
	case c.Type == "oidc":
		impl, err = oidc.New(oidc.Config{Issuer: c.Issuer, ClientID: c.ClientID, ClientSecret: c.ClientSecret, RedirectURL: redirect,
			Scopes: c.Scopes, UserInfo: c.UserInfo, Prompt: c.Prompt, Rules: rules,
			Claims: oidc.Claims{Username: c.Claims.Username, Email: c.Claims.Email, EmailVerified: c.Claims.EmailVerified,
				Name: c.Claims.Name, Groups: c.Claims.Groups}})
	case c.Type == "oauth2" && c.Preset == "github":
		impl, err = oauth2.NewGitHub(oauth2.GitHubConfig{BaseURL: c.BaseURL, APIURL: c.APIURL, ClientID: c.ClientID,
			ClientSecret: c.ClientSecret, RedirectURL: redirect, Scopes: c.Scopes, Rules: rules})
	case c.Type == "oauth2":
		impl, err = oauth2.New(oauth2.Config{AuthURL: c.AuthURL, TokenURL: c.TokenURL, UserInfoURL: c.UserInfoURL,
			ClientID: c.ClientID, ClientSecret: c.ClientSecret, RedirectURL: redirect, Scopes: c.Scopes, Rules: rules,
			Claims: oauth2.Claims{Subject: c.Claims.Subject, Username: c.Claims.Username, Email: c.Claims.Email,
				EmailVerified: c.Claims.EmailVerified, Name: c.Claims.Name, Groups: c.Claims.Groups}})
	case c.Type == "ldap":
		impl, err = ldap.New(c.LDAPConfig(), s.log.With("connector", c.ID))
	default:
		return nil, fmt.Errorf("type %s is not built in", c.Type)
	}
	if err != nil {
		return nil, err
	}
	up := &upstream{cfg: c, stored: row.Config}
	up.redirect, _ = impl.(connector.RedirectConnector)
	up.password, _ = impl.(connector.PasswordConnector)
	up.refresher, _ = impl.(connector.Refresher)
	return up, nil
}

// connectorButtons are the login page's buttons for the authorization
// request waiting under challenge.
func (s *Server) connectorButtons(ctx context.Context, challenge string) []templates.ConnectorButton {
	list, err := s.upstreamList(ctx)
	if err != nil {
		// The password form still works; the page says nothing of it.
		s.log.ErrorContext(ctx, "list connectors", "error", err)
		return nil
	}
	out := make([]templates.ConnectorButton, 0, len(list))
	for _, up := range list {
		out = append(out, templates.ConnectorButton{Name: up.cfg.Name, URL: upstreamStart(up.cfg.ID, challenge)})
	}
	return out
}

// upstreamStart is where a connector's button goes.
func upstreamStart(id, challenge string) string {
	return pathUpstreamPrefix + id + "?challenge=" + url.QueryEscape(challenge)
}
