package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v3/jwt"
	"github.com/stretchr/testify/require"
)

// withDevMode turns on dev mode: the /dev/ fixture helpers.
func withDevMode() option {
	return func(o *serverOptions) { o.cfg.DevMode = true }
}

// devJSON posts a JSON body to a /dev/ endpoint.
func (ts *testServer) devJSON(t *testing.T, path, body string) response {
	t.Helper()
	return ts.raw(t, http.MethodPost, path, "application/json", body, noAuth)
}

// TestDevEndpointsOnlyInDevMode: without DevMode nothing answers under
// /dev/, whatever the method; with it the three helpers exist.
func TestDevEndpointsOnlyInDevMode(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for _, path := range []string{"/dev/tokens", "/dev/expire", "/dev/fail", "/dev/"} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			r := ts.raw(t, method, path, "application/json", `{"client_id":"basic-client"}`, noAuth)
			require.Equal(t, http.StatusNotFound, r.Status, "%s %s without dev mode: %s", method, path, r.Body)
		}
	}
	require.False(t, strings.Contains(string(ts.get(t, "/.well-known/openid-configuration").Body), "/dev/"),
		"discovery never names the helpers")

	dev := newTestServer(t, withDevMode())
	for _, path := range []string{"/dev/tokens", "/dev/expire", "/dev/fail"} {
		r := dev.devJSON(t, path, `{}`)
		require.NotEqual(t, http.StatusNotFound, r.Status, "%s in dev mode: %s", path, r.Body)
	}
}

func TestDevTokens(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withDevMode())

	r := ts.devJSON(t, "/dev/tokens", `{"client_id":"web-client","subject":"alice","scope":"openid profile",
		"refresh_token":true,"id_token":true,"nonce":"nonce-1234567890","claims":{"tenant":"acme"},"expires_in":120}`)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	m := r.json(t)
	require.Equal(t, "bearer", m["token_type"])
	require.InDelta(t, 120, m["expires_in"], 2)
	require.Equal(t, "openid profile offline_access", m["scope"], "a refresh token needs offline_access")
	access, refresh, idToken := m["access_token"].(string), m["refresh_token"].(string), m["id_token"].(string)

	in := ts.introspect(t, access).json(t)
	require.Equal(t, true, in["active"])
	require.Equal(t, "alice", in["sub"])
	require.Equal(t, "web-client", in["client_id"])

	var claims map[string]any
	parsed, err := jwt.ParseSigned(idToken)
	require.NoError(t, err)
	require.NoError(t, parsed.UnsafeClaimsWithoutVerification(&claims))
	require.Equal(t, "alice", claims["sub"])
	require.Equal(t, "nonce-1234567890", claims["nonce"])
	require.Equal(t, "acme", claims["tenant"])
	require.Equal(t, "Alice Example", claims["name"], "a user's profile claims, as a sign-in gives")
	require.NotEmpty(t, claims["at_hash"])

	g := ts.refreshOK(t, "web-client", refresh)
	require.True(t, ts.active(t, g.Access), "the refreshed access token")
	require.False(t, ts.active(t, access), "rotation retired the minted access token")

	// client_credentials: no subject, the client is the subject.
	r = ts.devJSON(t, "/dev/tokens", `{"client_id":"basic-client","scope":"read"}`)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	in = ts.introspect(t, r.json(t)["access_token"].(string)).json(t)
	require.Equal(t, "basic-client", in["sub"])
	require.Equal(t, "read", in["scope"])
}

func TestDevTokensErrors(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withDevMode())
	for _, tc := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"unknown client", `{"client_id":"nobody"}`, http.StatusUnauthorized, "invalid_client"},
		{"unregistered scope", `{"client_id":"basic-client","scope":"openid"}`, http.StatusBadRequest, "invalid_scope"},
		{"unregistered audience", `{"client_id":"basic-client","audience":["https://elsewhere.example.com"]}`, http.StatusBadRequest, "invalid_request"},
		{"id token without subject", `{"client_id":"web-client","id_token":true}`, http.StatusBadRequest, "invalid_request"},
		{"protocol claim", `{"client_id":"web-client","subject":"alice","claims":{"aud":"x"}}`, http.StatusBadRequest, "invalid_request"},
		{"misspelt field", `{"client_id":"basic-client","scopes":"read"}`, http.StatusBadRequest, "invalid_request"},
		{"negative lifespan", `{"client_id":"basic-client","expires_in":-1}`, http.StatusBadRequest, "invalid_request"},
		{"not JSON", `client_id=basic-client`, http.StatusBadRequest, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireError(t, ts.devJSON(t, "/dev/tokens", tc.body), tc.status, tc.code)
		})
	}
	r := ts.devJSON(t, "/dev/tokens", `{"client_id":"basic-client","refresh_token":true,"scope":"read"}`)
	require.Equal(t, http.StatusOK, r.Status, "basic-client has the refresh_token grant: %s", r.Body)
}

func TestDevExpire(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withDevMode())
	g := issueGrant(t, ts, "basic-client", "read", "offline_access")
	require.True(t, ts.active(t, g.Access))

	r := ts.devJSON(t, "/dev/expire", `{"token":"`+g.Access+`"}`)
	require.Equal(t, http.StatusNoContent, r.Status, "%s", r.Body)
	require.False(t, ts.active(t, g.Access), "an expired access token is inactive")
	require.True(t, ts.active(t, g.Refresh), "its refresh token is not touched")

	r = ts.devJSON(t, "/dev/expire", `{"token":"`+g.Refresh+`"}`)
	require.Equal(t, http.StatusNoContent, r.Status, "%s", r.Body)
	requireError(t, ts.refresh(t, "basic-client", g.Refresh), http.StatusBadRequest, "invalid_grant")

	requireError(t, ts.devJSON(t, "/dev/expire", `{"token":"ory_at_nothing.nowhere"}`), http.StatusNotFound, "not_found")
	requireError(t, ts.devJSON(t, "/dev/expire", `{"token":""}`), http.StatusBadRequest, "invalid_request")
}

// TestDevFail: the next n requests to a path get the error, then the
// endpoint answers normally again; other paths are not affected.
func TestDevFail(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withDevMode())
	r := ts.devJSON(t, "/dev/fail", `{"path":"/oauth2/token","n":2,"status":503,"error":"temporarily_unavailable"}`)
	require.Equal(t, http.StatusNoContent, r.Status, "%s", r.Body)
	r = ts.devJSON(t, "/dev/fail", `{"path":"`+ts.URL+`/oauth2/token","n":1,"status":401,"error":"invalid_client","error_description":"Nope."}`)
	require.Equal(t, http.StatusNoContent, r.Status, "%s", r.Body)

	cc := map[string]string{"grant_type": "client_credentials", "scope": "read"}
	require.True(t, ts.active(t, issueGrant(t, ts, "basic-client", "read").Access), "introspection is not affected")
	for i := 0; i < 2; i++ {
		requireError(t, ts.post(t, "/oauth2/token", "form", cc, ts.as("basic-client")), http.StatusServiceUnavailable, "temporarily_unavailable")
	}
	r = ts.post(t, "/oauth2/token", "form", cc, ts.as("basic-client"))
	requireError(t, r, http.StatusUnauthorized, "invalid_client")
	require.Equal(t, "Nope.", r.json(t)["error_description"])
	requireChallenge(t, r, challengeBasic)
	r = ts.post(t, "/oauth2/token", "form", cc, ts.as("basic-client"))
	require.Equal(t, http.StatusOK, r.Status, "after the failures, the real answer: %s", r.Body)

	for _, body := range []string{
		`{"path":"/oauth2/token","n":0,"status":503,"error":"temporarily_unavailable"}`,
		`{"path":"/oauth2/token","n":1,"status":200,"error":"ok"}`,
		`{"path":"/oauth2/token","n":1,"status":503}`,
		`{"path":"oauth2/token","n":1,"status":503,"error":"x"}`,
		`{"path":"/dev/tokens","n":1,"status":503,"error":"x"}`,
	} {
		requireError(t, ts.devJSON(t, "/dev/fail", body), http.StatusBadRequest, "invalid_request")
	}
}
