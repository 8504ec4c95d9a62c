package server_test

import (
	"crypto/rand"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// seriesCount is the number of sample lines of a scrape.
func seriesCount(body string) int {
	n := 0
	for _, line := range strings.Split(body, "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			n++
		}
	}
	return n
}

// TestMetricsMethodLabelsClosed: 1,000 requests with distinct random
// methods, to a route and to no route, add no series to /metrics: a method
// outside the standard ones is "other", a path no route matches is
// "unmatched".
func TestMetricsMethodLabelsClosed(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	send := func(method, path string) {
		req, err := http.NewRequestWithContext(t.Context(), method, ts.URL+path, nil)
		require.NoError(t, err)
		res, err := ts.http.Do(req)
		require.NoError(t, err)
		res.Body.Close()
	}
	// One of each first, so the "other" and "unmatched" series exist.
	send("XKQZ", "/oauth2/token")
	send("XKQZ", "/no/such/path")
	send(http.MethodGet, "/no/such/path-either")
	scrape(t, ts) // so the series of /metrics itself exist
	before := scrape(t, ts)

	for i := range 1000 {
		path := "/oauth2/token"
		if i%2 == 1 {
			path = "/junk/" + rand.Text()
		}
		send("X"+rand.Text(), path) // rand.Text is upper-case letters and digits: a valid token
	}
	after := scrape(t, ts)
	// Allow the few series the runtime collectors may add meanwhile (a GC
	// pause quantile, say); 1,000 new methods would add thousands.
	require.LessOrEqual(t, seriesCount(after), seriesCount(before)+5, "the series grew with the methods sent")
	require.Contains(t, after, `latch_http_requests_total{method="other",route="unmatched",status="405"} 501`)
	require.Contains(t, after, `route="unmatched"`)
	require.NotContains(t, after, `method="X`)
	require.NotContains(t, after, "/junk/")
}
