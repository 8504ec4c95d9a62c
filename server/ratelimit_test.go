package server_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/server"
)

// limitedServer is newTestServer plus "limited-client", allowed perSecond
// token requests.
func limitedServer(t *testing.T, perSecond float64) *testServer {
	t.Helper()
	ts := newTestServer(t)
	ts.addClient(t, &clients.Client{ID: "limited-client", TokenEndpointAuthMethod: clients.AuthMethodBasic,
		GrantTypes: []string{"client_credentials", "refresh_token"}, Scopes: []string{"read", "offline_access"},
		RateLimit: perSecond})
	return ts
}

func (ts *testServer) ccRequest(t *testing.T, clientID string) response {
	t.Helper()
	return ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "client_credentials", "scope": "read"}, ts.as(clientID))
}

// requireRateLimited checks a 429 is the OAuth JSON error with a
// Retry-After of whole seconds, and returns those seconds.
func requireRateLimited(t *testing.T, r response) int {
	t.Helper()
	require.Equal(t, http.StatusTooManyRequests, r.Status, "%s", r.Body)
	require.Equal(t, "too_many_requests", r.json(t)["error"])
	secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After %q", r.Header.Get("Retry-After"))
	require.GreaterOrEqual(t, secs, 1)
	return secs
}

func TestRateLimitPerClient(t *testing.T) {
	t.Parallel()
	ts := limitedServer(t, 2) // a burst of 2, then 2 per second

	var statuses []int
	var limited response
	for range 5 {
		r := ts.ccRequest(t, "limited-client")
		statuses = append(statuses, r.Status)
		if r.Status == http.StatusTooManyRequests {
			limited = r
		}
	}
	// Five requests go out in far less than the half second a new token
	// takes, unless the machine stalls: at least the last two are refused.
	require.Equal(t, http.StatusOK, statuses[0], "%v", statuses)
	require.Equal(t, http.StatusOK, statuses[1], "%v", statuses)
	require.Contains(t, statuses[2:], http.StatusTooManyRequests, "%v", statuses)
	require.Equal(t, 1, requireRateLimited(t, limited), "at 2 per second a token is at most a second away")

	for range 5 {
		ts.clientCredentials(t, "basic-client", "read") // no limit: never refused
	}
	body := scrape(t, ts)
	require.Contains(t, body, `route="/oauth2/token",status="429"}`)
}

// TestRateLimitSpentOnlyByAuthenticatedRequests: requests with a wrong
// secret cannot use up a client's budget.
func TestRateLimitSpentOnlyByAuthenticatedRequests(t *testing.T) {
	t.Parallel()
	ts := limitedServer(t, 1)
	for range 5 {
		r := ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "client_credentials"}, basicAuth("limited-client", "not-the-secret"))
		require.Equal(t, http.StatusUnauthorized, r.Status, "%s", r.Body)
	}
	ts.clientCredentials(t, "limited-client", "read")
	// Now the bucket is empty: anyone claiming the client is turned away
	// before any secret is checked.
	requireRateLimited(t, ts.ccRequest(t, "limited-client"))
	requireRateLimited(t, ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "client_credentials"}, basicAuth("limited-client", "not-the-secret")))
}

// TestRateLimitKeepsTheRefreshToken: a refresh refused for the rate is not
// a use of the refresh token, which works once the client may ask again.
func TestRateLimitKeepsTheRefreshToken(t *testing.T) {
	t.Parallel()
	ts := limitedServer(t, 1)
	issued, err := ts.Server.IssueTokens(t.Context(), server.TokenRequest{ClientID: "limited-client", Scopes: []string{"read"}, Refresh: true})
	require.NoError(t, err)
	ts.clientCredentials(t, "limited-client", "read") // spends the burst
	wait := requireRateLimited(t, ts.refresh(t, "limited-client", issued.RefreshToken))
	time.Sleep(time.Duration(wait) * time.Second)
	r := ts.refresh(t, "limited-client", issued.RefreshToken)
	require.Equal(t, http.StatusOK, r.Status, "the refresh token survived the 429: %s", r.Body)
}

// TestRateLimitFollowsTheClient: a changed rate_limit applies at once; 0
// lifts it.
func TestRateLimitFollowsTheClient(t *testing.T) {
	t.Parallel()
	ts := limitedServer(t, 1)
	ts.clientCredentials(t, "limited-client", "read")
	requireRateLimited(t, ts.ccRequest(t, "limited-client"))

	c, err := ts.Store.GetClient(t.Context(), "limited-client")
	require.NoError(t, err)
	cl := c.(*clients.Client)
	cl.RateLimit = 0
	require.NoError(t, ts.Store.UpdateClient(t.Context(), cl))
	// The bucket left from before may still refuse until it refills (one
	// second); after that, no limit at all.
	require.Eventually(t, func() bool { return ts.ccRequest(t, "limited-client").Status == http.StatusOK }, 5*time.Second, 100*time.Millisecond)
	for range 5 {
		ts.clientCredentials(t, "limited-client", "read")
	}
}
