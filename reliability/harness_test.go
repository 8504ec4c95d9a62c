package reliability_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/internal/syncbuf"
	"github.com/latchauth/latch/server"
)

// The clients and the user every server of these tests has. The secrets
// are chosen, so they are stored with argon2id and verified once per
// process, then from the server's cache.
const (
	svcID       = "svc" // client_credentials, and the resource server that introspects
	svcSecret   = "svc-secret-for-the-reliability-tests"
	webID       = "web" // confidential, authorization code + refresh, consent page
	webSecret   = "web-secret-for-the-reliability-tests"
	spaID       = "spa" // public (PKCE), skip_consent
	username    = "alice"
	password    = "alice-password"
	redirectURI = "http://127.0.0.1:5555/callback"
)

// fileConfig is the configuration of a server on the SQLite file at path.
// ES256 keys are generated in microseconds where RSA takes a second under
// -race; nothing here depends on the algorithm.
func fileConfig(path string) config.File {
	f := config.Default()
	f.Database = config.Database{Driver: "sqlite", DSN: path}
	f.Janitor.Interval = config.Duration{}
	f.Tokens.IDTokenSigningAlg = "ES256"
	codeFlow := []string{"authorization_code", "refresh_token"}
	scopes := []string{"openid", "profile", "offline_access", "read"}
	f.Clients = []config.Client{
		{ID: svcID, Secret: svcSecret, GrantTypes: []string{"client_credentials"}, ResponseTypes: []string{},
			Scopes: []string{"read", "write"}},
		{ID: webID, Secret: webSecret, GrantTypes: codeFlow, ResponseTypes: []string{"code"},
			RedirectURIs: []string{redirectURI}, Scopes: scopes},
		{ID: spaID, TokenEndpointAuthMethod: "none", GrantTypes: codeFlow, ResponseTypes: []string{"code"},
			RedirectURIs: []string{redirectURI}, Scopes: scopes, SkipConsent: true},
	}
	f.Users = []config.User{{Username: username, Password: password, Email: "alice@example.com", Name: "Alice"}}
	return f
}

// node is a server booted in process as `latch serve` boots it, on a real
// listener, with its logs (debug and up) kept for assertions.
type node struct {
	URL  string
	in   *server.Instance
	logs *syncbuf.Buffer
	http *http.Server
	done chan error
	once sync.Once
}

// startNode boots a server on the SQLite file at path; tune, when set,
// changes the configuration first. It stops when t ends.
func startNode(t *testing.T, path string, tune func(*config.File)) *node {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := fileConfig(path)
	f.Listen = ln.Addr().String()
	f.Issuer = "http://" + f.Listen
	if tune != nil {
		tune(&f)
	}
	require.NoError(t, f.Validate())
	logs := &syncbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	in, err := server.Boot(context.Background(), f, server.BootOptions{Logger: log})
	if err != nil {
		_ = ln.Close()
		t.Fatalf("boot: %v", err)
	}
	n := &node{URL: f.Issuer, in: in, logs: logs, http: server.HTTPServer(in.Server, log), done: make(chan error, 1)}
	go func() { n.done <- n.http.Serve(ln) }()
	t.Cleanup(n.stop)
	return n
}

// stop drains the server and closes its database; later calls do nothing.
func (n *node) stop() {
	n.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.http.Shutdown(ctx); err != nil {
			_ = n.http.Close()
		}
		<-n.done
		_ = n.in.Close()
	})
}

// badLogLines are the lines of logs that mention what must never happen:
// SQLite's lock contention, a panic, or a race the detector saw.
func badLogLines(logs string) []string {
	var bad []string
	for _, line := range strings.Split(logs, "\n") {
		l := strings.ToLower(line)
		if strings.Contains(l, "database is locked") || strings.Contains(l, "sqlite_busy") ||
			strings.Contains(l, "database table is locked") || strings.Contains(l, "msg=panic") ||
			strings.Contains(l, "data race") {
			bad = append(bad, line)
		}
		if len(bad) == 10 {
			break
		}
	}
	return bad
}

// logLines are the lines of logs at level (e.g. "ERROR"), at most 10.
func logLines(logs, level string) []string {
	var out []string
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, " level="+level+" ") && len(out) < 10 {
			out = append(out, line)
		}
	}
	return out
}

// fp names a token in a failure message without writing the token.
func fp(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "token#" + hex.EncodeToString(sum[:4])
}

// envDuration is the duration in the environment variable name, or def.
func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	raw := os.Getenv(name)
	if raw == "" {
		return def
	}
	d, err := time.ParseDuration(raw)
	require.NoError(t, err, "%s", name)
	return d
}

// problems collects what goroutines found, for one report at the end:
// goroutines must not call t.Fatal.
type problems struct {
	mu    sync.Mutex
	list  []string
	count int
}

func (p *problems) add(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.count++
	if len(p.list) < 25 {
		p.list = append(p.list, fmt.Sprintf(format, args...))
	}
}

// report fails t with every problem found, if any.
func (p *problems) report(t *testing.T, what string) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.count > 0 {
		t.Errorf("%s: %d problems; the first ones:\n  %s", what, p.count, strings.Join(p.list, "\n  "))
	}
}
