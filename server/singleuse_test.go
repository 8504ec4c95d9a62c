package server_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/server"
)

// Single-use things under concurrency: N uses released together, exactly
// one wins, the others get the RFC's error, never a 500.

// raceSizes are the numbers of concurrent uses each race test tries, and
// raceRounds how often: a race lost once in a while must still show.
var raceSizes = []int{2, 12}

const raceRounds = 4

// TestAuthorizationCodeConcurrentExchangeOneWins: one code exchanged by
// 2 and 12 requests at once gives tokens once; every other exchange is
// 400 invalid_grant, and as a detected reuse (RFC 6749 §4.1.2) it revokes
// what the winner was issued.
func TestAuthorizationCodeConcurrentExchangeOneWins(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend ...option) {
		ts := newTestServer(t, backend...)
		for _, n := range raceSizes {
			for round := range raceRounds {
				t.Run(fmt.Sprintf("%d requests round %d", n, round), func(t *testing.T) {
					code, err := ts.Server.IssueAuthorizeCode(t.Context(), server.CodeRequest{ClientID: "web-client",
						Subject: "alice", RedirectURI: callback, Scopes: []string{"openid", "offline_access"}, Nonce: "nonce-0123456789"})
					require.NoError(t, err)
					answers := ts.raceForm(t, n, "/oauth2/token", map[string]string{
						"grant_type": "authorization_code", "code": code, "redirect_uri": callback,
					}, ts.as("web-client"))
					won := tokensOf(t, requireOneWinner(t, answers, http.StatusBadRequest, "invalid_grant"))
					require.False(t, ts.active(t, won.Access), "the reuse revoked the winner's access token")
					require.False(t, ts.active(t, won.Refresh), "the reuse revoked the winner's refresh token")
				})
			}
		}
	})
}

// TestRefreshConcurrentUseOneWins: one refresh token used by 2 and 12
// refreshes at once, with rotation and no grace period, is rotated once;
// every other refresh is 400 invalid_grant (not invalid_request "please
// retry", which would end in reuse detection anyway), and as a reuse it
// revokes the grant, the winner's new tokens included.
func TestRefreshConcurrentUseOneWins(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend ...option) {
		ts := newTestServer(t, backend...)
		for _, n := range raceSizes {
			for round := range raceRounds {
				t.Run(fmt.Sprintf("%d requests round %d", n, round), func(t *testing.T) {
					g := issueGrant(t, ts, "web-client", "offline_access")
					answers := ts.raceForm(t, n, "/oauth2/token", map[string]string{
						"grant_type": "refresh_token", "refresh_token": g.Refresh,
					}, ts.as("web-client"))
					won := tokensOf(t, requireOneWinner(t, answers, http.StatusBadRequest, "invalid_grant"))
					for _, r := range answers {
						if r.Status != http.StatusOK {
							require.Contains(t, r.json(t)["error_description"], "already used")
						}
					}
					require.False(t, ts.active(t, won.Access), "the reuse revoked the winner's access token")
					require.False(t, ts.active(t, won.Refresh), "the reuse revoked the winner's refresh token")
				})
			}
		}
	})
}

// TestRefreshConcurrentWithinGracePeriodAllWin: with
// refresh_token_grace_period, concurrent refreshes with one token all
// succeed, and every token they hand out works.
func TestRefreshConcurrentWithinGracePeriodAllWin(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend ...option) {
		ts := newTestServer(t, append(backend, withGrace(time.Minute))...)
		const n = 8
		g := issueGrant(t, ts, "web-client", "offline_access")
		answers := ts.raceForm(t, n, "/oauth2/token", map[string]string{
			"grant_type": "refresh_token", "refresh_token": g.Refresh,
		}, ts.as("web-client"))
		for _, r := range answers {
			tk := tokensOf(t, r)
			require.True(t, ts.active(t, tk.Access), "an access token from inside the grace period")
			require.True(t, ts.active(t, tk.Refresh), "a refresh token from inside the grace period")
		}
		require.False(t, ts.active(t, g.Access), "the access token of the rotated refresh token is gone")
	})
}

// TestRefreshAfterRevocationSaysRevoked: a refresh token revoked at the
// revocation endpoint, by an administrator, or with its grant after a
// reuse is refused as revoked, every time it is tried; a rotated one as
// already used.
func TestRefreshAfterRevocationSaysRevoked(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend ...option) {
		ts := newTestServer(t, append(backend, withAdminToken(adminToken))...)
		requireRefused := func(t *testing.T, refresh, why string) {
			t.Helper()
			for range 2 {
				r := ts.refresh(t, "web-client", refresh)
				requireError(t, r, http.StatusBadRequest, "invalid_grant")
				require.Contains(t, r.json(t)["error_description"], why)
			}
		}
		t.Run("revocation endpoint", func(t *testing.T) {
			g := issueGrant(t, ts, "web-client", "offline_access")
			r := ts.post(t, "/oauth2/revoke", "form", map[string]string{"token": g.Refresh}, ts.as("web-client"))
			require.Equal(t, http.StatusOK, r.Status, "revoke: %s", r.Body)
			requireRefused(t, g.Refresh, "revoked")
		})
		t.Run("administrator", func(t *testing.T) {
			g := issueGrant(t, ts, "web-client", "offline_access")
			ts.adminOK(t, http.MethodPost, "/admin/tokens/revoke", map[string]string{"client_id": "web-client"}, http.StatusOK)
			requireRefused(t, g.Refresh, "revoked")
		})
		t.Run("rotated, then reused", func(t *testing.T) {
			g := issueGrant(t, ts, "web-client", "offline_access")
			next := ts.refreshOK(t, "web-client", g.Refresh)
			requireRefused(t, g.Refresh, "already used")
			// The reuse ended the grant: the newest token was revoked.
			requireRefused(t, next.Refresh, "revoked")
		})
	})
}
