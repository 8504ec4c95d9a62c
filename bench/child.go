package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/server"
)

// The server under load runs in a child process of its own, so that its
// peak RSS is its own. The child is this very binary, told by childEnv
// what to serve; the tests' TestMain honours the variable too, so that
// `go test` re-executes the test binary.
//
// The parent prepares everything before the child starts: it takes the
// loopback port (handed to the child as file descriptor 3, so the issuer
// is known in advance and no other process can take the port), creates
// the client and pre-mints the tokens and codes into the SQLite file.
// Minting in the server's own process would leave tens of megabytes of
// SQLite and allocator memory there, which VmHWM would then report as the
// server's. The child does nothing `latch serve` does not.

// childEnv carries the childSpec, as JSON, to the child process.
const childEnv = "LATCH_BENCH_CHILD"

// childSpec is what the child serves.
type childSpec struct {
	Driver     string `json:"driver"` // sqlite or postgres
	DB         string `json:"db"`     // the SQLite file, or the PostgreSQL DSN
	Issuer     string `json:"issuer"` // http://127.0.0.1:port of the inherited listener
	CPUProfile string `json:"cpu_profile,omitempty"`
	LogLevel   string `json:"log_level,omitempty"`
}

// readyLine is what the child prints on standard output once it serves.
const readyLine = "ready"

// benchConfig is the configuration of the server under load: the
// defaults of `latch serve`, the database (a SQLite file, or a PostgreSQL
// DSN with -postgres), and the log level asked for (warn by default: no
// line per request).
func benchConfig(driver, db, issuer, logLevel string) config.File {
	f := config.Default()
	f.Issuer = issuer
	f.Listen = strings.TrimPrefix(issuer, "http://")
	f.Database = config.Database{Driver: driver, DSN: db}
	f.Log.Level = "warn"
	if logLevel != "" {
		f.Log.Level = logLevel
	}
	return f
}

// childMain is main for the child process.
func childMain(spec string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.FileListener(os.NewFile(3, "listener"))
	if err == nil {
		err = runChild(ctx, spec, ln, os.Stdin, os.Stdout, os.Stderr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench server:", err)
		return 1
	}
	return 0
}

// runChild serves Latch on ln as `latch serve` does (server.Boot,
// server.HTTPServer) until ctx ends or stdin closes (the parent is gone),
// then shuts down as `latch serve` does.
func runChild(ctx context.Context, specJSON string, ln net.Listener, stdin io.Reader, stdout, stderr io.Writer) error {
	defer ln.Close()
	var spec childSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		return fmt.Errorf("%s: %w", childEnv, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, stdin)
		cancel()
	}()

	f := benchConfig(spec.Driver, spec.DB, spec.Issuer, spec.LogLevel)
	if err := f.Validate(); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.Log.Level)); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	in, err := server.Boot(ctx, f, server.BootOptions{Logger: log})
	if err != nil {
		return err
	}
	defer in.Close()
	httpSrv := server.HTTPServer(in.Server, log)
	served := make(chan error, 1)
	go func() { served <- httpSrv.Serve(ln) }()
	if spec.CPUProfile != "" {
		prof, err := os.Create(spec.CPUProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(prof); err != nil {
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			_ = prof.Close()
		}()
	}
	fmt.Fprintln(stdout, readyLine)

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	in.Server.Drain()
	shutdownCtx, cancelShutdown := context.WithTimeout(context.Background(), f.ShutdownTimeout.Duration)
	defer cancelShutdown()
	if err := httpSrv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// peakRSS is VmHWM of process pid in bytes, or -1 when unknown.
func peakRSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return -1
			}
			return kb * 1024
		}
	}
	return -1
}

// childProcess is the parent's handle on the child.
type childProcess struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	dir     string // the temporary directory, removed by stop
	fixture *fixture
	exited  chan struct{} // closed when the child has exited
	waitErr error         // its exit, once exited is closed
	stopped bool
	stopErr error
}

// childReadyTimeout bounds the child's start.
const childReadyTimeout = time.Minute

// startChild prepares the database for o, starts the child on it and
// waits until it serves.
func startChild(ctx context.Context, o options, stderr io.Writer) (_ *childProcess, err error) {
	c := &childProcess{exited: make(chan struct{})}
	if c.dir, err = os.MkdirTemp("", "latch-bench-"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = c.stop()
		}
	}()
	driver, db := "sqlite", o.db
	switch {
	case o.postgres != "":
		driver, db = "postgres", o.postgres
	case db == "":
		db = filepath.Join(c.dir, "latch.db")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	lnFile, err := ln.(*net.TCPListener).File()
	ln.Close() // lnFile is a duplicate: the port stays taken
	if err != nil {
		return nil, err
	}
	defer lnFile.Close()
	spec := childSpec{Driver: driver, DB: db, Issuer: "http://" + ln.Addr().String(), CPUProfile: o.cpuProfile, LogLevel: o.logLevel}

	p := poolsFor(o)
	fmt.Fprintf(stderr, "bench: preparing the %s database: a client, and pre-minting %s\n", driver, p)
	if c.fixture, err = premint(ctx, benchConfig(driver, spec.DB, spec.Issuer, "warn"), p, stderr); err != nil {
		return nil, fmt.Errorf("pre-mint: %w", err)
	}
	c.fixture.URL = spec.Issuer

	raw, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"="+string(raw))
	cmd.ExtraFiles = []*os.File{lnFile} // file descriptor 3
	cmd.Stderr = stderr
	// The child serves until its stdin closes, so it does not outlive a
	// parent that dies without stopping it.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c.cmd, c.stdin = cmd, stdin
	go func() {
		c.waitErr = c.cmd.Wait()
		close(c.exited)
	}()

	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		// Whatever else comes is not for us; keep the pipe drained.
		_, _ = io.Copy(io.Discard, stdout)
	}()
	timeout := time.NewTimer(childReadyTimeout)
	defer timeout.Stop()
	select {
	case line, ok := <-lines:
		if !ok || line != readyLine {
			<-c.exited
			return nil, fmt.Errorf("the benchmark's server exited before serving: %v", c.waitErr)
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-timeout.C:
		return nil, fmt.Errorf("the benchmark's server did not serve within %s", childReadyTimeout)
	}
	return c, nil
}

// peakRSS is the child's VmHWM in bytes, or -1 when unknown.
func (c *childProcess) peakRSS() int64 { return peakRSS(c.cmd.Process.Pid) }

// stop sends SIGTERM, waits for a clean exit (killing the child after the
// server's shutdown timeout and a margin) and removes the temporary
// directory. It returns the same answer however often it is called.
func (c *childProcess) stop() error {
	if c.stopped {
		return c.stopErr
	}
	c.stopped = true
	defer os.RemoveAll(c.dir)
	if c.cmd == nil {
		return nil // never started
	}
	select {
	case <-c.exited:
	default:
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
	}
	grace := config.Default().ShutdownTimeout.Duration + 5*time.Second
	select {
	case <-c.exited:
	case <-time.After(grace):
		_ = c.cmd.Process.Kill()
		<-c.exited
		c.stopErr = fmt.Errorf("the benchmark's server did not stop within %s of SIGTERM and was killed", grace)
	}
	_ = c.stdin.Close()
	if c.stopErr == nil && c.waitErr != nil {
		c.stopErr = fmt.Errorf("the benchmark's server did not exit cleanly: %w", c.waitErr)
	}
	return c.stopErr
}
