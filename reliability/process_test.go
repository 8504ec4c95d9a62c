package reliability_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
		args := []string{"build", "-o", build.bin}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command(goTool(), append(args, ".")...)
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
		build.took = time.Since(start)
	})
	require.NoError(t, build.err)
	t.Logf("latch binary (race=%v) built in %v", raceEnabled, build.took.Round(time.Millisecond))
	return build.bin
}

// goTool is the go command: go test puts its own GOROOT/bin first in the
// PATH of the tests it runs, so the lookup finds the toolchain that runs
// this test.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go"
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

var listening = regexp.MustCompile(`issuer URL (\S+)`)

// proc is a running `latch serve`.
type proc struct {
	cmd            *exec.Cmd
	URL            string
	stdout, stderr *syncBuffer
	exited         chan struct{}
	err            error // of Wait, once exited is closed
}

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
	p := &proc{stdout: &syncBuffer{}, stderr: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"serve"}, args...)...)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	// Only the config file speaks: no LATCH_* of the environment.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LATCH_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.kill()
		if strings.Contains(p.stderr.String(), "DATA RACE") {
			t.Errorf("the race detector fired in latch serve:\n%s", p.stderr)
		}
	})
	deadline := time.After(60 * time.Second)
	for {
		if m := listening.FindStringSubmatch(p.stdout.String()); m != nil {
			p.URL = m[1]
			return p, nil
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("latch serve exited (%v) before listening; stderr:\n%s", p.err, p.stderr)
		case <-deadline:
			p.kill()
			return nil, fmt.Errorf("latch serve printed no URL in 60s; stderr:\n%s", p.stderr)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
	}
}

// stop sends SIGTERM, as an orchestrator does, and returns how the process
// ended.
func (p *proc) stop(t *testing.T) error {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.exited:
		return p.err
	case <-time.After(30 * time.Second):
		p.kill()
		return errors.New("latch serve did not stop within 30s of SIGTERM")
	}
}

// logProblems fails t with lines of the process's log that must never
// appear.
func (p *proc) logProblems(t *testing.T, name string) {
	t.Helper()
	if bad := badLogLines(p.stderr.String()); len(bad) > 0 {
		t.Errorf("%s logged lock contention, a panic or a race:\n%s", name, strings.Join(bad, "\n"))
	}
	if lines := logLines(p.stderr.String(), "ERROR"); len(lines) > 0 {
		t.Errorf("%s logged errors:\n%s", name, strings.Join(lines, "\n"))
	}
}
