package server_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/clients"
)

// storeUnchecked writes c straight to the store, past the client rules, as
// a client stored before them (or edited in the database) may be.
func storeUnchecked(t *testing.T, ts *testServer, c *clients.Client) {
	t.Helper()
	require.NoError(t, ts.Store.UpsertClient(t.Context(), c))
}

// An authorization error goes back with the state only to a redirect URI
// that matches exactly and passes today's rules: a stored javascript: or
// plain-http URI gets the error page instead, never a redirect.
func TestAuthorizeErrorsNeverGoToUnsafeRedirectURIs(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	const safe = "https://legacy.example.com/cb"
	unsafe := []string{"javascript:alert(document.domain)//", "http://legacy.example.com/cb", "data:text/html,hi"}
	storeUnchecked(t, ts, &clients.Client{ID: "legacy", TokenEndpointAuthMethod: clients.AuthMethodNone,
		GrantTypes: []string{clients.GrantAuthorizationCode}, ResponseTypes: []string{"code"},
		RedirectURIs: append([]string{safe}, unsafe...), Scopes: []string{"openid"}})
	b := ts.newBrowser(t)
	for _, uri := range unsafe {
		t.Run(uri, func(t *testing.T) {
			r := b.get(t, ts.authorizeURL("legacy", map[string]string{"redirect_uri": uri, "scope": "openid admin"}))
			flowRequirePage(t, r, http.StatusBadRequest)
		})
	}
	t.Run("the safe one", func(t *testing.T) {
		r := b.get(t, ts.authorizeURL("legacy", map[string]string{"redirect_uri": safe, "scope": "openid admin"}))
		u, err := url.Parse(location(t, r))
		require.NoError(t, err)
		require.Equal(t, safe, u.Scheme+"://"+u.Host+u.Path)
		require.Equal(t, "invalid_scope", u.Query().Get("error"))
		require.Equal(t, "state-1234567890", u.Query().Get("state"))
	})
}

// Logout follows a post_logout_redirect_uri only when it passes the rules
// too: a stored javascript: one ends on the confirmation page.
func TestLogoutNeverGoesToAnUnsafePostLogoutURI(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	b, idToken := signedIn(t, ts)
	c, err := (&clients.Manager{Store: ts.Store}).Get(t.Context(), "web-client")
	require.NoError(t, err)
	c.PostLogoutRedirectURIs = append(c.PostLogoutRedirectURIs, "javascript:alert(1)")
	storeUnchecked(t, ts, c)

	page := b.get(t, logoutURL(map[string]string{"id_token_hint": idToken, "post_logout_redirect_uri": "javascript:alert(1)", "state": "s123"}))
	requireConfirmation(t, page)
	requireSignedIn(t, b)
}

// Every way in refuses dangerous redirect URIs: the admin API and
// registration (config and the CLI have tests of their own).
func TestDangerousRedirectURIsAreRefusedEverywhere(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withRegistration(""), withAdminToken("admin-token"))
	for _, uri := range []string{"javascript:alert(1)", "data:text/html,x", "vbscript:x", "file:///etc/passwd", "http://app.example.com/cb", "https://app.example.com/cb#x", "myapp:/cb"} {
		t.Run(uri, func(t *testing.T) {
			body := `{"redirect_uris":["` + uri + `"]}`
			requireError(t, ts.register(t, body, ""), http.StatusBadRequest, "invalid_redirect_uri")
			body = `{"redirect_uris":["https://app.example.com/cb"],"post_logout_redirect_uris":["` + uri + `"]}`
			requireError(t, ts.register(t, body, ""), http.StatusBadRequest, "invalid_redirect_uri")
			admin := ts.raw(t, http.MethodPost, "/admin/clients", "application/json",
				`{"client_id":"x","grant_types":["authorization_code"],"response_types":["code"],"token_endpoint_auth_method":"none","redirect_uris":["`+uri+`"]}`,
				bearerAuth("admin-token"))
			require.Equal(t, http.StatusBadRequest, admin.Status, "admin API: %s", admin.Body)
			require.Contains(t, string(admin.Body), "redirect_uris")
		})
	}
	ts.registerOK(t, `{"redirect_uris":["com.example.app:/callback","http://[::1]:8080/cb"],"token_endpoint_auth_method":"none"}`)
}
