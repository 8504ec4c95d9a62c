package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/server"
)

// OpenID Connect Back-Channel Logout 1.0, end to end: a relying party (an
// httptest server) receives the logout token Latch POSTs when a session
// ends, and checks it as §2.6 tells it to, with go-oidc against Latch's
// JWKS (backchannel_rp_test.go).

// TestBackchannelLogoutAfterRPInitiatedLogout: alice signs in to a client
// with a back-channel URI and to one without; her logout through the
// logout page sends one logout token, to the first, whose sid is that of
// its ID token. The other client gets nothing.
func TestBackchannelLogoutAfterRPInitiatedLogout(t *testing.T) {
	t.Parallel()
	ts, rp := webClientWithRP(t, answerAlways(http.StatusOK))

	b, idToken := signedIn(t, ts)
	sid := idTokenSID(t, ts, idToken, "web-client")
	// The session's cookie is never the sid, nor is the handle operators see.
	for _, c := range b.client.Jar.Cookies(mustURL(t, ts.URL)) {
		require.NotContains(t, c.Value, sid)
	}
	sessions, err := ts.Store.ListLoginSessions(t.Context(), "alice")
	require.NoError(t, err)
	require.Len(t, sessions, 1)
	require.NotEqual(t, sessions[0].Handle, sid)
	// The same session in another client (skip-client has no URI): the same sid.
	other := codeFlow(t, b, "skip-client", nil)
	require.Equal(t, sid, idTokenSID(t, ts, other.ID, "skip-client"))

	r := b.get(t, logoutURL(map[string]string{"id_token_hint": idToken, "post_logout_redirect_uri": byeURI, "state": "s1"}))
	require.Equal(t, http.StatusFound, r.Status, "%s", r.Body)
	requireSignedOut(t, b)

	claims := verifyLogoutToken(t, ts, rp.wait(t, 1)[0], "web-client")
	require.Equal(t, "alice", claims["sub"])
	require.Equal(t, sid, claims["sid"], "the sid of the ID token")
	time.Sleep(300 * time.Millisecond) // six polls: nothing else comes
	require.Equal(t, 1, rp.count(), "one token, to the one client with a URI")
	require.Zero(t, queued(t, ts))
	require.Contains(t, scrape(t, ts), `latch_backchannel_logout_deliveries_total{outcome="delivered"} 1`)
}

// TestBackchannelLogoutAfterAdminEndsSessions: DELETE /admin/sessions
// tells the clients of every session it ends, each with its own sid, and
// so does DELETE /admin/users/NAME.
func TestBackchannelLogoutAfterAdminEndsSessions(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, fastBackchannel(), withAdminToken(adminToken))
	rp := newTestRP(t, answerAlways(http.StatusNoContent))
	setBackchannel(t, ts, "skip-client", rp.uri())
	runLogoutWorker(t, ts)

	signedInAs(t, ts, "bob", "bob-password")
	signedInAs(t, ts, "bob", "bob-password")
	alice := signedInAs(t, ts, "alice", "alice-password")
	m := ts.adminOK(t, http.MethodDelete, "/admin/sessions?subject=bob", nil, http.StatusOK)
	require.Equal(t, float64(2), m["ended_sessions"])

	posts := rp.wait(t, 2)
	sids := map[any]bool{}
	for _, p := range posts {
		claims := verifyLogoutToken(t, ts, p, "skip-client")
		require.Equal(t, "bob", claims["sub"])
		sids[claims["sid"]] = true
	}
	require.Len(t, sids, 2, "one token per session")
	requireSignedIn(t, alice)
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, 2, rp.count(), "alice's session is not told")

	// Deleting a user ends the user's sessions, and tells their clients.
	ts.adminOK(t, http.MethodDelete, "/admin/users/alice", nil, http.StatusNoContent)
	require.Equal(t, "alice", verifyLogoutToken(t, ts, rp.wait(t, 3)[2], "skip-client")["sub"])
}

// TestBackchannelLogoutAfterAccountPasswordChange: a password changed on
// /account ends alice's other session, whose client is told with that
// session's sid; the session that changed it goes on, untold.
func TestBackchannelLogoutAfterAccountPasswordChange(t *testing.T) {
	t.Parallel()
	ts, rp := webClientWithRP(t, answerAlways(http.StatusOK))

	a, aToken := signedIn(t, ts)
	other, otherToken := signedIn(t, ts)
	aSID, otherSID := idTokenSID(t, ts, aToken, "web-client"), idTokenSID(t, ts, otherToken, "web-client")
	require.NotEqual(t, aSID, otherSID, "two sessions, two sids")

	r := a.accountPost(t, a.accountPage(t), "/account/password", nil, map[string]string{
		"current_password": "alice-password", "new_password": "a-new-password", "confirm_password": "a-new-password"})
	require.Equal(t, "/account?done=password", location(t, r))

	claims := verifyLogoutToken(t, ts, rp.wait(t, 1)[0], "web-client")
	require.Equal(t, otherSID, claims["sid"])
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, 1, rp.count(), "the session that changed the password is not ended")
	requireSignedOut(t, other)
}

// TestBackchannelLogoutRetriesAfterServerError: the relying party answers
// 500 first; the delivery is tried again after the backoff, with a new
// token (its own jti) for the same session, and then counted delivered.
func TestBackchannelLogoutRetriesAfterServerError(t *testing.T) {
	t.Parallel()
	ts, rp := webClientWithRP(t, func(n int) int {
		if n == 0 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})

	b, idToken := signedIn(t, ts)
	r := b.get(t, logoutURL(map[string]string{"id_token_hint": idToken, "post_logout_redirect_uri": byeURI}))
	require.Equal(t, http.StatusFound, r.Status)

	posts := rp.wait(t, 2)
	first, second := verifyLogoutToken(t, ts, posts[0], "web-client"), verifyLogoutToken(t, ts, posts[1], "web-client")
	require.Equal(t, first["sid"], second["sid"])
	require.NotEqual(t, first["jti"], second["jti"], "a retry is a new token")
	require.GreaterOrEqual(t, posts[1].at.Sub(posts[0].at), 40*time.Millisecond, "after the backoff")
	requireEventually(t, func() bool { return queued(t, ts) == 0 })
	m := scrape(t, ts)
	require.Contains(t, m, `latch_backchannel_logout_deliveries_total{outcome="retry"} 1`)
	require.Contains(t, m, `latch_backchannel_logout_deliveries_total{outcome="delivered"} 1`)
}

// TestBackchannelLogoutGivesUp: a relying party that always fails is
// tried five times, then the delivery is dropped and counted; one that
// refuses the token (400, §2.8) is not tried again.
func TestBackchannelLogoutGivesUp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status, attempts int
		outcome          string
	}{
		{http.StatusServiceUnavailable, 5, `outcome="dropped"} 1`},
		{http.StatusBadRequest, 1, `outcome="failed"} 1`},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, func(o *serverOptions) {
				o.cfg.Backchannel = server.BackchannelOptions{Poll: 20 * time.Millisecond, RetryBase: 10 * time.Millisecond, Timeout: 2 * time.Second}
			})
			rp := newTestRP(t, answerAlways(tc.status))
			setBackchannel(t, ts, "web-client", rp.uri())
			runLogoutWorker(t, ts)
			b, idToken := signedIn(t, ts)
			b.get(t, logoutURL(map[string]string{"id_token_hint": idToken, "post_logout_redirect_uri": byeURI}))

			rp.wait(t, tc.attempts)
			requireEventually(t, func() bool { return queued(t, ts) == 0 })
			time.Sleep(500 * time.Millisecond) // the backoff would be over: nothing more comes
			require.Equal(t, tc.attempts, rp.count())
			require.Contains(t, scrape(t, ts), "latch_backchannel_logout_deliveries_total{"+tc.outcome)
		})
	}
}

// TestBackchannelLogoutHangingRPDoesNotBlockLogout: the relying party
// holds the request; the logout page has answered long before, and the
// attempt ends at its timeout and is tried again.
func TestBackchannelLogoutHangingRPDoesNotBlockLogout(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(o *serverOptions) {
		o.cfg.Backchannel = server.BackchannelOptions{Poll: 50 * time.Millisecond, RetryBase: 50 * time.Millisecond, Timeout: time.Second}
	})
	rp := newTestRP(t, answerAlways(http.StatusOK))
	rp.hang = func(n int) bool { return n == 0 }
	setBackchannel(t, ts, "web-client", rp.uri())
	runLogoutWorker(t, ts)

	b, idToken := signedIn(t, ts)
	r := b.get(t, logoutURL(map[string]string{"id_token_hint": idToken, "post_logout_redirect_uri": byeURI}))
	answered := time.Now()
	require.Equal(t, http.StatusFound, r.Status)
	requireSignedOut(t, b)

	posts := rp.wait(t, 2) // the held one, then the retry after its timeout
	rp.mu.Lock()
	ended := rp.ended[0]
	rp.mu.Unlock()
	require.True(t, answered.Before(ended), "the logout page answered before the held request ended")
	require.GreaterOrEqual(t, ended.Sub(posts[0].at), 900*time.Millisecond, "held until the attempt's timeout")
	verifyLogoutToken(t, ts, posts[1], "web-client")
	requireEventually(t, func() bool { return queued(t, ts) == 0 })
	require.Contains(t, scrape(t, ts), `latch_backchannel_logout_deliveries_total{outcome="retry"} 1`)
}

// TestBackchannelLogoutSurvivesRestart: a delivery queued while no worker
// runs (the relying party unreachable, the process stopped) is in the
// database, and the next process delivers it.
func TestBackchannelLogoutSurvivesRestart(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, fastBackchannel())
	rp := newTestRP(t, answerAlways(http.StatusOK))
	setBackchannel(t, ts, "web-client", rp.uri())

	b, idToken := signedIn(t, ts)
	sid := idTokenSID(t, ts, idToken, "web-client")
	r := b.get(t, logoutURL(map[string]string{"id_token_hint": idToken, "post_logout_redirect_uri": byeURI}))
	require.Equal(t, http.StatusFound, r.Status)
	require.EqualValues(t, 1, queued(t, ts))

	ts = ts.restart(t)
	runLogoutWorker(t, ts)
	claims := verifyLogoutToken(t, ts, rp.wait(t, 1)[0], "web-client")
	require.Equal(t, sid, claims["sid"])
	requireEventually(t, func() bool { return queued(t, ts) == 0 })
}

// TestBackchannelLogoutRegisteredClientsReachPublicAddressesOnly: a
// dynamically registered client's URI is one anybody may have chosen, so
// Latch never POSTs from it to a loopback (or private) address: the
// delivery is dropped, and the relying party hears nothing.
func TestBackchannelLogoutRegisteredClientsReachPublicAddressesOnly(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, fastBackchannel())
	rp := newTestRP(t, answerAlways(http.StatusOK))
	fc, err := ts.Store.GetClient(t.Context(), "web-client")
	require.NoError(t, err)
	c := fc.(*clients.Client).Clone()
	c.BackchannelLogoutURI = rp.uri()
	c.RegistrationTokenHash = strings.Repeat("ab", 32) // as registration stores it
	require.NoError(t, ts.Store.UpdateClient(t.Context(), c))
	runLogoutWorker(t, ts)

	b, idToken := signedIn(t, ts)
	b.get(t, logoutURL(map[string]string{"id_token_hint": idToken, "post_logout_redirect_uri": byeURI}))
	requireEventually(t, func() bool { return queued(t, ts) == 0 })
	require.Contains(t, scrape(t, ts), `latch_backchannel_logout_deliveries_total{outcome="dropped"} 1`)
	require.Zero(t, rp.count(), "no request reached the loopback address")
}

// TestBackchannelLogoutMetadata: discovery says back-channel logout (with
// sid) is supported; a client registers its URI (RFC 7591) or is given
// one through the admin API, and gets it back; a URI with a fragment, to
// a remote host over http, or of a private-use scheme is refused.
func TestBackchannelLogoutMetadata(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withRegistration(""), withAdminToken(adminToken))
	var doc map[string]any
	require.NoError(t, json.Unmarshal(ts.get(t, "/.well-known/openid-configuration").Body, &doc))
	require.Equal(t, true, doc["backchannel_logout_supported"])
	require.Equal(t, true, doc["backchannel_logout_session_supported"])
	require.Contains(t, doc["claims_supported"], "sid")

	r := ts.register(t, `{"redirect_uris":["https://rp.example.com/cb"],"backchannel_logout_uri":"https://rp.example.com/bc","backchannel_logout_session_required":true}`, "")
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	m := r.json(t)
	require.Equal(t, "https://rp.example.com/bc", m["backchannel_logout_uri"])
	require.Equal(t, true, m["backchannel_logout_session_required"])
	fc, err := ts.Store.GetClient(t.Context(), m["client_id"].(string))
	require.NoError(t, err)
	require.Equal(t, "https://rp.example.com/bc", fc.(*clients.Client).BackchannelLogoutURI)

	for _, bad := range []string{"https://rp.example.com/bc#x", "http://rp.example.com/bc", "com.example.app:/bc"} {
		r := ts.register(t, `{"redirect_uris":["https://rp.example.com/cb"],"backchannel_logout_uri":"`+bad+`"}`, "")
		requireError(t, r, http.StatusBadRequest, "invalid_client_metadata")
		require.Contains(t, string(r.Body), "backchannel_logout_uri")
	}

	client := map[string]any{"client_id": "admin-made", "grant_types": []string{"client_credentials"},
		"backchannel_logout_uri": "https://rp.example.com/bc", "backchannel_logout_session_required": true}
	got := ts.adminOK(t, http.MethodPost, "/admin/clients", client, http.StatusCreated)
	require.Equal(t, "https://rp.example.com/bc", got["backchannel_logout_uri"])
	require.Equal(t, true, got["backchannel_logout_session_required"])
	client["client_id"], client["backchannel_logout_uri"] = "admin-bad", "https://rp.example.com/bc#frag"
	requireFields(t, ts.admin(t, http.MethodPost, "/admin/clients", client), "backchannel_logout_uri")
}
