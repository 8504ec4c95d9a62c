package reliability_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/internal/latchproc"
	"github.com/latchauth/latch/internal/skipnote"
)

// The real `latch serve`, as an operator runs it: built once per test
// run, started with a config.yaml, killed or stopped by signals.

var build struct {
	once     sync.Once
	dir, bin string
	took     time.Duration
	err      error
}

func TestMain(m *testing.M) {
	if os.Getenv("LATCH_TEST_POSTGRES_DSN") == "" && os.Getenv("CI") == "" {
		skipnote.Print("reliability", "TestScaleOutPostgres skips: LATCH_TEST_POSTGRES_DSN is not set "+
			"(e.g. \"host=127.0.0.1 port=5432 user=postgres dbname=test sslmode=disable\")")
	}
	code := m.Run()
	if build.dir != "" {
		_ = os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// latchBinary builds the module's main package once per test run (the
// tests run in reliability/, hence ".."), with -race when the tests have
// it, so the packages compiled for the test binary are reused.
func latchBinary(t *testing.T) string {
	t.Helper()
	build.once.Do(func() {
		start := time.Now()
		if build.dir, build.err = os.MkdirTemp("", "latch-reliability-"); build.err != nil {
			return
		}
		build.bin = filepath.Join(build.dir, "latch")
		build.err = latchproc.Build("..", build.bin, raceEnabled)
		build.took = time.Since(start)
	})
	require.NoError(t, build.err)
	t.Logf("latch binary (race=%v) built in %v", raceEnabled, build.took.Round(time.Millisecond))
	return build.bin
}

// writeConfig writes a config.yaml into dir: the database block given, the
// svc client, an admin token, no janitor, ES256 keys, and listen and issuer
// as given; an empty issuer is left out, so that it follows the port taken.
func writeConfig(t *testing.T, dir, listen, issuer, database string) string {
	t.Helper()
	path := filepath.Join(dir, "config.yaml")
	if issuer != "" {
		issuer = "issuer: " + issuer
	}
	require.NoError(t, os.WriteFile(path, []byte(`
listen: `+listen+`
`+issuer+`
log: {level: info, format: text}
janitor: {interval: 0s}
database: `+database+`
admin: {token: `+adminToken+`}
tokens: {id_token_signing_alg: ES256}
clients:
  - id: `+svcID+`
    secret: `+svcSecret+`
    grant_types: [client_credentials]
    response_types: []
    scopes: [read, write]
`), 0o600))
	return path
}

const adminToken = "admin-token-of-the-reliability-tests-0123456789"

// proc is a running `latch serve`.
type proc struct{ *latchproc.Proc }

// startProc runs `latch serve args...` in dir and waits for the URL it
// prints. It is killed when t ends, if still running.
func startProc(t *testing.T, bin, dir string, args ...string) *proc {
	t.Helper()
	p, err := tryStartProc(t, bin, dir, args...)
	require.NoError(t, err)
	return p
}

// tryStartProc is startProc that returns why the process did not start.
func tryStartProc(t *testing.T, bin, dir string, args ...string) (*proc, error) {
	t.Helper()
	lp, err := latchproc.Start(bin, dir, args...)
	if err != nil {
		return nil, err
	}
	p := &proc{lp}
	t.Cleanup(func() {
		p.Kill()
		if strings.Contains(p.Stderr.String(), "DATA RACE") {
			t.Errorf("the race detector fired in latch serve:\n%s", p.Stderr)
		}
	})
	return p, nil
}

// stop sends SIGTERM, as an orchestrator does, and returns how the process
// ended.
func (p *proc) stop(t *testing.T) error {
	t.Helper()
	require.NoError(t, p.Cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.Exited:
		return p.Err
	case <-time.After(30 * time.Second):
		p.Kill()
		return errors.New("latch serve did not stop within 30s of SIGTERM")
	}
}

// logProblems fails t with lines of the process's log that must never
// appear.
func (p *proc) logProblems(t *testing.T, name string) {
	t.Helper()
	if bad := badLogLines(p.Stderr.String()); len(bad) > 0 {
		t.Errorf("%s logged lock contention, a panic or a race:\n%s", name, strings.Join(bad, "\n"))
	}
	if lines := logLines(p.Stderr.String(), "ERROR"); len(lines) > 0 {
		t.Errorf("%s logged errors:\n%s", name, strings.Join(lines, "\n"))
	}
}
