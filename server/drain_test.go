package server_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDrainTurnsReadinessOff: once shutdown begins, /health/ready answers
// 503 so a load balancer stops routing here, while requests still work.
func TestDrainTurnsReadinessOff(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	require.Equal(t, http.StatusOK, ts.get(t, "/health/ready").Status)

	serverOf(t, ts).Drain()
	r := ts.get(t, "/health/ready")
	require.Equal(t, http.StatusServiceUnavailable, r.Status)
	requireJSONEqual(t, `{"status":"unavailable","error":"shutting down"}`, r.Body)
	require.Equal(t, http.StatusOK, ts.get(t, "/health/alive").Status, "still alive while draining")
	ts.clientCredentials(t, "basic-client", "read") // in-flight work still served
}
