package server_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/clients"
)

// TestUserinfoRefusesQueryToken: RFC 9700 §2 forbids access tokens in the
// query string; userinfo refuses one there (400 invalid_request, even
// beside a header) and takes the header, or a form body on POST.
func TestUserinfoRefusesQueryToken(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	tok := issueGrant(t, ts, "web-client", "openid", "profile").Access
	q := "/userinfo?access_token=" + url.QueryEscape(tok)

	for _, tc := range []struct {
		name string
		r    response
	}{
		{"GET query", ts.raw(t, http.MethodGet, q, "", "", noAuth)},
		{"POST query", ts.raw(t, http.MethodPost, q, "", "", noAuth)},
		{"GET query and header", ts.raw(t, http.MethodGet, q, "", "", bearerAuth(tok))},
		{"POST header and body", ts.raw(t, http.MethodPost, "/userinfo", "application/x-www-form-urlencoded", "access_token="+url.QueryEscape(tok), bearerAuth(tok))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireError(t, tc.r, http.StatusBadRequest, "invalid_request")
			require.Contains(t, tc.r.Header.Get("WWW-Authenticate"), `error="invalid_request"`)
		})
	}
	t.Run("header", func(t *testing.T) {
		r := ts.raw(t, http.MethodGet, "/userinfo", "", "", bearerAuth(tok))
		require.Equal(t, http.StatusOK, r.Status, "body %s", r.Body)
		require.Equal(t, "alice", r.json(t)["sub"])
	})
	t.Run("POST form body", func(t *testing.T) {
		r := ts.raw(t, http.MethodPost, "/userinfo", "application/x-www-form-urlencoded", "access_token="+url.QueryEscape(tok), noAuth)
		require.Equal(t, http.StatusOK, r.Status, "body %s", r.Body)
		require.Equal(t, "alice", r.json(t)["sub"])
	})
}

// TestUserinfoRefusesClientCredentialsToken: a client_credentials token's
// subject is its client id; userinfo must not answer it as the user of that
// name (401 invalid_token), and a user may not be created with a client's
// id as name through the admin API.
func TestUserinfoRefusesClientCredentialsToken(t *testing.T) {
	t.Parallel()
	ts := newAdminServer(t)
	// A client whose id is a user's name, allowed the openid scope.
	_, err := (&clients.Manager{Store: ts.Store, Hasher: clients.NewHasher(10)}).Create(context.Background(), &clients.Client{
		ID: "alice", TokenEndpointAuthMethod: clients.AuthMethodBasic,
		GrantTypes: []string{"client_credentials"}, Scopes: []string{"openid", "profile"},
	}, "alice-client-secret-0123456789")
	require.NoError(t, err)
	r := ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "client_credentials", "scope": "openid profile"},
		basicAuth("alice", "alice-client-secret-0123456789"))
	require.Equal(t, http.StatusOK, r.Status, "body %s", r.Body)
	tok := r.json(t)["access_token"].(string)

	info := ts.raw(t, http.MethodGet, "/userinfo", "", "", bearerAuth(tok))
	requireError(t, info, http.StatusUnauthorized, "invalid_token")
	require.NotContains(t, string(info.Body), "alice@", "userinfo gave away the user's claims")

	created := ts.admin(t, http.MethodPost, "/admin/users", `{"username":"basic-client","password":"basic-client-password"}`)
	requireError(t, created, http.StatusBadRequest, "invalid_request")
	require.True(t, strings.Contains(string(created.Body), "a username may not be a client id"), "body %s", created.Body)
}
