package server_test

import (
	"context"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestJanitorCleanUp: one pass deletes what expired, leaves the rest, and
// the metrics say what went.
func TestJanitorCleanUp(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	gone := ts.clientCredentials(t, "basic-client", "read")
	kept := ts.clientCredentials(t, "basic-client", "read")
	require.NoError(t, ts.Server.ExpireToken(t.Context(), gone))

	n, err := ts.Server.CleanUp(t.Context())
	require.NoError(t, err)
	require.Equal(t, int64(1), n, "the expired access token, nothing else")
	require.False(t, ts.active(t, gone))
	require.True(t, ts.active(t, kept))

	body := scrape(t, ts)
	require.Contains(t, body, `latch_janitor_deleted_rows_total{table="oauth2_access"} 1`)
	require.Contains(t, body, `latch_janitor_runs_total{result="ok"} 1`)
	require.Greater(t, metricValue(t, body, "latch_janitor_last_success_timestamp_seconds"), float64(time.Now().Add(-time.Minute).Unix()))

	n, err = ts.Server.CleanUp(t.Context())
	require.NoError(t, err)
	require.Zero(t, n, "a second pass finds nothing")
}

// TestJanitorReportsFailure: a pass on a broken database fails, is counted
// as an error and does not touch the last-success time.
func TestJanitorReportsFailure(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	require.NoError(t, ts.Store.Close())
	_, err := ts.Server.CleanUp(t.Context())
	require.Error(t, err)
	body := scrape(t, ts)
	require.Contains(t, body, `latch_janitor_runs_total{result="error"} 1`)
	require.Contains(t, body, "latch_janitor_last_success_timestamp_seconds 0\n")
	require.Contains(t, body, "latch_device_codes_pending NaN\n", "a gauge the database cannot answer is NaN, not 0")
}

// TestJanitorRunsOnItsInterval: the background loop runs passes until its
// context ends.
func TestJanitorRunsOnItsInterval(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); ts.Server.Janitor(ctx, 10*time.Millisecond) }()
	require.Eventually(t, func() bool {
		v, ok := sample(scrape(t, ts), `latch_janitor_runs_total{result="ok"}`)
		return ok && v >= 2
	}, 10*time.Second, 20*time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the janitor did not stop with its context")
	}
}

// TestDeviceCodesPendingMetric: the gauge follows the database.
func TestDeviceCodesPendingMetric(t *testing.T) {
	t.Parallel()
	ts := newDeviceServer(t)
	require.Contains(t, scrape(t, ts), "latch_device_codes_pending 0\n")
	ts.deviceAuth(t, ts.deviceConfig("device-client", "openid"))
	ts.deviceAuth(t, ts.deviceConfig("device-client", "openid"))
	require.Contains(t, scrape(t, ts), "latch_device_codes_pending 2\n")
}

// metricValue is the value of the sample named name (with its labels, if
// any) in a scrape; it fails when there is none.
func metricValue(t *testing.T, body, name string) float64 {
	t.Helper()
	v, ok := sample(body, name)
	require.True(t, ok, "no sample %s", name)
	return v
}

// sample is the value of the sample named name in a scrape, if any.
func sample(body, name string) (float64, bool) {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	return v, err == nil
}
