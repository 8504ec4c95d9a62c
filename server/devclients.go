package server

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/ory/fosite"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/storage"
)

// Dev mode's clients, as a mock server's users expect: any client id works
// without registering it. The authorization, PAR, device authorization and
// token endpoints create an unknown client on first use, and grow a client
// they created to fit what it asks for (a loopback redirect URI, a scope).
// Only in Config.DevMode (`latch serve --dev`); a client registered any
// other way is never changed.
const (
	// devMaxClients caps the clients dev mode creates: each costs a row
	// and, with a secret, an argon2id hash.
	devMaxClients = 1000
	// devMaxScopes and devMaxRedirects cap what one client may grow to.
	devMaxScopes    = 50
	devMaxRedirects = 20
	devMaxScopeLen  = 64
)

// devClients remembers the clients dev mode created, and which of them
// still wait for their secret. Dev mode's database is in memory, so the
// process that made them is the only one that knows them.
type devClients struct {
	mu sync.Mutex
	// made maps a created client's id to whether it still waits for the
	// secret its first token request will bring.
	made map[string]bool
}

// devRequest is what a request says about its client.
type devRequest struct {
	id, secret string
	basic      bool   // the secret came by HTTP Basic
	redirect   string // a loopback redirect_uri, or ""
	scopes     []string
	// awaitSecret: an authorization request without code_challenge can
	// only succeed for a confidential client, whose secret comes later.
	awaitSecret bool
}

// devAutoClients wraps an endpoint that names a client: in dev mode it
// first makes sure the client exists and fits the request. fail answers a
// storage failure or an unreadable body in the endpoint's own way.
func (s *Server) devAutoClients(next http.HandlerFunc, fail func(http.ResponseWriter, *http.Request, error)) http.HandlerFunc {
	if !s.cfg.DevMode {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			fail(w, r, fosite.ErrInvalidRequest.WithHint("The request body is not a valid form.").WithWrap(err))
			return
		}
		if err := s.ensureDevClient(r.Context(), readDevRequest(r)); err != nil {
			fail(w, r, err)
			return
		}
		next(w, r)
	}
}

func readDevRequest(r *http.Request) devRequest {
	var d devRequest
	if id, secret, ok := r.BasicAuth(); ok {
		// RFC 6749 §2.3.1: Basic credentials are form-encoded first.
		d.id, _ = url.QueryUnescape(id)
		d.secret, _ = url.QueryUnescape(secret)
		d.basic = true
	} else {
		d.id, d.secret = r.Form.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if r.Form.Get("client_assertion") != "" || r.Form.Get("request_uri") != "" {
		// A key-authenticated client, or a pushed request whose client
		// exists already: nothing to create.
		d.id = ""
	}
	if isLoopbackRedirect(r.Form.Get("redirect_uri")) {
		d.redirect = r.Form.Get("redirect_uri")
	}
	for _, scope := range strings.Fields(r.Form.Get("scope")) {
		if len(d.scopes) < devMaxScopes && len(scope) <= devMaxScopeLen && scopeToken(scope) {
			d.scopes = append(d.scopes, scope)
		}
	}
	d.awaitSecret = r.URL.Path == pathAuthorize && r.Form.Get("code_challenge") == ""
	return d
}

// isLoopbackRedirect reports whether raw is an http URI on 127.0.0.1,
// [::1] or localhost (RFC 8252 §7.3), the only ones dev mode registers by
// itself.
func isLoopbackRedirect(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.User != nil || u.Fragment != "" || strings.Contains(raw, "#") {
		return false
	}
	switch u.Hostname() {
	case "127.0.0.1", "::1", "localhost":
		return true
	}
	return false
}

// scopeToken reports whether s is a scope-token of RFC 6749 §3.3.
func scopeToken(s string) bool {
	for _, c := range []byte(s) {
		if c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
			return false
		}
	}
	return s != ""
}

// ensureDevClient creates the client d names when it is unknown, and grows
// one dev mode made to fit d. A client registered otherwise is left alone.
func (s *Server) ensureDevClient(ctx context.Context, d devRequest) error {
	if d.id == "" {
		return nil
	}
	s.dev.mu.Lock()
	_, made := s.dev.made[d.id]
	s.dev.mu.Unlock()
	if !made {
		// The common case, a registered client, takes no lock.
		_, err := s.store.GetClient(ctx, d.id)
		if !errors.Is(err, storage.ErrNotFound) {
			return err // registered (nil), or the store failed
		}
	}
	// One change at a time: two first uses of one id create it once.
	s.dev.mu.Lock()
	defer s.dev.mu.Unlock()
	awaiting, made := s.dev.made[d.id]
	if !made {
		if len(s.dev.made) >= devMaxClients {
			return nil // fosite answers invalid_client
		}
		return s.createDevClient(ctx, d)
	}
	m := s.clientManager()
	c, err := m.Get(ctx, d.id)
	if err != nil {
		return err
	}
	secret := ""
	if awaiting && d.secret != "" {
		secret = d.secret
		c.TokenEndpointAuthMethod = authMethodOf(d)
	}
	if !fitDevClient(c, d) && secret == "" {
		return nil
	}
	if secret != "" {
		if err := m.Seed(ctx, c, secret); err != nil {
			return err
		}
		s.dev.made[d.id] = false
		s.log.InfoContext(ctx, "dev mode: client took its first secret", "client_id", d.id)
		return nil
	}
	return m.Update(ctx, c)
}

// createDevClient stores a new client for d: public (PKCE) without a
// secret, confidential with the secret d sent, or confidential awaiting
// its secret for an authorization request without code_challenge.
func (s *Server) createDevClient(ctx context.Context, d devRequest) error {
	c := &clients.Client{
		ID:                      d.id,
		Name:                    d.id,
		TokenEndpointAuthMethod: clients.AuthMethodNone,
		GrantTypes:              []string{clients.GrantRefreshToken, clients.GrantDeviceCode},
		Scopes:                  slices.Clone(standardScopes),
	}
	awaiting := d.secret == "" && d.awaitSecret
	if d.secret != "" || awaiting {
		c.TokenEndpointAuthMethod = authMethodOf(d)
		c.GrantTypes = append(c.GrantTypes, clients.GrantClientCredentials)
	}
	fitDevClient(c, d)
	// An awaited secret is generated here and never told: until the first
	// token request brings the client's own, nobody can use it.
	if _, err := s.clientManager().Create(ctx, c, d.secret); err != nil {
		if errors.Is(err, storage.ErrAlreadyExists) {
			return nil
		}
		var invalid clients.ValidationError
		if errors.As(err, &invalid) {
			// An id no client may have: fosite answers invalid_client.
			return nil
		}
		return err
	}
	if s.dev.made == nil {
		s.dev.made = map[string]bool{}
	}
	s.dev.made[d.id] = awaiting
	s.log.InfoContext(ctx, "dev mode: client created on first use", "client_id", d.id, "public", c.IsPublic(), "awaits_secret", awaiting)
	return nil
}

// authMethodOf is how d's client sends its secret.
func authMethodOf(d devRequest) string {
	if d.basic || d.secret == "" {
		return clients.AuthMethodBasic
	}
	return clients.AuthMethodPost
}

// fitDevClient adds to c the loopback redirect URI (with the code grant)
// and the scopes d asks for, within the caps; it reports a change.
func fitDevClient(c *clients.Client, d devRequest) bool {
	changed := false
	if d.redirect != "" && !slices.Contains(c.RedirectURIs, d.redirect) && len(c.RedirectURIs) < devMaxRedirects {
		c.RedirectURIs = append(c.RedirectURIs, d.redirect)
		changed = true
	}
	if len(c.RedirectURIs) > 0 && !slices.Contains(c.GrantTypes, clients.GrantAuthorizationCode) {
		c.GrantTypes = append(c.GrantTypes, clients.GrantAuthorizationCode)
		c.ResponseTypes = []string{"code"}
		changed = true
	}
	for _, scope := range d.scopes {
		if !slices.Contains(c.Scopes, scope) && len(c.Scopes) < devMaxScopes {
			c.Scopes = append(c.Scopes, scope)
			changed = true
		}
	}
	return changed
}
