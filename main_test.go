package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/internal/syncbuf"
	"github.com/latchauth/latch/server"
	"github.com/latchauth/latch/storage"
)

func envFrom(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

var listeningLine = regexp.MustCompile(`issuer URL (\S+)`)

// startServe runs `latch serve args...` until the test ends and returns
// its issuer URL and output.
func startServe(t *testing.T, env map[string]string, args ...string) (string, *syncbuf.Buffer) {
	t.Helper()
	issuer, out, _ := startServeLogs(t, env, args...)
	return issuer, out
}

// startServeLogs is startServe that also returns what serve logged.
func startServeLogs(t *testing.T, env map[string]string, args ...string) (issuer string, stdout, stderr *syncbuf.Buffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut := &syncbuf.Buffer{}, &syncbuf.Buffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"serve"}, args...), envFrom(env), out, errOut) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve returned %v; stderr:\n%s", err, errOut.String())
			}
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop after cancel")
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := listeningLine.FindStringSubmatch(out.String()); m != nil {
			return m[1], out, errOut
		}
		select {
		case err := <-done:
			t.Fatalf("serve exited early: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("serve printed no URL; stdout:\n%s\nstderr:\n%s", out, errOut)
	return "", nil, nil
}

func postForm(t *testing.T, endpoint, user, pass string, form url.Values) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), []string{"version"}, envFrom(nil), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "latch ") {
		t.Fatalf("version printed %q", out.String())
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	env := map[string]string{"LATCH_DATABASE_DSN": filepath.Join(t.TempDir(), "m.db")}
	// The newest version, whichever it is, and the same twice.
	want := regexp.MustCompile(`^database schema at version [1-9][0-9]*\n$`)
	var first string
	for i := 0; i < 2; i++ {
		var out bytes.Buffer
		if err := run(t.Context(), []string{"migrate"}, envFrom(env), &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		if got := out.String(); !want.MatchString(got) || (i > 0 && got != first) {
			t.Fatalf("run %d printed %q (run 0: %q)", i, got, first)
		}
		first = out.String()
	}
}

// TestServeDevWalkThrough is the README's curl walk-through, with Go's
// clients instead of curl.
func TestServeDevWalkThrough(t *testing.T) {
	t.Chdir(t.TempDir())
	issuer, out := startServe(t, nil, "--dev", "--listen", "127.0.0.1:0")
	if !strings.Contains(out.String(), demoClientID+"  secret "+demoClientSecret) ||
		!strings.Contains(out.String(), "demo user:    "+demoUsername+" / "+demoPassword) ||
		!strings.Contains(out.String(), "curl -s -u demo-client:demo-secret") {
		t.Fatalf("dev output lacks the demo client:\n%s", out)
	}
	if _, err := os.Stat("latch.db"); !os.IsNotExist(err) {
		t.Fatalf("--dev must not create latch.db (stat: %v)", err)
	}
	cc := clientcredentials.Config{ClientID: demoClientID, ClientSecret: demoClientSecret, TokenURL: issuer + "/oauth2/token", Scopes: []string{"read"}}
	tok, err := cc.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	introspect := func() string {
		_, body := postForm(t, issuer+"/oauth2/introspect", demoClientID, demoClientSecret, url.Values{"token": {tok.AccessToken}})
		return body
	}
	if body := introspect(); !strings.Contains(body, `"active":true`) || !strings.Contains(body, `"scope":"read"`) {
		t.Fatalf("introspection of a fresh token: %s", body)
	}
	if status, body := postForm(t, issuer+"/oauth2/revoke", demoClientID, demoClientSecret, url.Values{"token": {tok.AccessToken}}); status != 200 || body != "" {
		t.Fatalf("revoke: %d %q", status, body)
	}
	if body := introspect(); body != `{"active":false}` {
		t.Fatalf("introspection after revoke: %s", body)
	}
}

// TestServeDefaults: no config file and no flags but the port means a
// latch.db in the working directory and an issuer that follows the port.
func TestServeDefaults(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	issuer, _ := startServe(t, nil, "--listen", "127.0.0.1:0")
	if !strings.HasPrefix(issuer, "http://127.0.0.1:") || strings.HasSuffix(issuer, ":0") {
		t.Fatalf("issuer %q does not name the port taken", issuer)
	}
	if _, err := os.Stat(filepath.Join(dir, "latch.db")); err != nil {
		t.Fatalf("latch.db not created: %v", err)
	}
	resp, err := http.Get(issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"issuer":"`+issuer+`"`) {
		t.Fatalf("discovery does not name issuer %s: %s", issuer, body)
	}
}

// TestServeConfigClientSurvivesRestart: a client of config.yaml is seeded,
// its token works, and after a restart on the same file the token is
// still active (the system secret and the rows were kept).
func TestServeConfigClientSurvivesRestart(t *testing.T) {
	_, cfg := svcConfig(t, "keep.db")
	var token string
	t.Run("first start", func(t *testing.T) {
		issuer, _ := startServe(t, nil, "--config", cfg)
		cc := clientcredentials.Config{ClientID: "svc", ClientSecret: "a-chosen-secret", TokenURL: issuer + "/oauth2/token"}
		tok, err := cc.Token(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		token = tok.AccessToken
	})
	t.Run("after restart", func(t *testing.T) {
		issuer, _ := startServe(t, nil, "--config", cfg)
		_, body := postForm(t, issuer+"/oauth2/introspect", "svc", "a-chosen-secret", url.Values{"token": {token}})
		if !strings.Contains(body, `"active":true`) {
			t.Fatalf("token lost across restart: %s", body)
		}
	})
}

func TestServeRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, file string
		env        map[string]string
		want       []string
	}{
		{"unknown key names key and line", "issuer: http://127.0.0.1:8080\ndatabase:\n  drvier: sqlite\n", nil, []string{`line 3`, `"drvier"`}},
		{"every invalid value at once", "log: {level: loud}\ndatabase: {driver: mysql}\n", nil, []string{"log.level", "database.driver"}},
		{"bad environment value", "", map[string]string{"LATCH_TOKENS_ACCESS_TOKEN_LIFESPAN": "soon"}, []string{"LATCH_TOKENS_ACCESS_TOKEN_LIFESPAN"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yaml")
			writeFile(t, path, tc.file)
			err := run(t.Context(), []string{"serve", "--config", path, "--listen", "127.0.0.1:0"}, envFrom(tc.env), io.Discard, io.Discard)
			if err == nil {
				t.Fatal("serve accepted a bad configuration")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	t.Run("plain http issuer off the machine", func(t *testing.T) {
		env := map[string]string{"LATCH_ISSUER": "http://auth.example.com:8080", "LATCH_DATABASE_DSN": ":memory:"}
		err := run(t.Context(), []string{"serve", "--listen", "127.0.0.1:0"}, envFrom(env), io.Discard, io.Discard)
		if err == nil {
			t.Fatal("serve started with an http issuer that is not loopback")
		}
		for _, w := range []string{"issuer", "loopback", "in clear", "insecure_http: true"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not mention %q", err, w)
			}
		}
	})
	t.Run("missing explicit config file", func(t *testing.T) {
		err := run(t.Context(), []string{"serve", "--config", filepath.Join(dir, "nope.yaml")}, envFrom(nil), io.Discard, io.Discard)
		if err == nil {
			t.Fatal("a missing --config file was accepted")
		}
	})
}

// TestServeInsecureHTTPIssuer: the refusal above gives way to
// insecure_http: true, and to --dev, whose demo data is public anyway.
func TestServeInsecureHTTPIssuer(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"insecure_http", map[string]string{"LATCH_INSECURE_HTTP": "true", "LATCH_DATABASE_DSN": ":memory:"}, nil},
		{"dev mode", nil, []string{"--dev"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--listen", "127.0.0.1:0", "--issuer", "http://latch.internal:8080"}, tc.args...)
			issuer, _ := startServe(t, tc.env, args...)
			if issuer != "http://latch.internal:8080" {
				t.Fatalf("serve printed issuer %q", issuer)
			}
		})
	}
}

// svcConfig writes a config.yaml in a new directory: a SQLite file named
// db there, and the client svc (secret a-chosen-secret, client_credentials,
// scope read). It returns the directory and the file.
func svcConfig(t *testing.T, db string) (dir, cfg string) {
	t.Helper()
	dir = t.TempDir()
	cfg = filepath.Join(dir, "config.yaml")
	writeFile(t, cfg, `
listen: 127.0.0.1:0
database: {driver: sqlite, dsn: `+filepath.Join(dir, db)+`}
clients:
  - id: svc
    secret: a-chosen-secret
    grant_types: [client_credentials]
    response_types: []
    scopes: [read]
`)
	return dir, cfg
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestJanitorCommand: `latch janitor` deletes what has expired, once, and
// leaves what has not.
func TestJanitorCommand(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "j.db")
	env := map[string]string{"LATCH_DATABASE_DSN": dsn}
	mustRun := func() string {
		var out bytes.Buffer
		if err := run(t.Context(), []string{"janitor"}, envFrom(env), &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	mustRun() // migrates
	st, err := storage.Open(t.Context(), storage.Options{Driver: "sqlite", DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	c := &clients.Client{ID: "svc", GrantTypes: []string{"client_credentials"}, SecretHash: clients.HashGenerated("x")}
	if err := st.CreateClient(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	for sig, exp := range map[string]time.Time{"old": time.Now().Add(-time.Hour), "live": time.Now().Add(time.Hour)} {
		sess := openid.NewDefaultSession()
		sess.SetExpiresAt(fosite.AccessToken, exp)
		if err := st.CreateAccessTokenSession(t.Context(), sig, &fosite.Request{ID: sig, Client: c, Session: sess}); err != nil {
			t.Fatal(err)
		}
	}
	_ = st.Close()
	if got := mustRun(); got != "oauth2_access    1\ndeleted 1 expired rows\n" {
		t.Fatalf("janitor printed %q", got)
	}
	if got := mustRun(); got != "deleted 0 expired rows\n" {
		t.Fatalf("second janitor run printed %q", got)
	}
}

// TestServeHeaderLimit: a request whose headers pass server.MaxHeaderBytes
// is refused with 431 before any handler runs; an ordinary one is not.
func TestServeHeaderLimit(t *testing.T) {
	issuer, _ := startServe(t, nil, "--dev", "--listen", "127.0.0.1:0")
	get := func(header string) int {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, issuer+"/health/alive", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Padding", header)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if got := get(strings.Repeat("a", 1024)); got != http.StatusOK {
		t.Fatalf("a 1 KiB header: status %d", got)
	}
	if got := get(strings.Repeat("a", 2*server.MaxHeaderBytes)); got != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("a %d-byte header: status %d, want 431", 2*server.MaxHeaderBytes, got)
	}
}

// TestBackupWhileServing: `latch backup` copies the database while serve
// keeps answering (and writing), and serve runs from the copy with every
// token issued before the backup still active.
func TestBackupWhileServing(t *testing.T) {
	dir, cfg := svcConfig(t, "live.db")
	issuer, _ := startServe(t, nil, "--config", cfg)
	cc := clientcredentials.Config{ClientID: "svc", ClientSecret: "a-chosen-secret", TokenURL: issuer + "/oauth2/token"}
	var before []string
	for range 20 {
		tok, err := cc.Token(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		before = append(before, tok.AccessToken)
	}
	// Writers keep going during the backup.
	stop := make(chan struct{})
	writing := make(chan error, 1)
	go func() {
		for i := 0; i < 2000; i++ {
			select {
			case <-stop:
				writing <- nil
				return
			default:
			}
			if _, err := cc.Token(context.Background()); err != nil {
				writing <- err
				return
			}
		}
		writing <- nil
	}()
	backup := filepath.Join(dir, "copy.db")
	var out bytes.Buffer
	if err := run(t.Context(), []string{"backup", "--config", cfg, backup}, envFrom(nil), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	close(stop)
	if err := <-writing; err != nil {
		t.Fatalf("a token request failed during the backup: %v", err)
	}
	if got, want := out.String(), "backed up to "+backup+"\n"; got != want {
		t.Fatalf("backup printed %q, want %q", got, want)
	}
	if err := run(t.Context(), []string{"backup", "--config", cfg, backup}, envFrom(nil), io.Discard, io.Discard); err == nil {
		t.Fatal("backup overwrote an existing file")
	}

	restored, _ := startServe(t, map[string]string{"LATCH_DATABASE_DSN": backup}, "--config", cfg)
	for _, tok := range before {
		_, body := postForm(t, restored+"/oauth2/introspect", "svc", "a-chosen-secret", url.Values{"token": {tok}})
		if !strings.Contains(body, `"active":true`) {
			t.Fatalf("a token issued before the backup is not active in the copy: %s", body)
		}
	}
}
