package server_test

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMetricsAfterTraffic(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)

	tok := ts.clientCredentials(t, "basic-client", "read")
	require.True(t, ts.active(t, tok))
	r := ts.post(t, "/oauth2/revoke", "form", map[string]string{"token": tok}, ts.as("basic-client"))
	require.Equal(t, http.StatusOK, r.Status, "revoke: %s", r.Body)
	require.False(t, ts.active(t, tok))
	failed := ts.newBrowser(t).signIn(t, ts.authorizeURL("web-client", nil), "alice", "not-alices-password")
	require.Equal(t, http.StatusUnauthorized, failed.Status)

	body := scrape(t, ts)
	for _, want := range []string{
		`latch_http_requests_total{method="POST",route="/oauth2/token",status="200"} 1`,
		`latch_http_requests_total{method="POST",route="/oauth2/revoke",status="200"} 1`,
		`latch_http_requests_total{method="POST",route="/login",status="401"} 1`,
		`latch_http_request_duration_seconds_count{method="POST",route="/oauth2/introspect"} 2`,
		`latch_http_request_duration_seconds_bucket{method="POST",route="/oauth2/token",le="+Inf"} 1`,
		`latch_tokens_issued_total{grant_type="client_credentials"} 1`,
		`latch_tokens_revoked_total 1`,
		`latch_introspections_total{active="true"} 1`,
		`latch_introspections_total{active="false"} 1`,
		`latch_login_failures_total 1`,
		`go_goroutines `,
		`process_start_time_seconds `,
	} {
		require.Contains(t, body, want)
	}
	// The route label is the template, never a raw URL with its query.
	require.NotContains(t, body, "challenge=")
	require.NotRegexp(t, regexp.MustCompile(`route="[^"]*\?`), body)
	require.NotContains(t, body, tok)
}

// scrape reads /metrics through the validating transport, but not through
// ts.do: the Go collector's help texts name runtime/debug, which do takes
// for a stack trace.
func scrape(t *testing.T, ts *testServer) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, ts.URL+"/metrics", nil)
	require.NoError(t, err)
	res, err := ts.http.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, res.Header.Get("Content-Type"), "text/plain")
	require.NotRegexp(t, regexp.MustCompile(`goroutine \d+ \[|\.go:\d+`), string(body), "no stack trace")
	return string(body)
}

func TestMetricsRegistryPerServer(t *testing.T) {
	t.Parallel()
	a, b := newTestServer(t), newTestServer(t)
	a.clientCredentials(t, "basic-client", "read")
	body := scrape(t, b)
	require.NotContains(t, body, `latch_tokens_issued_total{grant_type="client_credentials"}`)
	require.Contains(t, scrape(t, a), `latch_tokens_issued_total{grant_type="client_credentials"} 1`)
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	send := func(id string) string {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, ts.URL+"/health/alive", nil)
		require.NoError(t, err)
		if id != "" {
			req.Header.Set("X-Request-Id", id)
		}
		r := ts.do(t, req)
		require.Equal(t, http.StatusOK, r.Status)
		return r.Header.Get("X-Request-Id")
	}
	sane := regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

	require.Equal(t, "abc-123_X.y", send("abc-123_X.y"), "a sane id is kept")
	long := strings.Repeat("a", 128)
	require.Equal(t, long, send(long))
	for _, bad := range []string{"", strings.Repeat("a", 129), "has space", "semi;colon", "<script>"} {
		got := send(bad)
		require.NotEqual(t, bad, got, "%q is replaced", bad)
		require.Regexp(t, sane, got)
	}
	require.NotEqual(t, send(""), send(""), "generated ids differ")

	// Unmatched routes get one too.
	r := ts.get(t, "/no/such/path")
	require.Regexp(t, sane, r.Header.Get("X-Request-Id"))
}
