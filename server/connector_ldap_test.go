package server_test

import (
	"errors"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	goldap "github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/latchauth/latch/connector/ldap/slapdtest"
)

// ldapServer is a test server with connector "dir", a real slapd reached
// with StartTLS and verified by its root CA, groups by member and
// memberUid, and allowedGroups.
func ldapServer(t *testing.T, allowedGroups ...string) (*testServer, *slapdtest.Directory) {
	t.Helper()
	d := slapdtest.Start(t)
	ts := newAdminServer(t)
	ts.adminOK(t, http.MethodPost, "/admin/connectors", map[string]any{
		"id": "dir", "type": "ldap", "name": "Directory",
		"host": d.Addr, "start_tls": true, "root_ca": d.CAFile,
		"bind_dn": slapdtest.ServiceDN, "bind_password": slapdtest.ServicePassword,
		"user_search": map[string]any{"base_dn": slapdtest.PeopleDN, "filter": "(objectClass=inetOrgPerson)",
			"username": "uid", "id_attr": "entryUUID", "email_attr": "mail", "name_attr": "cn"},
		"group_search": map[string]any{"base_dn": slapdtest.GroupsDN, "name_attr": "cn",
			"user_matchers": []map[string]string{{"user_attr": "DN", "group_attr": "member"}, {"user_attr": "uid", "group_attr": "memberUid"}}},
		"allowed_groups": allowedGroups,
	}, http.StatusCreated)
	return ts, d
}

// ldapForm follows authURL to the login page, takes its "Sign in with
// Directory" button and returns the directory's password form.
func ldapForm(t *testing.T, b *browser, authURL string) response {
	t.Helper()
	page := b.loginPage(t, authURL)
	_, rest, ok := strings.Cut(string(page.Body), `href="/login/dir?challenge=`)
	require.True(t, ok, "the login page has the directory's button: %s", page.Body)
	challenge, _, _ := strings.Cut(rest, `"`)
	form := b.get(t, "/login/dir?challenge="+html.UnescapeString(challenge))
	require.Equal(t, http.StatusOK, form.Status, "%s", form.Body)
	require.Contains(t, string(form.Body), "Sign in with Directory")
	return form
}

// TestLDAPConnectorCodeFlow: a person of the directory signs in through
// the login page with their directory password; x/oauth2 gets the tokens
// and go-oidc verifies an ID token with the directory's groups. Groups
// changed in the directory reach the person's profile at the next refresh
// (userinfo shows them), and a person deleted from it gets invalid_grant.
func TestLDAPConnectorCodeFlow(t *testing.T) {
	t.Parallel()
	ts, d := ldapServer(t, "admins", "developers")
	ctx := oidc.ClientContext(t.Context(), ts.http)
	provider, err := oidc.NewProvider(ctx, ts.URL)
	require.NoError(t, err)
	verifier := provider.Verifier(&oidc.Config{ClientID: "public-client"})
	conf := oauth2.Config{ClientID: "public-client", RedirectURL: callback, Endpoint: provider.Endpoint(),
		Scopes: []string{"openid", "profile", "email", "groups", "offline_access"}}
	conf.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	pkce := oauth2.GenerateVerifier()

	b := ts.newBrowser(t)
	form := ldapForm(t, b, conf.AuthCodeURL("state-1234567890", oauth2.S256ChallengeOption(pkce), oauth2.SetAuthURLParam("nonce", "nonce-1234567890")))
	wrong := b.submit(t, form, map[string]string{"username": "alice", "password": "bob-password"})
	require.Equal(t, http.StatusUnauthorized, wrong.Status)
	require.Contains(t, string(wrong.Body), "Wrong username or password.")
	r := b.submit(t, wrong, map[string]string{"username": "alice", "password": "alice-password"})
	consent := b.get(t, location(t, r))
	require.Equal(t, http.StatusOK, consent.Status, "%s", consent.Body)
	cb, err := url.Parse(location(t, b.submit(t, consent, map[string]string{"decision": "allow"})))
	require.NoError(t, err)
	require.Equal(t, "state-1234567890", cb.Query().Get("state"))

	tok, err := conf.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(pkce))
	require.NoError(t, err)
	claims := idTokenClaims(t, verifier, tok)
	require.Equal(t, []any{"admins", "developers"}, claims["groups"])
	require.Equal(t, "Alice Example", claims["name"])
	require.Equal(t, "alice@example.org", claims["email"])
	require.Equal(t, false, claims["email_verified"], "LDAP emails are unverified unless the connector says so")
	require.Equal(t, []any{"pwd"}, claims["amr"], "the password was typed into Latch's own form")
	require.Equal(t, "urn:latch:acr:pwd", claims["acr"])

	// Out of admins in the directory: the refresh carries the new groups.
	del := goldap.NewModifyRequest("cn=admins,"+slapdtest.GroupsDN, nil)
	del.Delete("member", []string{"uid=alice," + slapdtest.PeopleDN})
	del.Add("member", []string{"uid=bob," + slapdtest.PeopleDN}) // groupOfNames needs one member
	require.NoError(t, d.Admin(t).Modify(del))
	tok, err = conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	require.NoError(t, err)
	ui := ts.raw(t, http.MethodGet, "/userinfo", "", "", bearerAuth(tok.AccessToken))
	require.Equal(t, http.StatusOK, ui.Status, "%s", ui.Body)
	require.Equal(t, []any{"developers"}, ui.json(t)["groups"])

	// Deleted from the directory: the next refresh is refused.
	d.Delete(t, "uid=alice,"+slapdtest.PeopleDN)
	_, err = conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	var re *oauth2.RetrieveError
	require.True(t, errors.As(err, &re), "%v", err)
	require.Equal(t, http.StatusBadRequest, re.Response.StatusCode)
	require.Equal(t, "invalid_grant", re.ErrorCode)
}

// idTokenClaims verifies tok's ID token and returns its claims.
func idTokenClaims(t *testing.T, v *oidc.IDTokenVerifier, tok *oauth2.Token) map[string]any {
	t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	idt, err := v.Verify(t.Context(), raw)
	require.NoError(t, err)
	var claims map[string]any
	require.NoError(t, idt.Claims(&claims))
	return claims
}

// TestLDAPConnectorRefusals: what the directory's form refuses, each with
// the page a person can read and never a 500.
func TestLDAPConnectorRefusals(t *testing.T) {
	t.Parallel()
	ts, _ := ldapServer(t, "admins")
	for _, tc := range []struct {
		name, username, password string
		status                   int
		text                     string
	}{
		{"unknown user", "mallory", "alice-password", http.StatusUnauthorized, "Wrong username or password."},
		{"a wildcard in the username", "ali*", "alice-password", http.StatusUnauthorized, "Wrong username or password."},
		{"an injected filter", "*)(uid=alice", "alice-password", http.StatusUnauthorized, "Wrong username or password."},
		{"empty password", "alice", "", http.StatusUnauthorized, "Wrong username or password."},
		{"in no allowed group", "carol", "carol-password", http.StatusForbidden, "not in a group allowed to sign in here"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := ts.newBrowser(t)
			form := ldapForm(t, b, ts.authorizeURL("web-client", nil))
			r := b.submit(t, form, map[string]string{"username": tc.username, "password": tc.password})
			require.Equal(t, tc.status, r.Status, "%s", r.Body)
			require.Contains(t, strings.ReplaceAll(string(r.Body), "&#39;", "'"), tc.text)
		})
	}
	// The admin API shows where the directory is, never its password.
	got := ts.adminOK(t, http.MethodGet, "/admin/connectors/dir", nil, http.StatusOK)
	require.Equal(t, true, got["bind_password_set"])
	require.Equal(t, slapdtest.ServiceDN, got["bind_dn"])
	require.NotContains(t, string(ts.admin(t, http.MethodGet, "/admin/connectors/dir", nil).Body), slapdtest.ServicePassword)
}

// TestConnectorSessionCannotAddPasskey: a person signed in through a
// connector may not add a passkey, which would later sign them in without
// the upstream (here the directory), which could then no longer refuse
// them. Passkeys are on (a localhost issuer), so only that rule refuses.
func TestConnectorSessionCannotAddPasskey(t *testing.T) {
	t.Parallel()
	d := slapdtest.Start(t)
	ts := newTestServer(t, withAdminToken(adminToken), withLocalhostIssuer())
	ts.adminOK(t, http.MethodPost, "/admin/connectors", map[string]any{
		"id": "dir", "type": "ldap", "name": "Directory",
		"host": d.Addr, "start_tls": true, "root_ca": d.CAFile,
		"bind_dn": slapdtest.ServiceDN, "bind_password": slapdtest.ServicePassword,
		"user_search": map[string]any{"base_dn": slapdtest.PeopleDN, "username": "uid", "id_attr": "entryUUID"},
	}, http.StatusCreated)
	conf := oauth2.Config{ClientID: "public-client", RedirectURL: callback,
		Endpoint: oauth2.Endpoint{AuthURL: ts.URL + "/oauth2/auth"}, Scopes: []string{"openid"}}

	b := ts.newBrowser(t)
	form := ldapForm(t, b, conf.AuthCodeURL("state-1234567890", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	r := b.submit(t, form, map[string]string{"username": "alice", "password": "alice-password"})
	require.Equal(t, http.StatusFound, r.Status, "signed in, on to consent: %s", r.Body)

	page := b.accountPage(t)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.URL+"/account/passkeys/begin", nil)
	require.NoError(t, err)
	req.Header.Set("X-CSRF-Token", forms(t, page)[0].Fields.Get("csrf_token"))
	req.Header.Set("Origin", ts.URL)
	r = b.do(t, req)
	require.Equal(t, http.StatusBadRequest, r.Status, "%s", r.Body)
	require.Equal(t, "invalid_request", r.json(t)["error"])
	require.Contains(t, r.json(t)["error_description"], "another identity provider")
}
