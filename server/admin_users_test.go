package server_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// canSignIn reports whether username signs in with password on the login
// page (a redirect onwards, not the form again).
func (ts *testServer) canSignIn(t *testing.T, username, password string) bool {
	t.Helper()
	r := ts.newBrowser(t).signIn(t, ts.authorizeURL("web-client", nil), username, password)
	return r.Status == http.StatusFound || r.Status == http.StatusSeeOther
}

func TestAdminUserLifecycle(t *testing.T) {
	t.Parallel()
	ts := newAdminServer(t)

	r := ts.admin(t, http.MethodPost, "/admin/users", `{
		"username": "carol", "password": "carol-password", "email": "carol@example.com", "email_verified": true,
		"name": "Carol Example", "groups": ["ops"], "claims": {"department": "operations", "level": 3}
	}`)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	require.Equal(t, ts.URL+"/admin/users/carol", r.Header.Get("Location"))
	require.NotContains(t, string(r.Body), "password")
	require.NotContains(t, string(r.Body), "argon2")
	want := jsonMap(t, `{
		"username": "carol", "email": "carol@example.com", "email_verified": true, "name": "Carol Example",
		"groups": ["ops"], "claims": {"department": "operations", "level": 3}, "second_factors": []
	}`)
	require.Equal(t, want, withoutTimes(t, r.json(t)))
	require.Equal(t, want, withoutTimes(t, ts.adminOK(t, http.MethodGet, "/admin/users/carol", nil, http.StatusOK)))
	require.True(t, ts.canSignIn(t, "carol", "carol-password"), "the password set through the API works")
	require.False(t, ts.canSignIn(t, "carol", "wrong-password"))

	// A minimal user shows empty lists and objects, not null.
	m := ts.adminOK(t, http.MethodPost, "/admin/users", map[string]string{"username": "dave", "password": "dave-password"}, http.StatusCreated)
	require.Equal(t, jsonMap(t, `{"username":"dave","email":"","email_verified":false,"name":"","groups":[],"claims":{},"second_factors":[]}`), withoutTimes(t, m))

	// PUT replaces the profile and keeps the password unless one is sent.
	m = ts.adminOK(t, http.MethodPut, "/admin/users/carol", map[string]any{"name": "Carol Renamed", "groups": []string{"ops", "admins"}}, http.StatusOK)
	require.Equal(t, jsonMap(t, `{"username":"carol","email":"","email_verified":false,"name":"Carol Renamed","groups":["ops","admins"],"claims":{},"second_factors":[]}`),
		withoutTimes(t, m))
	require.True(t, ts.canSignIn(t, "carol", "carol-password"), "a profile update keeps the password")
	ts.adminOK(t, http.MethodPut, "/admin/users/carol", map[string]any{"password": "new-carol-password", "name": "Carol"}, http.StatusOK)
	require.False(t, ts.canSignIn(t, "carol", "carol-password"), "the old password stops working")
	require.True(t, ts.canSignIn(t, "carol", "new-carol-password"))

	// A GET sent back as PUT changes nothing.
	before := ts.admin(t, http.MethodGet, "/admin/users/alice", nil)
	after := ts.adminOK(t, http.MethodPut, "/admin/users/alice", string(before.Body), http.StatusOK)
	require.Equal(t, before.json(t)["created_at"], after["created_at"])
	require.Equal(t, withoutTimes(t, before.json(t)), withoutTimes(t, after))
	require.True(t, ts.canSignIn(t, "alice", "alice-password"))

	ts.adminOK(t, http.MethodDelete, "/admin/users/carol", nil, http.StatusNoContent)
	require.False(t, ts.canSignIn(t, "carol", "new-carol-password"))
	for _, req := range []struct{ method, body string }{
		{http.MethodGet, ""}, {http.MethodDelete, ""}, {http.MethodPut, `{"name":"x"}`},
	} {
		r := ts.admin(t, req.method, "/admin/users/carol", req.body)
		requireError(t, r, http.StatusNotFound, "not_found")
		require.Contains(t, r.json(t)["error_description"], `"carol"`)
	}
	requireError(t, ts.admin(t, http.MethodGet, "/admin/users/carol", nil), http.StatusNotFound, "not_found")
}

func TestAdminUserErrors(t *testing.T) {
	t.Parallel()
	ts := newAdminServer(t)
	for _, tt := range []struct {
		name, method, path, body string
		fields                   []string
	}{
		{"no username, no password", http.MethodPost, "/admin/users", `{}`, []string{"username", "password"}},
		{"empty password", http.MethodPost, "/admin/users", `{"username":"erin","password":""}`, []string{"password"}},
		{"slash in username", http.MethodPost, "/admin/users", `{"username":"a/b","password":"p-long-enough"}`, []string{"username"}},
		{"control character", http.MethodPost, "/admin/users", `{"username":"a\nb","password":"p-long-enough"}`, []string{"username"}},
		{"long username", http.MethodPost, "/admin/users", `{"username":"` + strings.Repeat("u", 256) + `","password":"p-long-enough"}`, []string{"username"}},
		{"empty group", http.MethodPost, "/admin/users", `{"username":"erin","password":"p-long-enough","groups":["ok",""]}`, []string{"groups[1]"}},
		{"password hash is not a member", http.MethodPost, "/admin/users", `{"username":"erin","password_hash":"$argon2id$x"}`, []string{"password_hash"}},
		{"claims must be an object", http.MethodPost, "/admin/users", `{"username":"erin","password":"p-long-enough","claims":[1]}`, []string{"claims"}},
		{"update: other username", http.MethodPut, "/admin/users/alice", `{"username":"bob"}`, []string{"username"}},
		{"update: empty password", http.MethodPut, "/admin/users/alice", `{"password":""}`, []string{"password"}},
		{"update: not JSON", http.MethodPut, "/admin/users/alice", `name=x`, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			requireFields(t, ts.admin(t, tt.method, tt.path, tt.body), tt.fields...)
		})
	}
	t.Run("conflict", func(t *testing.T) {
		r := ts.admin(t, http.MethodPost, "/admin/users", `{"username":"alice","password":"taken-over"}`)
		requireError(t, r, http.StatusConflict, "conflict")
		require.True(t, ts.canSignIn(t, "alice", "alice-password"), "the existing user is untouched")
		require.False(t, ts.canSignIn(t, "alice", "taken-over"))
	})
	require.Equal(t, "Alice Example", ts.adminOK(t, http.MethodGet, "/admin/users/alice", nil, http.StatusOK)["name"])
	require.Len(t, ts.adminOK(t, http.MethodGet, "/admin/users", nil, http.StatusOK)["items"], 2, "nothing was created")
}

func TestAdminUserPagination(t *testing.T) {
	t.Parallel()
	ts := newAdminServer(t)
	for _, name := range []string{"zed", "carol", "mallory"} {
		ts.adminOK(t, http.MethodPost, "/admin/users", map[string]string{"username": name, "password": name + "-password"}, http.StatusCreated)
	}
	pages := ts.listPages(t, "/admin/users", "username", 2)
	require.Equal(t, [][]string{{"alice", "bob"}, {"carol", "mallory"}, {"zed"}}, pages)
	for _, q := range []string{"limit=0", "limit=9999", "page_token=***"} {
		r := ts.admin(t, http.MethodGet, "/admin/users?"+q, nil)
		requireError(t, r, http.StatusBadRequest, "invalid_request")
	}
}

// TestAdminDeleteUserRevokes: deleting a user ends every grant of theirs
// (inactive at introspection at once) and forgets their consents; other
// users keep theirs.
func TestAdminDeleteUserRevokes(t *testing.T) {
	t.Parallel()
	ts := newAdminServer(t)
	ctx := context.Background()
	issued := []grant{issueGrant(t, ts, "web-client", "openid", "offline_access"), issueGrant(t, ts, "public-client", "openid", "offline_access")}
	browserTokens := codeFlow(t, ts.newBrowser(t), "web-client", nil) // signed in as alice
	machine := ts.clientCredentials(t, "basic-client", "read")
	require.NoError(t, ts.Store.SaveConsent(ctx, "alice", "web-client", []string{"openid"}))
	require.NoError(t, ts.Store.SaveConsent(ctx, "bob", "web-client", []string{"openid"}))
	require.Len(t, ts.adminOK(t, http.MethodGet, "/admin/consents?subject=alice", nil, http.StatusOK)["items"], 1)

	ts.adminOK(t, http.MethodDelete, "/admin/users/alice", nil, http.StatusNoContent)

	tokens := []string{browserTokens.Access, browserTokens.Refresh}
	for _, g := range issued {
		tokens = append(tokens, g.Access, g.Refresh)
	}
	for i, tok := range tokens {
		require.False(t, ts.active(t, tok), "alice's token %d is inactive at once", i)
	}
	requireError(t, ts.refresh(t, "web-client", browserTokens.Refresh), http.StatusBadRequest, "invalid_grant")
	require.True(t, ts.active(t, machine), "tokens of other subjects stay")

	consents, err := ts.Store.ListConsents(ctx, "alice")
	require.NoError(t, err)
	require.Empty(t, consents, "alice's consents are gone")
	requireError(t, ts.admin(t, http.MethodGet, "/admin/consents?subject=alice", nil), http.StatusNotFound, "not_found")
	require.Len(t, ts.adminOK(t, http.MethodGet, "/admin/consents?subject=bob", nil, http.StatusOK)["items"], 1, "bob keeps his")

	m := ts.adminOK(t, http.MethodGet, "/admin/users", nil, http.StatusOK)
	var names []string
	for _, it := range m["items"].([]any) {
		names = append(names, it.(map[string]any)["username"].(string))
	}
	require.False(t, slices.Contains(names, "alice"))
}
