package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

const requestURIPrefix = "urn:ietf:params:oauth:request_uri:"

// pushedRequest is the form of a pushed authorization request; extra
// changes it (an empty value removes a field).
func pushedRequest(challenge string, extra map[string]string) map[string]string {
	m := map[string]string{
		"response_type":         "code",
		"redirect_uri":          callback,
		"scope":                 "openid profile offline_access",
		"state":                 "par-state-1234567890",
		"nonce":                 "par-nonce-1234567890",
		"code_challenge":        challenge,
		"code_challenge_method": "S256",
	}
	for k, v := range extra {
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

// push sends a pushed authorization request as clientID and returns its
// request_uri.
func (ts *testServer) push(t *testing.T, clientID string, fields map[string]string) string {
	t.Helper()
	r := ts.post(t, "/oauth2/par", "form", fields, ts.as(clientID))
	require.Equal(t, http.StatusCreated, r.Status, "PAR: %s", r.Body)
	require.Contains(t, r.Header.Get("Content-Type"), "application/json")
	require.Contains(t, r.Header.Get("Cache-Control"), "no-store")
	m := r.json(t)
	uri, _ := m["request_uri"].(string)
	require.True(t, strings.HasPrefix(uri, requestURIPrefix), "request_uri %q", uri)
	require.Greater(t, len(uri), len(requestURIPrefix)+20, "the request_uri carries a random part")
	expires, _ := m["expires_in"].(float64)
	require.Greater(t, expires, 0.0, "expires_in: %s", r.Body)
	return uri
}

func (ts *testServer) parAuthorizeURL(clientID, requestURI string) string {
	return ts.URL + "/oauth2/auth?" + url.Values{"client_id": {clientID}, "request_uri": {requestURI}}.Encode()
}

func TestPARPush(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	_, challenge := pkcePair(oauth2.GenerateVerifier())
	ok := pushedRequest(challenge, nil)

	t.Run("with client authentication", func(t *testing.T) {
		t.Parallel()
		a, b := ts.push(t, "web-client", ok), ts.push(t, "web-client", ok)
		require.NotEqual(t, a, b, "every push gets its own request_uri")
	})
	for _, tc := range []struct {
		name   string
		fields map[string]string
		auth   auth
		status int
		code   string
	}{
		{"no client authentication", ok, noAuth, http.StatusUnauthorized, "invalid_client"},
		{"client_id alone for a confidential client", ok, idAuth("web-client"), http.StatusUnauthorized, "invalid_client"},
		{"wrong secret", ok, basicAuth("web-client", "wrong"), http.StatusUnauthorized, "invalid_client"},
		{"unknown client", ok, basicAuth("nobody", "secret"), http.StatusUnauthorized, "invalid_client"},
		{"unregistered redirect_uri", pushedRequest(challenge, map[string]string{"redirect_uri": "https://evil.example/cb"}),
			basicAuth("web-client", ""), http.StatusBadRequest, "invalid_request"},
		{"loopback redirect_uri on another port", pushedRequest(challenge, map[string]string{"redirect_uri": "http://127.0.0.1:6666/cb"}),
			basicAuth("web-client", ""), http.StatusBadRequest, "invalid_request"},
		{"a request_uri inside the push", pushedRequest(challenge, map[string]string{"request_uri": requestURIPrefix + "x"}),
			basicAuth("web-client", ""), http.StatusBadRequest, "invalid_request"},
		{"a scope the client may not ask for", pushedRequest(challenge, map[string]string{"scope": "openid admin"}),
			basicAuth("web-client", ""), http.StatusBadRequest, "invalid_scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := tc.auth
			if a.kind == "basic" && a.secret == "" {
				a = ts.as(a.id)
			}
			r := ts.post(t, "/oauth2/par", "form", tc.fields, a)
			requireError(t, r, tc.status, tc.code)
			require.NotContains(t, string(r.Body), "request_uri\":")
		})
	}
	t.Run("GET is not allowed", func(t *testing.T) {
		t.Parallel()
		r := ts.get(t, "/oauth2/par")
		require.Equal(t, http.StatusMethodNotAllowed, r.Status)
		require.Equal(t, "POST", r.Header.Get("Allow"))
	})
}

// requireNoCode checks that an answer of the authorization endpoint hands
// out no code: an error page, or an error sent to the client.
func requireNoCode(t *testing.T, r response) {
	t.Helper()
	if r.Status == http.StatusFound || r.Status == http.StatusSeeOther {
		u, err := url.Parse(r.Header.Get("Location"))
		require.NoError(t, err)
		require.False(t, strings.HasPrefix(u.Path, "/login") || strings.HasPrefix(u.Path, "/consent"),
			"the request goes no further: %s", u)
		require.Empty(t, u.Query().Get("code"), "no code: %s", u)
		require.NotEmpty(t, u.Query().Get("error"), "an error: %s", u)
		return
	}
	require.Equal(t, http.StatusBadRequest, r.Status, "an error page: %s", r.Body)
	require.Contains(t, r.Header.Get("Content-Type"), "text/html")
}

func TestPARAuthorize(t *testing.T) {
	t.Parallel()

	t.Run("confidential client", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		verifier, challenge := pkcePair(oauth2.GenerateVerifier())
		uri := ts.push(t, "web-client", pushedRequest(challenge, nil))
		b := ts.newBrowser(t)
		cb := b.authorize(t, ts.parAuthorizeURL("web-client", uri))
		require.Equal(t, callback, cb.Scheme+"://"+cb.Host+cb.Path, "the pushed redirect_uri")
		require.Equal(t, "par-state-1234567890", cb.Query().Get("state"), "the pushed state")
		tk := ts.exchange(t, "web-client", cb.Query().Get("code"), verifier)
		require.Equal(t, "openid profile offline_access", tk.Scope, "the pushed scopes")
		require.NotEmpty(t, tk.Refresh)
		idt, claims := ts.verifyIDToken(t, tk.ID, "web-client")
		require.Equal(t, "par-nonce-1234567890", idt.Nonce, "the pushed nonce")
		require.Equal(t, "alice", claims["preferred_username"])

		// The request_uri is single-use, even for the browser that used it.
		requireNoCode(t, b.get(t, ts.parAuthorizeURL("web-client", uri)))
	})
	t.Run("public client with PKCE", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		verifier, challenge := pkcePair(oauth2.GenerateVerifier())
		uri := ts.push(t, "public-client", pushedRequest(challenge, nil))
		cb := ts.newBrowser(t).authorize(t, ts.parAuthorizeURL("public-client", uri))
		code := cb.Query().Get("code")
		require.NotEmpty(t, code, "%s", cb)
		requireError(t, ts.post(t, "/oauth2/token", "form",
			map[string]string{"grant_type": "authorization_code", "code": code, "redirect_uri": callback, "code_verifier": "wrong-verifier-0123456789012345678901234567890"},
			ts.as("public-client")), http.StatusBadRequest, "invalid_grant")

		uri = ts.push(t, "public-client", pushedRequest(challenge, nil))
		cb = ts.newBrowser(t).authorize(t, ts.parAuthorizeURL("public-client", uri))
		tk := ts.exchange(t, "public-client", cb.Query().Get("code"), verifier)
		require.NotEmpty(t, tk.ID)
	})
	t.Run("public client without PKCE gets no code", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		r := ts.post(t, "/oauth2/par", "form", pushedRequest("", map[string]string{"code_challenge_method": ""}), ts.as("public-client"))
		if r.Status != http.StatusCreated {
			requireError(t, r, http.StatusBadRequest, "invalid_request")
			return
		}
		uri, _ := r.json(t)["request_uri"].(string)
		cb := ts.newBrowser(t).authorize(t, ts.parAuthorizeURL("public-client", uri))
		require.Empty(t, cb.Query().Get("code"), "%s", cb)
		require.Equal(t, "invalid_request", cb.Query().Get("error"), "%s", cb)
	})
	t.Run("another client cannot use the request_uri", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		_, challenge := pkcePair(oauth2.GenerateVerifier())
		uri := ts.push(t, "web-client", pushedRequest(challenge, nil))
		b := ts.newBrowser(t)
		requireNoCode(t, b.get(t, ts.parAuthorizeURL("public-client", uri)))
		requireNoCode(t, b.get(t, ts.parAuthorizeURL("", uri)))
	})
	t.Run("unknown request_uri", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		requireNoCode(t, ts.newBrowser(t).get(t, ts.parAuthorizeURL("web-client", requestURIPrefix+"forged-0123456789")))
	})
	t.Run("only the pushed parameters count", func(t *testing.T) {
		t.Parallel()
		// RFC 9126 §4 and RFC 9101 §5: the authorization server uses the
		// pushed parameters only, not others added to the URL afterwards.
		ts := newTestServer(t)
		_, challenge := pkcePair(oauth2.GenerateVerifier())
		uri := ts.push(t, "web-client", pushedRequest(challenge, nil))
		target := ts.parAuthorizeURL("web-client", uri) + "&" + url.Values{
			"prompt": {"none"}, "redirect_uri": {"https://app.example.com/cb"}, "state": {"injected"},
		}.Encode()
		r := ts.newBrowser(t).get(t, target)
		loc := location(t, r)
		require.True(t, strings.HasPrefix(loc, "/login?"), "prompt=none was not pushed: the login page, not %s", loc)
	})
}
