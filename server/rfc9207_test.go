package server_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAuthorizationResponsesCarryIssuer: RFC 9207 — the issuer is in
// every authorization response, success and error, in the query and in
// the form_post page, and discovery says so.
func TestAuthorizationResponsesCarryIssuer(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)

	t.Run("discovery", func(t *testing.T) {
		doc := ts.get(t, "/.well-known/openid-configuration").json(t)
		require.Equal(t, true, doc["authorization_response_iss_parameter_supported"])
	})
	t.Run("success in the query", func(t *testing.T) {
		cb := ts.newBrowser(t).authorize(t, ts.authorizeURL("web-client", nil))
		require.NotEmpty(t, cb.Query().Get("code"))
		require.Equal(t, ts.URL, cb.Query().Get("iss"))
		require.Equal(t, "state-1234567890", cb.Query().Get("state"))
	})
	t.Run("success in form_post", func(t *testing.T) {
		b := ts.newBrowser(t)
		next := flowSignIn(t, b, ts.authorizeURL("web-client", map[string]string{"response_mode": "form_post"}))
		r := flowConsent(t, b, next, map[string]string{"decision": "allow"})
		forms, _ := pagesParse(t, r)
		require.Len(t, forms, 1)
		require.NotEmpty(t, forms[0].control("code").Value)
		require.Equal(t, ts.URL, forms[0].control("iss").Value)
	})
	t.Run("error in the query", func(t *testing.T) {
		r := ts.newBrowser(t).get(t, ts.authorizeURL("web-client", map[string]string{"prompt": "none"}))
		cb, err := url.Parse(location(t, r))
		require.NoError(t, err)
		require.Equal(t, "login_required", cb.Query().Get("error"))
		require.Equal(t, ts.URL, cb.Query().Get("iss"))
		require.Equal(t, "state-1234567890", cb.Query().Get("state"))
		require.NotEmpty(t, cb.Query().Get("error_description"))
	})
	t.Run("error in the fragment", func(t *testing.T) {
		r := ts.newBrowser(t).get(t, ts.authorizeURL("web-client", map[string]string{"prompt": "none", "response_mode": "fragment"}))
		cb, err := url.Parse(location(t, r))
		require.NoError(t, err)
		frag, err := url.ParseQuery(cb.Fragment)
		require.NoError(t, err)
		require.NotEmpty(t, frag.Get("error"), "%s", cb)
		require.Equal(t, ts.URL, frag.Get("iss"))
	})
	t.Run("error in form_post", func(t *testing.T) {
		r := ts.newBrowser(t).get(t, ts.authorizeURL("web-client", map[string]string{"prompt": "none", "response_mode": "form_post"}))
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		forms, _ := pagesParse(t, r)
		require.Len(t, forms, 1)
		require.Equal(t, "login_required", forms[0].control("error").Value)
		require.Equal(t, ts.URL, forms[0].control("iss").Value)
	})
	t.Run("access denied", func(t *testing.T) {
		b := ts.newBrowser(t)
		next := flowSignIn(t, b, ts.authorizeURL("web-client", nil))
		cb, err := url.Parse(location(t, flowConsent(t, b, next, map[string]string{"decision": "deny"})))
		require.NoError(t, err)
		require.Equal(t, "access_denied", cb.Query().Get("error"))
		require.Equal(t, ts.URL, cb.Query().Get("iss"))
	})
}
