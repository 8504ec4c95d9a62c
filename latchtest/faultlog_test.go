package latchtest_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/latchauth/latch/latchtest"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestInjectedFailuresAreLoggedWithTheirRoute: a failure from FailNext (or
// /dev/fail) shows in the log under the route the client called, with a
// line that says it was injected, never as "unmatched".
func TestInjectedFailuresAreLoggedWithTheirRoute(t *testing.T) {
	logs := &syncBuffer{}
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
