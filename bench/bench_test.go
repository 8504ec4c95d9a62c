package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/latchtest"
)

// TestMain lets the test binary be the benchmark's server: startChild
// re-executes os.Executable(), which under `go test` is this binary.
func TestMain(m *testing.M) {
	if spec, ok := os.LookupEnv(childEnv); ok {
		os.Exit(childMain(spec))
	}
	os.Exit(m.Run())
}

// bench runs the benchmark with args and -json, and decodes its report.
func bench(t *testing.T, args ...string) (*Report, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	// A request that hangs fails the test in seconds, not in 30.
	err := run(t.Context(), append(args, "-json", "-timeout", "5s"), &stdout, &stderr)
	require.NoError(t, err, "stderr:\n%s", stderr.String())
	var r Report
	dec := json.NewDecoder(&stdout)
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&r), "the report is JSON")
	return &r, stderr.String()
}

// requireWellFormed checks what every load report must say.
func requireWellFormed(t *testing.T, r *Report, op string, concurrency int) {
	t.Helper()
	require.Equal(t, op, r.Op)
	require.Equal(t, concurrency, r.Concurrency)
	require.Positive(t, r.Requests, "requests were made")
	require.Positive(t, r.Elapsed)
	require.InDelta(t, float64(r.Requests)/r.Elapsed, r.RPS, 0.01*r.RPS)
	l := r.Latency
	require.True(t, 0 < l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max, "ordered percentiles: %+v", l)
	// Every answer is the one the operation expects: no 5xx, no 4xx,
	// no inactive introspection, no transport error.
	require.Zero(t, r.ErrorCount, "errors: %v (%s)", r.Errors, r.TransportError)
	require.Empty(t, r.Errors)
	require.NotEmpty(t, r.Targets)
	for _, tg := range r.Targets {
		require.NotEmpty(t, tg.Want)
	}
}

// TestOperations runs every load operation briefly against a server the
// benchmark starts, and checks the report.
func TestOperations(t *testing.T) {
	tests := []struct {
		op       string
		duration string
		pooled   func(*Preminted) int // what the operation uses up, if anything
	}{
		{"cc", "300ms", nil},
		{"introspect", "300ms", func(p *Preminted) int { return p.Introspect }},
		{"revoke", "300ms", func(p *Preminted) int { return p.Revoke }},
		{"refresh", "300ms", func(p *Preminted) int { return p.Refresh }},
		{"code", "300ms", func(p *Preminted) int { return p.Codes }},
		{"mixed", "1s", nil},
	}
	for _, tt := range tests {
		t.Run(tt.op, func(t *testing.T) {
			r, _ := bench(t, "-op", tt.op, "-c", "4", "-d", tt.duration)
			requireWellFormed(t, r, tt.op, 4)
			require.Equal(t, "started", r.Server)
			require.Positive(t, r.PeakRSS, "the child's VmHWM")
			require.NotNil(t, r.Preminted)
			if tt.pooled != nil {
				require.Positive(t, tt.pooled(r.Preminted))
			}
			if tt.op == "mixed" {
				require.Len(t, r.Ops, int(numOps), "every operation has its line")
				for _, o := range r.Ops {
					require.Positive(t, o.Requests, "%s was sent", o.Op)
				}
			}
		})
	}
}

// TestRevokeRunsOut: with fewer tokens than the run could revoke, the run
// stops early and says so; every revocation still succeeded.
func TestRevokeRunsOut(t *testing.T) {
	r, _ := bench(t, "-op", "revoke", "-c", "4", "-d", "10s", "-tokens", "50")
	requireWellFormed(t, r, "revoke", 4)
	require.Equal(t, 50, r.Requests, "each token revoked once")
	require.Len(t, r.StoppedEarly, 1)
	require.Contains(t, r.StoppedEarly[0], "ran out")
	require.Less(t, r.Elapsed, 10.0)
}

// TestURL loads a server the benchmark did not start: latchtest's, in
// this process. Peak RSS is then unknown.
func TestURL(t *testing.T) {
	srv := latchtest.New(t)
	c := srv.ConfidentialClient()
	r, _ := bench(t, "-url", srv.Issuer(), "-client-id", c.ID, "-client-secret", c.Secret, "-op", "mixed", "-c", "4", "-d", "300ms")
	requireWellFormed(t, r, "mixed", 4)
	require.Equal(t, srv.Issuer(), r.Server)
	require.EqualValues(t, -1, r.PeakRSS)
	var sent []string
	for _, o := range r.Ops {
		sent = append(sent, o.Op)
	}
	require.Equal(t, []string{"cc", "introspect", "revoke"}, sent, "refresh and code need the benchmark's own server")
	var text bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"-url", srv.Issuer(), "-client-id", c.ID, "-client-secret", c.Secret, "-op", "cc", "-c", "2", "-d", "200ms"}, &text, &bytes.Buffer{}))
	require.Contains(t, text.String(), "peak RSS     n/a")
	require.Contains(t, text.String(), "server peak RSS ≤ 40 MB: n/a (not measured")
	require.Regexp(t, `(?m)^target +cc ≥ 10000 requests/s with p99 ≤ 10ms: (met|NOT met) \(`, text.String())
}

// TestStart builds latch and starts it twice.
func TestStart(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to build latch with")
	}
	r, _ := bench(t, "-op", "start", "-n", "2")
	require.Equal(t, "start", r.Op)
	require.NotNil(t, r.Start)
	require.Equal(t, 2, r.Start.Runs)
	s := r.Start
	require.True(t, 0 < s.Min && s.Min <= s.Median && s.Median <= s.Max, "ordered: %+v", s)
	require.Positive(t, r.PeakRSS)
	require.Len(t, r.Targets, 2)
	require.True(t, strings.HasPrefix(r.Targets[0].Want, "start ≤ 30ms"), r.Targets[0].Want)
}

// TestText: the text report has a line for each of its parts.
func TestText(t *testing.T) {
	var stdout, stderr bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"-op", "introspect", "-c", "2", "-d", "200ms"}, &stdout, &stderr), stderr.String())
	for _, label := range []string{"operation", "server", "concurrency", "duration", "requests", "requests/s", "latency", "errors", "pre-minted", "peak RSS", "target"} {
		require.Regexp(t, `(?m)^`+label+` `, stdout.String())
	}
	require.Contains(t, stdout.String(), "introspect ≥ 15000 requests/s with p99 ≤ 10ms")
	require.Contains(t, stdout.String(), "server peak RSS ≤ 40 MB")
}

func TestOptionsRefused(t *testing.T) {
	tests := [][]string{
		{"-op", "nope"},
		{"-c", "0"},
		{"-d", "0s"},
		{"-url", "127.0.0.1:8080", "-client-id", "a", "-client-secret", "b"},
		{"-url", "http://127.0.0.1:8080"},
		{"-url", "http://127.0.0.1:8080", "-client-id", "a", "-client-secret", "b", "-op", "refresh"},
		{"extra"},
		{"-op", "compare", "-only", "postgres"},
		{"-op", "cc", "-only", "postgres", "-postgres", "dbname=x"},
		{"-op", "compare", "-only", "sqlite", "-postgres", "dbname=x"},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			_, err := parseOptions(args, &bytes.Buffer{})
			require.Error(t, err)
		})
	}
}
