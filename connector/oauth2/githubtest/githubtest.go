// Package githubtest is a stand-in for GitHub in tests, where GitHub is
// not reachable: an httptest server speaking GitHub's documented OAuth app
// endpoints (/login/oauth/authorize, /login/oauth/access_token) and the
// REST API that the github preset reads (/api/v3/user, /user/emails,
// /user/teams), as GitHub Enterprise Server lays them out. It is a test
// double of an external service, not of anything of Latch's.
package githubtest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// ClientID and ClientSecret are the OAuth app the stand-in knows.
const (
	ClientID     = "gh-client"
	ClientSecret = "gh-secret-0123456789"
)

// User is the one person the stand-in signs in.
var User = map[string]any{"id": 583231, "login": "octocat", "name": "The Octocat"}

// Server is the stand-in. Its authorize endpoint redirects back with a
// code at once, as GitHub does for an app the person authorized before.
type Server struct {
	*httptest.Server

	mu        sync.Mutex
	codes     map[string]string // code -> PKCE challenge
	tokens    map[string]bool
	emails    []map[string]any
	teams     []map[string]any
	redirects []string
}

// New starts a stand-in that t closes: octocat, with a primary verified
// email octo@example.com and the teams acme/platform and acme/sre.
func New(t testing.TB) *Server {
	s := &Server{codes: map[string]string{}, tokens: map[string]bool{},
		emails: []map[string]any{
			{"email": "octo@users.noreply.example", "primary": false, "verified": true},
			{"email": "octo@example.com", "primary": true, "verified": true},
		},
		teams: []map[string]any{
			{"slug": "platform", "organization": map[string]any{"login": "acme"}},
			{"slug": "sre", "organization": map[string]any{"login": "acme"}},
		}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login/oauth/authorize", s.authorize)
	mux.HandleFunc("POST /login/oauth/access_token", s.token)
	mux.HandleFunc("GET /api/v3/user", s.api(func() any { return User }))
	mux.HandleFunc("GET /api/v3/user/emails", s.api(func() any { return s.emails }))
	mux.HandleFunc("GET /api/v3/user/teams", s.api(func() any { return s.teams }))
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := q.Get("state")
	if q.Get("client_id") != ClientID || q.Get("code_challenge_method") != "S256" || len(state) < 8 {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	code := "code-" + state
	s.codes[code] = q.Get("code_challenge")
	s.redirects = append(s.redirects, q.Get("redirect_uri"))
	s.mu.Unlock()
	http.Redirect(w, r, q.Get("redirect_uri")+"?code="+url.QueryEscape(code)+"&state="+url.QueryEscape(state), http.StatusFound)
}

// token redeems a code once, with its PKCE verifier. GitHub answers a bad
// code with 200 and an error member.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
	}
	code := r.PostFormValue("code")
	sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
	s.mu.Lock()
	challenge, known := s.codes[code]
	delete(s.codes, code)
	good := id == ClientID && secret == ClientSecret && known && base64.RawURLEncoding.EncodeToString(sum[:]) == challenge
	tok := "gho_" + code
	if good {
		s.tokens[tok] = true
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if !good {
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "bad_verification_code"})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"access_token": tok, "token_type": "bearer", "scope": "read:org,user:email"})
}

func (s *Server) api(body func() any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")] {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"message":"Bad credentials"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(body())
	}
}

// SetEmails replaces what /user/emails answers.
func (s *Server) SetEmails(emails []map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.emails = emails
}

// RevokeAll makes every token issued so far answer 401, as when the person
// revokes the app or their account is removed.
func (s *Server) RevokeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = map[string]bool{}
}

// Redirects are the redirect URIs the authorize endpoint was asked for.
func (s *Server) Redirects() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.redirects...)
}
