package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// The servers of -op compare. Each runs in a process of its own, started
// the way its users start it, so that its peak RSS is its own and no
// server shares a garbage collector or an event loop with the load
// generator.

// peerClient is the confidential client every configured server knows
// (oidc-provider's server.mjs has the same one).
const (
	peerClientID     = "perf-client"
	peerClientSecret = "perf-secret-0123456789abcdef0123"
)

// server is one server under comparison.
type target struct {
	name                                  string
	base                                  string // http://127.0.0.1:port
	tokenPath, introspectPath, revokePath string
	clientID, clientSecret                string
	cmd                                   *exec.Cmd
	exited                                chan error
}

// startServer starts cmd and waits until GET base+readyPath answers 200.
func startServer(ctx context.Context, s *target, readyPath string) (time.Duration, error) {
	probe := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	if err := s.cmd.Start(); err != nil {
		return 0, fmt.Errorf("%s: %w", s.name, err)
	}
	s.exited = make(chan error, 1)
	go func() { s.exited <- s.cmd.Wait() }()
	for deadline := start.Add(readyTimeout); ; {
		if ready(ctx, probe, s.base+readyPath) {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) {
			s.kill()
			return 0, fmt.Errorf("%s was not ready within %s", s.name, readyTimeout)
		}
		select {
		case err := <-s.exited:
			s.exited <- err
			return 0, fmt.Errorf("%s exited before it was ready: %v", s.name, err)
		case <-ctx.Done():
			s.kill()
			return 0, ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}

// stop sends SIGTERM and waits for the exit; a server that does not stop
// within readyTimeout is killed.
func (s *target) stop() error {
	if s.exited == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.exited:
		s.exited = nil
		return err
	case <-time.After(readyTimeout):
		s.kill()
		return fmt.Errorf("%s did not stop after SIGTERM and was killed", s.name)
	}
}

func (s *target) kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.exited = nil
}

// cleanEnv is the environment without LATCH_ variables, so that the
// caller's shell cannot change the configuration under test.
func cleanEnv(extra ...string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "LATCH_") })
	return append(env, extra...)
}

// latchConfigYAML is the configuration a team writes: a SQLite file,
// plaintext secrets for two clients and one user, a system secret, and
// every other key at its default (log.level info: one line per request).
const latchConfigYAML = `issuer: http://%[1]s
listen: %[1]s
database:
  driver: %[4]s
  dsn: %[2]q
secrets:
  system: %[3]s
clients:
  - id: ` + peerClientID + `
    secret: ` + peerClientSecret + `
    name: Load test service
    grant_types: [client_credentials]
    response_types: []
    scopes: [read]
    token_endpoint_auth_method: client_secret_basic
  - id: web-app
    secret: web-app-secret-chosen-by-a-person
    name: Web app
    redirect_uris: [http://127.0.0.1:5555/callback]
    grant_types: [authorization_code, refresh_token]
    response_types: [code]
    scopes: [openid, profile, offline_access]
users:
  - username: alice
    password: alice-password-chosen-by-a-person
    email: alice@example.com
`

// writeLatchConfig writes the configuration of a Latch on addr into
// dir/name, with the database driver and dsn and the system secret.
func writeLatchConfig(dir, name, addr, driver, dsn, system string) (string, error) {
	path := filepath.Join(dir, name)
	body := fmt.Sprintf(latchConfigYAML, addr, dsn, system, driver)
	return path, os.WriteFile(path, []byte(body), 0o600)
}

// benchSystemSecret is the secrets.system of every configured Latch of
// the benchmark: fixed, so that a PostgreSQL database filled by one run
// (its signing keys sealed under it) serves the next. A benchmark's
// secrets are no secret.
const benchSystemSecret = "latch-bench-system-secret-not-for-production"

// latchServer is `latch serve --config FILE` (log to logFile), or
// `latch serve --dev` when config is "".
func latchServer(bin, dir, config, addr string, logFile io.Writer) *target {
	s := &target{
		name: "latch", base: "http://" + addr,
		tokenPath: pathToken, introspectPath: pathIntrospect, revokePath: pathRevoke,
		clientID: peerClientID, clientSecret: peerClientSecret,
	}
	args := []string{"serve", "--config", config}
	if config == "" {
		s.name, s.clientID, s.clientSecret = "latch --dev", "demo-client", "demo-secret"
		args = []string{"serve", "--dev", "--listen", addr}
	}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Dir, s.cmd.Env = dir, cleanEnv()
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	return s
}

// peerDir is where -op compare installs oidc-provider: a folder of the
// user's cache named by the hash of the committed package-lock.json, so
// that a changed lock installs afresh and nothing is installed into the
// repository.
func peerDir(src string) (string, error) {
	lock, err := os.ReadFile(filepath.Join(src, "package-lock.json"))
	if err != nil {
		return "", fmt.Errorf("oidc-provider: %w (run from the repository root)", err)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(lock)
	return filepath.Join(cache, "latch-bench", "oidc-provider-"+hex.EncodeToString(sum[:6])), nil
}

// installPeer copies bench/peers/oidc-provider into its cache folder and
// runs `npm ci` there once (the lock pins every package).
func installPeer(ctx context.Context, src string, stderr io.Writer) (string, error) {
	dir, err := peerDir(src)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider", "package.json")); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for _, name := range []string{"package.json", "package-lock.json", "server.mjs"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, name), b, 0o644)
		}
		if err != nil {
			return "", fmt.Errorf("oidc-provider: %w", err)
		}
	}
	fmt.Fprintf(stderr, "bench: npm ci in %s\n", dir)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	npm := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--omit=dev")
	npm.Dir = dir
	if out, err := npm.CombinedOutput(); err != nil {
		return "", fmt.Errorf("npm ci (Node 20+ and npm are needed for -op compare): %v\n%s", err, out)
	}
	return dir, nil
}

// peerServer is panva oidc-provider with the memory adapter (server.mjs).
func peerServer(dir, addr string, logFile io.Writer) *target {
	_, port, _ := strings.Cut(addr, ":")
	s := &target{
		name: "oidc-provider", base: "http://" + addr,
		tokenPath: "/token", introspectPath: "/token/introspection", revokePath: "/token/revocation",
		clientID: peerClientID, clientSecret: peerClientSecret,
	}
	s.cmd = exec.Command("node", filepath.Join(dir, "server.mjs"))
	s.cmd.Dir, s.cmd.Env = dir, cleanEnv("PORT="+port, "NODE_ENV=production")
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	return s
}

// noopEnv tells this binary to be the no-op server, listening on its value.
const noopEnv = "LATCH_BENCH_NOOP"

// noopServer is this binary as a no-op Go HTTP server: the ceiling of what
// any Go server can answer on this machine under this load generator.
func noopServer(addr string) (*target, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	s := &target{
		name: "no-op Go handler", base: "http://" + addr,
		tokenPath: pathToken, introspectPath: pathIntrospect, revokePath: pathRevoke,
		clientID: peerClientID, clientSecret: peerClientSecret,
	}
	s.cmd = exec.Command(self)
	s.cmd.Env = cleanEnv(noopEnv + "=" + addr)
	s.cmd.Stderr = os.Stderr
	return s, nil
}

// noopMain serves fixed answers the load generator accepts, reading each
// form as a server must, until SIGTERM.
func noopMain(addr string) int {
	mux := http.NewServeMux()
	answer := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			_ = r.ParseForm()
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, body)
		}
	}
	mux.Handle("POST "+pathToken, answer(`{"access_token":"noop","token_type":"bearer","expires_in":3600}`))
	mux.Handle("POST "+pathIntrospect, answer(`{"active":true}`))
	mux.Handle("POST "+pathRevoke, answer(``))
	mux.Handle("GET "+pathReady, answer(`{"status":"ok"}`))
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "bench no-op server:", err)
		return 1
	}
	return 0
}
