package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

// TestAuthorizeRefusedWithoutRedirect: while the client or its redirect
// URI is in doubt, the authorization endpoint shows an error page and
// never sends the browser anywhere (RFC 6749 §4.1.2.1).
func TestAuthorizeRefusedWithoutRedirect(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		extra map[string]string
		says  string
	}{
		{"unknown client", map[string]string{"client_id": "no-such-client"}, "Unknown application"},
		{"unregistered redirect_uri", map[string]string{"client_id": "web-client", "redirect_uri": "https://evil.example/cb"}, "Unregistered return address"},
		// fosite alone accepts a loopback URI on any port (RFC 8252 §7.3);
		// SPEC asks for exact matching.
		{"loopback redirect_uri on another port", map[string]string{"client_id": "web-client", "redirect_uri": "http://127.0.0.1:5556/cb"}, "Unregistered return address"},
		{"loopback redirect_uri on another port, public client", map[string]string{"client_id": "public-client", "redirect_uri": "http://127.0.0.1:5556/cb"}, "Unregistered return address"},
		{"redirect_uri with another path", map[string]string{"client_id": "web-client", "redirect_uri": callback + "/more"}, "Unregistered return address"},
		{"redirect_uri with an extra query", map[string]string{"client_id": "web-client", "redirect_uri": callback + "?x=1"}, "Unregistered return address"},
		{"no redirect_uri, two registered", map[string]string{"client_id": "web-client", "redirect_uri": ""}, "Unregistered return address"},
		{"client without redirect URIs", map[string]string{"client_id": "basic-client"}, ""},
		{"markup in client_id", map[string]string{"client_id": "<script>alert(1)</script>"}, "Unknown application"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t)
			b := ts.newBrowser(t)
			r := b.get(t, ts.authorizeURL(tt.extra["client_id"], tt.extra))
			flowRequirePage(t, r, http.StatusBadRequest)
			require.Contains(t, string(r.Body), tt.says)
			require.NotContains(t, string(r.Body), "evil.example", "the page links nowhere foreign")
			require.NotContains(t, string(r.Body), "<script", "nothing of the request is echoed as markup")
			// A browser with a session is refused the same way.
			if tt.extra["client_id"] != "web-client" && tt.extra["client_id"] != "public-client" {
				return
			}
			cb := b.authorize(t, ts.authorizeURL("web-client", nil))
			require.NotEmpty(t, cb.Query().Get("code"))
			r = b.get(t, ts.authorizeURL(tt.extra["client_id"], tt.extra))
			flowRequirePage(t, r, http.StatusBadRequest)
		})
	}
}

// TestAuthorizeErrorsAtCallback: once the client and its redirect URI are
// known, errors go back to the client with the RFC's code and the state.
func TestAuthorizeErrorsAtCallback(t *testing.T) {
	t.Parallel()

	// Each is refused at once, before a login or consent page: the
	// browser is sent back to the client with the RFC's code and state.
	// fosite itself checks PKCE, prompt and the OpenID Connect rules only
	// when it issues the code, after the pages.
	_, goodChallenge := pkcePair("early-verifier-0123456789012345678901234567")
	for _, tt := range []struct {
		name, client, code string
		extra              map[string]string
	}{
		// RFC 7636 §4.4.1: a server that requires PKCE answers invalid_request.
		{"public client without PKCE", "public-client", "invalid_request", nil},
		{"code_challenge_method=plain, public-client", "public-client", "invalid_request", map[string]string{"code_challenge": strings.Repeat("p", 43), "code_challenge_method": "plain"}},
		{"code_challenge_method=plain, web-client", "web-client", "invalid_request", map[string]string{"code_challenge": strings.Repeat("p", 43), "code_challenge_method": "plain"}},
		{"code_challenge without a method (plain)", "public-client", "invalid_request", map[string]string{"code_challenge": goodChallenge}},
		{"code_challenge_method without code_challenge", "web-client", "invalid_request", map[string]string{"code_challenge_method": "S256"}},
		{"S256 code_challenge that is no SHA-256", "public-client", "invalid_request", map[string]string{"code_challenge": "too-short", "code_challenge_method": "S256"}},
		{"unknown code_challenge_method", "web-client", "invalid_request", map[string]string{"code_challenge": strings.Repeat("c", 43), "code_challenge_method": "S512"}},
		{"scope the client may not ask for", "web-client", "invalid_scope", map[string]string{"scope": "openid admin"}},
		{"response_type=token", "web-client", "unsupported_response_type", map[string]string{"response_type": "token"}},
		{"unknown prompt", "web-client", "invalid_request", map[string]string{"prompt": "bogus"}},
		{"prompt=none with another value", "web-client", "invalid_request", map[string]string{"prompt": "none login"}},
		{"id_token_hint not signed here", "web-client", "invalid_request", map[string]string{"id_token_hint": "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9."}},
		{"short nonce", "web-client", "invalid_request", map[string]string{"nonce": "n1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t)
			q := flowCallback(t, ts.newBrowser(t).get(t, ts.authorizeURL(tt.client, tt.extra)))
			require.Equal(t, tt.code, q.Get("error"), "%v", q)
			require.Equal(t, "state-1234567890", q.Get("state"))
			require.Empty(t, q.Get("code"))
		})
	}

	t.Run("PKCE checked before the pages of a pushed request", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		r := ts.post(t, "/oauth2/par", "form", map[string]string{"response_type": "code", "client_id": "public-client",
			"redirect_uri": callback, "scope": "openid", "state": "state-1234567890"}, idAuth("public-client"))
		requireError(t, r, http.StatusBadRequest, "invalid_request")
	})

	t.Run("consent denied", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		b := ts.newBrowser(t)
		_, challenge := pkcePair("deny-verifier-0123456789012345678901234567")
		next := flowSignIn(t, b, ts.authorizeURL("public-client", map[string]string{"code_challenge": challenge, "code_challenge_method": "S256"}))
		q := flowCallback(t, flowConsent(t, b, next, map[string]string{"decision": "deny"}))
		require.Equal(t, "access_denied", q.Get("error"))
		require.Equal(t, "state-1234567890", q.Get("state"))
		require.Empty(t, q.Get("code"))
	})

	t.Run("short nonce", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		// fosite refuses a nonce under 8 characters, but only when it signs
		// the ID token at the token endpoint: after the person signed in and
		// consented, after the code was spent, with an error code that no
		// RFC defines. Either refuse it at the authorization endpoint,
		// before any page, or accept it.
		verifier, challenge := pkcePair("nonce-verifier-0123456789012345678901234567")
		b := ts.newBrowser(t)
		r := b.get(t, ts.authorizeURL("web-client", map[string]string{"nonce": "n-0123", "code_challenge": challenge, "code_challenge_method": "S256"}))
		if loc := location(t, r); strings.HasPrefix(loc, callback) {
			q := flowCallback(t, r)
			require.Equal(t, "invalid_request", q.Get("error"), "%v", q)
			return
		}
		cb := b.authorize(t, ts.authorizeURL("web-client", map[string]string{"nonce": "n-0123", "code_challenge": challenge, "code_challenge_method": "S256"}))
		require.NotEmpty(t, cb.Query().Get("code"), "callback %s", cb)
		tok := flowExchange(t, ts, "web-client", cb.Query().Get("code"), verifier)
		require.Equal(t, http.StatusOK, tok.Status, "a code issued for a nonce is redeemable: %s", tok.Body)
	})

	t.Run("state round-trips", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		for _, state := range []string{"plain-state-value", "with spaces & = ? / % ünïcode", flowRandom(t)} {
			cb := ts.newBrowser(t).authorize(t, ts.authorizeURL("skip-client", map[string]string{"state": state}))
			require.Equal(t, state, cb.Query().Get("state"))
			require.NotEmpty(t, cb.Query().Get("code"))
		}
	})

	t.Run("response_mode=form_post", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		verifier, challenge := pkcePair("form-post-verifier-012345678901234567890123")
		b := ts.newBrowser(t)
		next := flowSignIn(t, b, ts.authorizeURL("web-client", map[string]string{
			"response_mode": "form_post", "code_challenge": challenge, "code_challenge_method": "S256"}))
		r := flowConsent(t, b, next, map[string]string{"decision": "allow"})
		flowRequirePage(t, r, http.StatusOK)
		require.Contains(t, r.Header.Get("Cache-Control"), "no-store", "the page carries a code")
		fs := forms(t, r)
		require.Len(t, fs, 1, "%s", r.Body)
		require.Equal(t, callback, fs[0].Action, "the form posts to the redirect URI")
		require.Equal(t, "state-1234567890", fs[0].Fields.Get("state"))
		code := fs[0].Fields.Get("code")
		require.NotEmpty(t, code)
		tok := flowExchange(t, ts, "web-client", code, verifier)
		require.Equal(t, http.StatusOK, tok.Status, "the posted code is a real one: %s", tok.Body)

		// An error goes back the same way.
		b = ts.newBrowser(t)
		next = flowSignIn(t, b, ts.authorizeURL("web-client", map[string]string{"response_mode": "form_post"}))
		r = flowConsent(t, b, next, map[string]string{"decision": "deny"})
		flowRequirePage(t, r, http.StatusOK)
		fs = forms(t, r)
		require.Len(t, fs, 1, "%s", r.Body)
		require.Equal(t, callback, fs[0].Action)
		require.Equal(t, "access_denied", fs[0].Fields.Get("error"))
		require.Equal(t, "state-1234567890", fs[0].Fields.Get("state"))
	})

	t.Run("response_mode=form_post page headers", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		b := ts.newBrowser(t)
		next := flowSignIn(t, b, ts.authorizeURL("web-client", map[string]string{"response_mode": "form_post"}))
		allowed := flowConsent(t, b, next, map[string]string{"decision": "allow", "remember": "true"})
		// Remembered: the page straight from the authorization endpoint.
		silent := b.get(t, ts.authorizeURL("web-client", map[string]string{"response_mode": "form_post", "prompt": "none"}))
		for name, r := range map[string]response{"after consent": allowed, "without a page before": silent} {
			flowRequirePage(t, r, http.StatusOK)
			require.Len(t, forms(t, r), 1, "%s: %s", name, r.Body)
			// fosite writes this page, not a template, but it is a page all
			// the same, and every page carries the security headers: nothing
			// may frame it. Its inline onload script rules out default-src
			// 'none', not frame-ancestors.
			require.Equal(t, "DENY", r.Header.Get("X-Frame-Options"), "form_post page %s: X-Frame-Options", name)
			require.Contains(t, r.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'", "form_post page %s: CSP", name)
			require.NotEmpty(t, r.Header.Get("Referrer-Policy"), "form_post page %s: Referrer-Policy", name)
		}
	})
}

// TestCodeRedemptionErrors covers the token endpoint's side of the code
// flow: PKCE verification and single use.
func TestCodeRedemptionErrors(t *testing.T) {
	t.Parallel()
	code := func(t *testing.T, ts *testServer, client, challenge string) string {
		t.Helper()
		cb := ts.newBrowser(t).authorize(t, ts.authorizeURL(client, map[string]string{
			"code_challenge": challenge, "code_challenge_method": "S256"}))
		c := cb.Query().Get("code")
		require.NotEmpty(t, c, "callback %s", cb)
		return c
	}

	for _, client := range []string{"public-client", "web-client"} {
		t.Run("wrong code_verifier, "+client, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t)
			_, challenge := pkcePair("right-verifier-0123456789012345678901234567")
			c := code(t, ts, client, challenge)
			requireError(t, flowExchange(t, ts, client, c, "wrong-verifier-0123456789012345678901234567"), http.StatusBadRequest, "invalid_grant")
			// The code is not spent by a wrong verifier (storage keeps the
			// PKCE session until the code is used): the right one works,
			// once.
			r := flowExchange(t, ts, client, c, "right-verifier-0123456789012345678901234567")
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			requireError(t, flowExchange(t, ts, client, c, "right-verifier-0123456789012345678901234567"), http.StatusBadRequest, "invalid_grant")
		})
		t.Run("missing code_verifier, "+client, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t)
			_, challenge := pkcePair("right-verifier-0123456789012345678901234567")
			c := code(t, ts, client, challenge)
			requireError(t, flowExchange(t, ts, client, c, ""), http.StatusBadRequest, "invalid_grant")
		})
	}

	t.Run("code used twice", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		verifier, challenge := pkcePair("reuse-verifier-0123456789012345678901234567")
		c := code(t, ts, "web-client", challenge)
		first := flowExchange(t, ts, "web-client", c, verifier)
		require.Equal(t, http.StatusOK, first.Status, "%s", first.Body)
		m := first.json(t)
		access, _ := m["access_token"].(string)
		refresh, _ := m["refresh_token"].(string)
		require.NotEmpty(t, access)
		require.NotEmpty(t, refresh)
		require.True(t, ts.active(t, access))

		requireError(t, flowExchange(t, ts, "web-client", c, verifier), http.StatusBadRequest, "invalid_grant")
		// RFC 6749 §4.1.2: the tokens issued from the code are revoked.
		require.False(t, ts.active(t, access), "access token of a reused code")
		require.False(t, ts.active(t, refresh), "refresh token of a reused code")
		requireError(t, ts.refresh(t, "web-client", refresh), http.StatusBadRequest, "invalid_grant")
	})

	t.Run("code of another client", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		verifier, challenge := pkcePair("other-verifier-0123456789012345678901234567")
		c := code(t, ts, "web-client", challenge)
		requireError(t, flowExchange(t, ts, "skip-client", c, verifier), http.StatusBadRequest, "invalid_grant")
		// The code is still the web-client's to redeem.
		r := flowExchange(t, ts, "web-client", c, verifier)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	})

	t.Run("POST to the authorization endpoint", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		verifier, challenge := pkcePair(oauth2.GenerateVerifier())
		authURL, err := url.Parse(ts.authorizeURL("skip-client", map[string]string{"code_challenge": challenge, "code_challenge_method": "S256"}))
		require.NoError(t, err)
		b := ts.newBrowser(t)
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.URL+"/oauth2/auth", strings.NewReader(authURL.RawQuery))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		loginURL := location(t, b.do(t, req))
		require.True(t, strings.HasPrefix(loginURL, "/login?challenge="), "%s", loginURL)
		q := flowCallback(t, b.submit(t, b.get(t, loginURL), map[string]string{"username": "alice", "password": "alice-password"}))
		r := flowExchange(t, ts, "skip-client", q.Get("code"), verifier)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	})

	t.Run("redirect_uri differs at the token endpoint", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		verifier, challenge := pkcePair("redir-verifier-0123456789012345678901234567")
		c := code(t, ts, "web-client", challenge)
		r := ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "authorization_code", "code": c,
			"redirect_uri": "https://app.example.com/cb", "code_verifier": verifier}, ts.as("web-client"))
		requireError(t, r, http.StatusBadRequest, "invalid_grant")
	})
}
