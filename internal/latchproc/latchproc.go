// Package latchproc builds and runs the real `latch serve` for the tests
// that need it as an operator runs it, in a process of its own (the
// reliability tests kill it, the federation tests run two of them).
package latchproc

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/latchauth/latch/internal/syncbuf"
)

// Build builds the module's main package, found in moduleDir, into out;
// race adds -race, so a race-enabled test run reuses its compiled packages.
func Build(moduleDir, out string, race bool) error {
	args := []string{"build", "-o", out}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.Command(goTool(), append(args, ".")...)
	cmd.Dir = moduleDir
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, b)
	}
	return nil
}

// goTool is the go command: go test puts its own GOROOT/bin first in the
// PATH of the tests it runs, so the lookup finds the toolchain that runs
// the test.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go"
}

// Proc is a running `latch serve`.
type Proc struct {
	Cmd            *exec.Cmd
	URL            string // the issuer URL it printed
	Stdout, Stderr *syncbuf.Buffer
	Exited         chan struct{} // closed once the process is gone
	Err            error         // of Wait, once Exited is closed
}

var issuerLine = regexp.MustCompile(`issuer URL (\S+)`)

// Start runs `bin serve args...` in dir and waits up to a minute for the
// issuer URL it prints. Only the arguments and the config file speak: no
// LATCH_* variable of the test's environment reaches the process. The
// caller kills it when done.
func Start(bin, dir string, args ...string) (*Proc, error) {
	p := &Proc{Stdout: &syncbuf.Buffer{}, Stderr: &syncbuf.Buffer{}, Exited: make(chan struct{})}
	p.Cmd = exec.Command(bin, append([]string{"serve"}, args...)...)
	p.Cmd.Dir, p.Cmd.Stdout, p.Cmd.Stderr = dir, p.Stdout, p.Stderr
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LATCH_") {
			p.Cmd.Env = append(p.Cmd.Env, kv)
		}
	}
	if err := p.Cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.Err = p.Cmd.Wait()
		close(p.Exited)
	}()
	deadline := time.After(60 * time.Second)
	for {
		if m := issuerLine.FindStringSubmatch(p.Stdout.String()); m != nil {
			p.URL = m[1]
			return p, nil
		}
		select {
		case <-p.Exited:
			return nil, fmt.Errorf("latch serve exited (%v) before listening; stderr:\n%s", p.Err, p.Stderr)
		case <-deadline:
			p.Kill()
			return nil, fmt.Errorf("latch serve printed no URL in 60s; stderr:\n%s", p.Stderr)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Kill sends SIGKILL and waits (up to 10 s) for the process to be gone.
func (p *Proc) Kill() {
	select {
	case <-p.Exited:
		return
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.Exited:
	case <-time.After(10 * time.Second):
	}
}
