package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/latchauth/latch/server"
)

// Single-use things under concurrency: N uses released together, exactly
// one wins, the others get the RFC's error, never a 500.

// raceSizes are the numbers of concurrent uses each race test tries, and
// raceRounds how often: a race lost once in a while must still show.
var raceSizes = []int{2, 12}

const raceRounds = 4

// eachRace runs race(t, n) as a subtest for every race size, raceRounds
// times.
func eachRace(t *testing.T, race func(t *testing.T, n int)) {
	for _, n := range raceSizes {
		for round := range raceRounds {
			t.Run(fmt.Sprintf("%d requests round %d", n, round), func(t *testing.T) { race(t, n) })
		}
	}
}

// TestAuthorizationCodeConcurrentExchangeOneWins: one code exchanged by
// 2 and 12 requests at once gives tokens once; every other exchange is
// 400 invalid_grant, and as a detected reuse (RFC 6749 §4.1.2) it revokes
// what the winner was issued.
func TestAuthorizationCodeConcurrentExchangeOneWins(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend ...option) {
		ts := newTestServer(t, backend...)
		eachRace(t, func(t *testing.T, n int) {
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
		eachRace(t, func(t *testing.T, n int) {
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

// TestClientAssertionConcurrentReplayOneWins: one private_key_jwt client
// assertion sent by 2 and 12 requests at once authenticates one of them
// (RFC 7523 §3: a jti is used once); every other is 401 invalid_client,
// SPEC's answer to every failed client authentication.
func TestClientAssertionConcurrentReplayOneWins(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend ...option) {
		f := newPrivateKeyJWTFixture(t, backend...)
		for _, n := range raceSizes {
			assertion := f.ec.sign(t, f.clientClaims(pkjECClient))
			answers := f.raceForm(t, n, "/oauth2/token",
				assertionAuth(map[string]string{"grant_type": "client_credentials", "scope": "read"}, assertion), noAuth)
			requireOneWinner(t, answers, http.StatusUnauthorized, "invalid_client")
		}
	})
}

// TestDeviceCodeConcurrentRedeemOneWins: an approved device code polled
// by 2 and 12 requests at once gives tokens once (RFC 8628 §3.5); every
// other poll is 400 invalid_grant.
func TestDeviceCodeConcurrentRedeemOneWins(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend ...option) {
		ts := newDeviceServer(t, backend...)
		for _, n := range raceSizes {
			da := ts.deviceAuth(t, ts.deviceConfig("device-client", "openid", "offline_access"))
			b := ts.newBrowser(t)
			b.connect(t, b.get(t, da.VerificationURIComplete), "", "allow")
			answers := ts.raceForm(t, n, "/oauth2/token",
				map[string]string{"grant_type": grantDevice, "device_code": da.DeviceCode}, idAuth("device-client"))
			tk := tokensOf(t, requireOneWinner(t, answers, http.StatusBadRequest, "invalid_grant"))
			require.True(t, ts.active(t, tk.Access), "the winner's token works")
		}
	})
}

// TestPushedRequestURIConcurrentUseOneWins: one request_uri opened by 2
// and 12 browsers at once starts one sign-in (RFC 9126 §4: a request_uri
// is used once); every other browser gets the error page for
// invalid_request_uri, never a 500.
func TestPushedRequestURIConcurrentUseOneWins(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend ...option) {
		ts := newTestServer(t, backend...)
		_, challenge := pkcePair(oauth2.GenerateVerifier())
		for _, n := range raceSizes {
			uri := ts.push(t, "web-client", pushedRequest(challenge, nil))
			reqs := make([]*http.Request, n)
			for i := range reqs {
				req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, ts.parAuthorizeURL("web-client", uri), nil)
				require.NoError(t, err)
				reqs[i] = req
			}
			started := 0
			for _, r := range race(t, ts.newBrowser(t).client, reqs) {
				if r.Status == http.StatusFound {
					started++
					require.Contains(t, r.Header.Get("Location"), "/login?challenge=")
					continue
				}
				// fosite's invalid_request_uri, shown on the error page.
				require.Equal(t, http.StatusBadRequest, r.Status, "a spent request_uri: %s", r.Body)
			}
			require.Equal(t, 1, started, "exactly one of %d concurrent uses of a request_uri starts a sign-in", n)
		}
	})
}

// TestConsentChallengeConcurrentDecisionOneWins: a consent form submitted
// by 2 and 12 requests at once (a double click, a replay) sends the
// browser back to the client once, with one code or one access_denied;
// every other submission gets the error page.
func TestConsentChallengeConcurrentDecisionOneWins(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend ...option) {
		ts := newTestServer(t, backend...)
		for _, decision := range []string{"allow", "deny"} {
			for _, n := range raceSizes {
				b := ts.newBrowser(t)
				page := b.get(t, flowSignIn(t, b, ts.authorizeURL("web-client", nil)))
				fs := forms(t, page)
				require.Len(t, fs, 1, "the consent page has one form: %s", page.Body)
				values := fs[0].Fields
				values.Set("decision", decision)
				reqs := make([]*http.Request, n)
				for i := range reqs {
					req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.URL+fs[0].Action, strings.NewReader(values.Encode()))
					require.NoError(t, err)
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					req.Header.Set("Origin", ts.URL)
					reqs[i] = req
				}
				answers := 0
				for _, r := range race(t, b.client, reqs) {
					if r.Status == http.StatusFound || r.Status == http.StatusSeeOther {
						answers++
						cb := flowCallback(t, r)
						require.True(t, cb.Get("code") != "" || cb.Get("error") == "access_denied", "the client gets the decision: %v", cb)
						continue
					}
					require.Equal(t, http.StatusBadRequest, r.Status, "a decided challenge: %s", r.Body)
				}
				require.Equal(t, 1, answers, "exactly one of %d concurrent %s decisions reaches the client", n, decision)
			}
		}
	})
}
