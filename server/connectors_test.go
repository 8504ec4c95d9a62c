package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// withoutPasswordForm is login.password_form: false.
func withoutPasswordForm() option {
	return func(o *serverOptions) { o.cfg.NoPasswordForm = true }
}

// A connector added through the admin API: its redirect URI shown, its
// secret never; a button on the login page; gone again after delete.
func TestAdminConnectors(t *testing.T) {
	t.Parallel()
	ts := newAdminServer(t)
	corp := map[string]any{"id": "corp", "type": "oidc", "name": "Corp SSO", "issuer": "https://sso.example.com",
		"client_id": "latch", "client_secret": "upstream-secret-value", "scopes": []string{"openid", "email"}}
	r := ts.admin(t, http.MethodPost, "/admin/connectors", corp)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	require.NotContains(t, string(r.Body), "upstream-secret-value")
	require.Equal(t, jsonMap(t, `{"id":"corp","type":"oidc","name":"Corp SSO","source":"api",
		"redirect_uri":"`+ts.URL+`/login/corp/callback","issuer":"https://sso.example.com","client_id":"latch",
		"client_secret_set":true,"scopes":["openid","email"],"link_by_email":false,"refresh_check":true}`), r.json(t))
	require.Equal(t, http.StatusConflict, ts.admin(t, http.MethodPost, "/admin/connectors", corp).Status)

	for name, body := range map[string]any{
		"unknown key":   `{"id":"x","type":"oidc","name":"X","issuer":"https://x.example","client_id":"c","colour":"red"}`,
		"ldap":          map[string]any{"id": "dir", "type": "ldap", "name": "Directory"},
		"reserved id":   map[string]any{"id": "mfa", "type": "oidc", "name": "M", "issuer": "https://x.example", "client_id": "c"},
		"bad id":        map[string]any{"id": "Corp/x", "type": "oidc", "name": "C", "issuer": "https://x.example", "client_id": "c"},
		"no issuer":     map[string]any{"id": "x", "type": "oidc", "name": "X", "client_id": "c"},
		"no oauth2 URL": map[string]any{"id": "x", "type": "oauth2", "name": "X", "client_id": "c"},
		"bad preset":    map[string]any{"id": "x", "type": "oauth2", "preset": "gitlab", "name": "X", "client_id": "c"},
		"not JSON":      `{"id":`,
	} {
		r := ts.admin(t, http.MethodPost, "/admin/connectors", body)
		require.Equal(t, http.StatusBadRequest, r.Status, "%s: %s", name, r.Body)
	}

	list := ts.adminOK(t, http.MethodGet, "/admin/connectors", nil, http.StatusOK)
	require.Len(t, list["items"], 1)
	require.Equal(t, "corp", ts.adminOK(t, http.MethodGet, "/admin/connectors/corp", nil, http.StatusOK)["id"])
	require.Equal(t, http.StatusNotFound, ts.admin(t, http.MethodGet, "/admin/connectors/nope", nil).Status)

	page := ts.newBrowser(t).loginPage(t, ts.authorizeURL("web-client", nil))
	require.Contains(t, string(page.Body), `>Sign in with Corp SSO</a>`)
	require.Contains(t, string(page.Body), `name="password"`, "the password form stays beside the buttons")

	disc := ts.newBrowser(t).get(t, "/.well-known/openid-configuration")
	require.Contains(t, string(disc.Body), `"urn:latch:acr:fed"`, "discovery lists the acr of a sign-in through a connector")

	ts.adminOK(t, http.MethodDelete, "/admin/connectors/corp", nil, http.StatusNoContent)
	require.Equal(t, http.StatusNotFound, ts.admin(t, http.MethodDelete, "/admin/connectors/corp", nil).Status)
}

// An unknown connector, or one without a sign-in in progress, ends on the
// error page, never a 500.
func TestUpstreamLoginErrors(t *testing.T) {
	t.Parallel()
	ts := newAdminServer(t)
	ts.adminOK(t, http.MethodPost, "/admin/connectors", map[string]any{"id": "corp", "type": "oidc", "name": "Corp",
		"issuer": "http://127.0.0.1:1", "client_id": "latch"}, http.StatusCreated)
	b := ts.newBrowser(t)
	page := b.loginPage(t, ts.authorizeURL("web-client", nil))
	_, rest, ok := strings.Cut(string(page.Body), `href="/login/corp?challenge=`)
	require.True(t, ok, "the login page has the connector's button: %s", page.Body)
	challenge, _, _ := strings.Cut(rest, `"`)

	for _, tc := range []struct {
		path   string
		status int
		text   string
	}{
		{"/login/corp", http.StatusBadRequest, "no sign-in in progress"},
		{"/login/nope?challenge=" + challenge, http.StatusNotFound, "not offered here"},
		// The upstream does not answer: discovery fails, a page says so.
		{"/login/corp?challenge=" + challenge, http.StatusBadGateway, "did not succeed"},
		{"/login/corp/callback", http.StatusBadRequest, "expired"},
		{"/login/corp/callback?state=forged&code=x", http.StatusBadRequest, "expired"},
		{"/login/corp/callback?error=access_denied", http.StatusBadRequest, "expired"},
	} {
		r := b.get(t, tc.path)
		require.Equal(t, tc.status, r.Status, "%s: %s", tc.path, r.Body)
		require.Contains(t, strings.ReplaceAll(string(r.Body), "&#39;", "'"), tc.text, tc.path)
		require.Equal(t, "text/html; charset=utf-8", r.Header.Get("Content-Type"))
	}
}

// login.password_form: false shows no password form and refuses its
// POST.
func TestPasswordFormOff(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withoutPasswordForm())
	b := ts.newBrowser(t)
	loginURL := location(t, b.get(t, ts.authorizeURL("web-client", nil)))
	page := b.get(t, loginURL)
	require.Equal(t, http.StatusOK, page.Status)
	require.NotContains(t, string(page.Body), `name="password"`)
	require.Empty(t, forms(t, page), "no form at all: no connectors, no dev mode")
	// A password posted anyway, with a good CSRF token (from the device
	// page of the same browser), is refused.
	device := b.get(t, "/device")
	token := forms(t, device)[0].Fields.Get("csrf_token")
	require.NotEmpty(t, token)
	req, err := http.NewRequest(http.MethodPost, ts.URL+loginURL, strings.NewReader(url.Values{
		"username": {"alice"}, "password": {"alice-password"}, "csrf_token": {token}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", ts.URL)
	r := b.do(t, req)
	require.Equal(t, http.StatusForbidden, r.Status, "%s", r.Body)
	require.Contains(t, string(r.Body), "turned off")
}
