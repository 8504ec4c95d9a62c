package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// -op start: how long `latch serve --dev` takes from exec until
// GET /health/ready answers 200, which is what an orchestrator waits for.

const (
	// modulePath is the module `go build` must find to build latch.
	modulePath = "github.com/latchauth/latch"
	// readyTimeout bounds one start.
	readyTimeout = 20 * time.Second
	// pollEvery is the resolution of the measurement.
	pollEvery = 500 * time.Microsecond
)

// benchStart starts the server o.runs times, one after the other.
func benchStart(ctx context.Context, o options, stderr io.Writer) (*Report, error) {
	dir, err := os.MkdirTemp("", "latch-bench-start-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := o.latch
	if bin == "" {
		fmt.Fprintf(stderr, "bench: building latch\n")
		if bin, err = buildLatch(ctx, dir); err != nil {
			return nil, err
		}
	}
	times := make([]time.Duration, 0, o.runs)
	var peak int64 = -1
	for range o.runs {
		took, rss, err := startOnce(ctx, bin, dir, stderr)
		if err != nil {
			return nil, err
		}
		times = append(times, took)
		peak = max(peak, rss)
	}
	slices.Sort(times)
	r := &Report{
		Op: "start", Server: "started", Errors: map[string]int{}, PeakRSS: peak,
		Start: &StartStats{Runs: len(times), Min: ms(times[0]), Median: ms(median(times)), Max: ms(times[len(times)-1])},
	}
	if peak >= 0 {
		r.PeakRSSNote = "largest VmHWM of the runs, read once ready"
	} else {
		r.PeakRSSNote = "n/a: /proc/<pid>/status has no VmHWM"
	}
	r.judge()
	return r, nil
}

// buildLatch builds the latch command of the module the working directory
// is in, into dir.
func buildLatch(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("-op start: run from the Latch repository, or give -latch PATH (go env GOMOD: %q, %v)", gomod, err)
	}
	src, err := os.ReadFile(gomod)
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(string(src), "module "+modulePath+"\n") {
		return "", fmt.Errorf("-op start: %s is not the module %s; give -latch PATH", gomod, modulePath)
	}
	bin := filepath.Join(dir, "latch")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	build.Dir = filepath.Dir(gomod)
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// startOnce starts `latch serve --dev` on a free loopback port, waits until
// it is ready, reads its VmHWM and stops it with SIGTERM.
func startOnce(ctx context.Context, bin, dir string, stderr io.Writer) (time.Duration, int64, error) {
	addr, err := freeAddr()
	if err != nil {
		return 0, 0, err
	}
	cmd := exec.Command(bin, "serve", "--dev", "--listen", addr)
	// The temporary directory has no config.yaml to pick up; the
	// environment has no LATCH_* variable but the log level.
	cmd.Dir = dir
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "LATCH_") }), "LATCH_LOG_LEVEL=warn")
	cmd.Stderr = stderr
	probe := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	url := "http://" + addr + pathReady

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	kill := func() { _ = cmd.Process.Kill(); <-exited }

	var took time.Duration
	for deadline := start.Add(readyTimeout); ; {
		if ready(ctx, probe, url) {
			took = time.Since(start)
			break
		}
		if time.Now().After(deadline) {
			kill()
			return 0, 0, fmt.Errorf("latch serve --dev was not ready within %s", readyTimeout)
		}
		select {
		case err := <-exited:
			return 0, 0, fmt.Errorf("latch serve --dev exited before it was ready: %v", err)
		case <-ctx.Done():
			kill()
			return 0, 0, ctx.Err()
		case <-time.After(pollEvery):
		}
	}
	rss := peakRSS(cmd.Process.Pid)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			return 0, 0, fmt.Errorf("latch serve --dev did not exit cleanly after SIGTERM: %w", err)
		}
	case <-time.After(readyTimeout):
		kill()
		return 0, 0, errors.New("latch serve --dev did not stop after SIGTERM and was killed")
	}
	return took, rss, nil
}

// ready reports whether GET url answers 200.
func ready(ctx context.Context, c *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	res, err := c.Do(req)
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == http.StatusOK
}

// freeAddr is a loopback address with a port nobody listens on now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// median of sorted durations.
func median(sorted []time.Duration) time.Duration {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}
