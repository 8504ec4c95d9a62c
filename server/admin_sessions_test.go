package server_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// signedInAs is a browser signed in as username through skip-client,
// which needs no consent, so prompt=none can issue codes at once.
func signedInAs(t *testing.T, ts *testServer, username, password string) *browser {
	t.Helper()
	b := ts.newBrowser(t)
	r := b.signIn(t, ts.authorizeURL("skip-client", nil), username, password)
	require.NotEmpty(t, flowCallback(t, r).Get("code"), "signed in as %s", username)
	return b
}

func TestPasswordChangeThroughAdminAPIEndsTheUsersSessions(t *testing.T) {
	t.Parallel()
	ts := newAdminServer(t)
	bob, alice := signedInAs(t, ts, "bob", "bob-password"), signedInAs(t, ts, "alice", "alice-password")
	requireSignedIn(t, bob)

	ts.adminOK(t, http.MethodPut, "/admin/users/bob", map[string]any{"name": "Bob Renamed"}, http.StatusOK)
	requireSignedIn(t, bob) // a profile change keeps the session

	ts.adminOK(t, http.MethodPut, "/admin/users/bob", map[string]any{"password": "bob-new-password"}, http.StatusOK)
	requireSignedOut(t, bob)
	requireSignedIn(t, alice) // other users stay signed in
}

func TestRevokingASubjectsTokensEndsItsSessions(t *testing.T) {
	t.Parallel()
	ts := newAdminServer(t)
	bob := signedInAs(t, ts, "bob", "bob-password")
	m := ts.adminOK(t, http.MethodPost, "/admin/tokens/revoke", map[string]string{"subject": "bob"}, http.StatusOK)
	require.Equal(t, float64(1), m["ended_sessions"])
	requireSignedOut(t, bob)
}

func TestAdminSessionsListAndEnd(t *testing.T) {
	t.Parallel()
	ts := newAdminServer(t)
	first, second := signedInAs(t, ts, "bob", "bob-password"), signedInAs(t, ts, "bob", "bob-password")
	alice := signedInAs(t, ts, "alice", "alice-password")

	list := ts.adminOK(t, http.MethodGet, "/admin/sessions?subject=bob", nil, http.StatusOK)
	items, _ := list["items"].([]any)
	require.Len(t, items, 2, "%v", list)
	for _, it := range items {
		s := it.(map[string]any)
		require.Equal(t, "bob", s["subject"])
		require.Len(t, s["id"], 64)
		require.NotEmpty(t, s["auth_time"])
		require.NotEmpty(t, s["expires_at"])
	}
	require.NotContains(t, list, "next_page_token")

	m := ts.adminOK(t, http.MethodDelete, "/admin/sessions?subject=bob", nil, http.StatusOK)
	require.Equal(t, map[string]any{"ended_sessions": float64(2)}, m)
	requireSignedOut(t, first)
	requireSignedOut(t, second)
	requireSignedIn(t, alice)

	empty := ts.adminOK(t, http.MethodGet, "/admin/sessions?subject=bob", nil, http.StatusOK)
	require.Equal(t, map[string]any{"items": []any{}}, empty)

	for _, method := range []string{http.MethodGet, http.MethodDelete} {
		requireFields(t, ts.admin(t, method, "/admin/sessions", nil), "subject")
		requireError(t, ts.admin(t, method, "/admin/sessions?subject=nobody", nil), http.StatusNotFound, "not_found")
	}
}
