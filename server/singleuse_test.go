package server_test

import (
	"fmt"
	"net/http"
	"testing"

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
