package oauth2_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/connector"
	"github.com/latchauth/latch/connector/oauth2"
)

// githubStandIn speaks GitHub's documented OAuth app and REST endpoints
// (a test double of an external service that is not reachable here):
// /login/oauth/authorize redirects back with a code at once, as GitHub
// does for an app the person authorized before; /login/oauth/access_token
// redeems it (once, with the PKCE verifier); /api/v3/user, /user/emails
// and /user/teams answer for a valid token, 401 otherwise.
type githubStandIn struct {
	mu        sync.Mutex
	codes     map[string]string // code -> PKCE challenge
	tokens    map[string]bool
	emails    []map[string]any
	teams     []map[string]any
	clientID  string
	secret    string
	redirects []string
}

func newGitHubStandIn(t *testing.T) (*githubStandIn, *httptest.Server) {
	g := &githubStandIn{codes: map[string]string{}, tokens: map[string]bool{}, clientID: "gh-client", secret: "gh-secret",
		emails: []map[string]any{
			{"email": "octo@users.noreply.example", "primary": false, "verified": true},
			{"email": "octo@example.com", "primary": true, "verified": true},
		},
		teams: []map[string]any{
			{"slug": "platform", "organization": map[string]any{"login": "acme"}},
			{"slug": "sre", "organization": map[string]any{"login": "acme"}},
		}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login/oauth/authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("client_id") != g.clientID || q.Get("code_challenge_method") != "S256" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		g.mu.Lock()
		code := "code-" + q.Get("state")[:8]
		g.codes[code] = q.Get("code_challenge")
		g.redirects = append(g.redirects, q.Get("redirect_uri"))
		g.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?code="+code+"&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
	})
	mux.HandleFunc("POST /login/oauth/access_token", func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
		}
		g.mu.Lock()
		challenge, known := g.codes[r.PostFormValue("code")]
		delete(g.codes, r.PostFormValue("code"))
		sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
		w.Header().Set("Content-Type", "application/json")
		if id != g.clientID || secret != g.secret || !known || base64.RawURLEncoding.EncodeToString(sum[:]) != challenge {
			g.mu.Unlock()
			// GitHub answers 200 with an error member.
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "bad_verification_code"})
			return
		}
		tok := "gho_" + r.PostFormValue("code")
		g.tokens[tok] = true
		g.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]string{"access_token": tok, "token_type": "bearer", "scope": "read:org,user:email"})
	})
	api := func(body func() any) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			g.mu.Lock()
			ok := g.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
			g.mu.Unlock()
			if !ok {
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"message":"Bad credentials"}`))
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(body())
		}
	}
	mux.HandleFunc("GET /api/v3/user", api(func() any { return map[string]any{"id": 583231, "login": "octocat", "name": "The Octocat"} }))
	mux.HandleFunc("GET /api/v3/user/emails", api(func() any { return g.emails }))
	mux.HandleFunc("GET /api/v3/user/teams", api(func() any { return g.teams }))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return g, srv
}

func (g *githubStandIn) revokeAll() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.tokens = map[string]bool{}
}

// signIn runs the browser's part: the login URL, the stand-in's
// redirect, and the callback request it leads to.
func signIn(t *testing.T, c *oauth2.Connector, state, verifier string) (*http.Request, error) {
	t.Helper()
	login, err := c.LoginURL(state, "", verifier)
	require.NoError(t, err)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(login)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	return httptest.NewRequest(http.MethodGet, resp.Header.Get("Location"), nil), nil
}

func TestGitHubPreset(t *testing.T) {
	g, srv := newGitHubStandIn(t)
	ctx := context.Background()
	c, err := oauth2.NewGitHub(oauth2.GitHubConfig{BaseURL: srv.URL, ClientID: g.clientID, ClientSecret: g.secret,
		RedirectURL: "http://127.0.0.1:9/login/gh/callback"})
	require.NoError(t, err)

	verifier := strings.Repeat("v", 43)
	cb, err := signIn(t, c, "state-0123456789", verifier)
	require.NoError(t, err)
	require.Equal(t, "state-0123456789", cb.URL.Query().Get("state"))
	id, err := c.HandleCallback(ctx, cb, "", verifier)
	require.NoError(t, err)
	require.Equal(t, "583231", id.Subject, "the numeric id, not the login, is the subject")
	require.Equal(t, "octocat", id.Username)
	require.Equal(t, "The Octocat", id.Name)
	require.Equal(t, "octo@example.com", id.Email, "the primary verified email")
	require.True(t, id.EmailVerified)
	require.Equal(t, []string{"acme:platform", "acme:sre"}, id.Groups)
	require.Equal(t, []string{"http://127.0.0.1:9/login/gh/callback"}, g.redirects)

	// The code is spent: the same callback again fails.
	_, err = c.HandleCallback(ctx, cb, "", verifier)
	require.Error(t, err)

	// Refresh reads /user with the kept token; a revoked token is ErrGone.
	again, err := c.Refresh(ctx, id)
	require.NoError(t, err)
	require.Equal(t, id.Subject, again.Subject)
	g.revokeAll()
	_, err = c.Refresh(ctx, id)
	require.ErrorIs(t, err, connector.ErrGone)
}

func TestGitHubPresetRules(t *testing.T) {
	g, srv := newGitHubStandIn(t)
	ctx := context.Background()
	tests := []struct {
		name   string
		rules  connector.Rules
		emails []map[string]any
		denied bool
	}{
		{"allowed team", connector.Rules{AllowedGroups: []string{"acme:sre"}}, nil, false},
		{"no allowed team", connector.Rules{AllowedGroups: []string{"acme:admins"}}, nil, true},
		{"allowed domain", connector.Rules{AllowedDomains: []string{"example.com"}}, nil, false},
		{"other domain", connector.Rules{AllowedDomains: []string{"example.org"}}, nil, true},
		{"primary email unverified", connector.Rules{AllowedDomains: []string{"example.com"}},
			[]map[string]any{{"email": "octo@example.com", "primary": true, "verified": false}}, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.emails != nil {
				g.mu.Lock()
				saved := g.emails
				g.emails = tt.emails
				g.mu.Unlock()
				defer func() { g.mu.Lock(); g.emails = saved; g.mu.Unlock() }()
			}
			c, err := oauth2.NewGitHub(oauth2.GitHubConfig{BaseURL: srv.URL, ClientID: g.clientID, ClientSecret: g.secret,
				RedirectURL: "http://127.0.0.1:9/cb", Rules: tt.rules})
			require.NoError(t, err)
			verifier := strings.Repeat("w", 43)
			cb, err := signIn(t, c, "state-rule-"+string(rune('a'+i))+"-0123", verifier)
			require.NoError(t, err)
			_, err = c.HandleCallback(ctx, cb, "", verifier)
			var denied *connector.ErrDenied
			require.Equal(t, tt.denied, errors.As(err, &denied), "error: %v", err)
		})
	}
}

func TestCallbackErrors(t *testing.T) {
	g, srv := newGitHubStandIn(t)
	c, err := oauth2.NewGitHub(oauth2.GitHubConfig{BaseURL: srv.URL, ClientID: g.clientID, ClientSecret: g.secret, RedirectURL: "http://127.0.0.1:9/cb"})
	require.NoError(t, err)
	ctx := context.Background()
	var upstream *connector.UpstreamError
	_, err = c.HandleCallback(ctx, httptest.NewRequest(http.MethodGet, "/cb?error=access_denied&state=x", nil), "", "v")
	require.True(t, errors.As(err, &upstream))
	require.Equal(t, "access_denied", upstream.Code)
	_, err = c.HandleCallback(ctx, httptest.NewRequest(http.MethodGet, "/cb?state=x", nil), "", "v")
	require.True(t, errors.As(err, &upstream))
	// A wrong PKCE verifier: the code is refused.
	cb, err := signIn(t, c, "state-pkce-0123456", strings.Repeat("a", 43))
	require.NoError(t, err)
	_, err = c.HandleCallback(ctx, cb, "", strings.Repeat("b", 43))
	require.Error(t, err)
}
