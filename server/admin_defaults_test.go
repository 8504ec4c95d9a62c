package server_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAdminCodeClientWithoutResponseTypesGetsCode: the admin API accepts
// the client config.yaml, the CLI and registration accept, with the same
// default, and answers [] for every empty list.
func TestAdminCodeClientWithoutResponseTypesGetsCode(t *testing.T) {
	t.Parallel()
	ts := newAdminServer(t)
	r := ts.admin(t, http.MethodPost, "/admin/clients", `{
		"client_id": "web", "grant_types": ["authorization_code"],
		"redirect_uris": ["https://app.example.com/cb"]
	}`)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	m := r.json(t)
	require.Equal(t, []any{"code"}, m["response_types"])
	require.Equal(t, []any{}, m["post_logout_redirect_uris"])
	require.Equal(t, []any{}, m["audience"])
	require.NotContains(t, string(r.Body), "null")
}

// TestAdminPasswordsFollowNISTMinimum: POST and PUT refuse a password
// under 8 characters as a field error naming "password".
func TestAdminPasswordsFollowNISTMinimum(t *testing.T) {
	t.Parallel()
	ts := newAdminServer(t)
	r := ts.admin(t, http.MethodPost, "/admin/users", `{"username": "erin", "password": "1234567"}`)
	require.Equal(t, http.StatusBadRequest, r.Status, "%s", r.Body)
	require.Contains(t, string(r.Body), `"field":"password"`)
	require.Contains(t, string(r.Body), "at least 8 characters")

	ts.adminOK(t, http.MethodPost, "/admin/users", map[string]string{"username": "erin", "password": "12345678"}, http.StatusCreated)
	r = ts.admin(t, http.MethodPut, "/admin/users/erin", `{"username": "erin", "password": "short"}`)
	require.Equal(t, http.StatusBadRequest, r.Status, "%s", r.Body)
	require.Contains(t, string(r.Body), `"field":"password"`)
}
