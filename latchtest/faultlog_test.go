package latchtest_test

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/latchauth/latch/internal/syncbuf"
	"github.com/latchauth/latch/latchtest"
)

// TestInjectedFailuresAreLoggedWithTheirRoute: a failure from FailNext (or
// /dev/fail) shows in the log under the route the client called, with a
// line that says it was injected, never as "unmatched".
func TestInjectedFailuresAreLoggedWithTheirRoute(t *testing.T) {
	logs := &syncbuf.Buffer{}
	srv := latchtest.New(t, latchtest.WithLogger(slog.New(slog.NewJSONHandler(logs, nil))))
	srv.FailNext("/oauth2/token", 1, 503, "temporarily_unavailable")
	if _, err := srv.ClientCredentials(srv.ConfidentialClient(), "read").Token(t.Context()); err == nil {
		t.Fatal("the injected failure did not happen")
	}
	var injected, access bool
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		switch {
		case e["msg"] == "injected failure":
			injected = e["route"] == "/oauth2/token" && e["request_id"] != nil
		case e["msg"] == "http" && e["status"] == float64(503):
			access = e["route"] == "/oauth2/token"
		}
	}
	if !injected || !access {
		t.Errorf("injected line with route and request_id: %v; access line with route: %v\n%s", injected, access, logs)
	}
}
