package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/latchauth/latch/config"
)

// TestCommandsOpenTheDatabaseBesideTheConfigFile: run from another folder
// (cron, a shell in $HOME), a command with --config opens the database
// the file names relative to itself, and says which one on stderr.
func TestCommandsOpenTheDatabaseBesideTheConfigFile(t *testing.T) {
	home := t.TempDir()
	cfg := filepath.Join(home, "config.yaml")
	writeFile(t, cfg, "database: {dsn: state/latch.db}\n")
	if err := os.Mkdir(filepath.Join(home, "state"), 0o700); err != nil {
		t.Fatal(err)
	}
	elsewhere := t.TempDir()
	t.Chdir(elsewhere)

	out, errOut, err := latch(t, nil, "", "clients", "list", "--config", cfg, "-o", "json")
	if err != nil {
		t.Fatalf("clients list: %v\n%s", err, errOut)
	}
	want := filepath.Join(home, "state", "latch.db")
	if _, err := os.Stat(want); err != nil {
		t.Errorf("the database beside the config file was not used: %v", err)
	}
	if _, err := os.Stat(filepath.Join(elsewhere, "state")); err == nil {
		t.Error("a database was created under the working directory")
	}
	if !strings.Contains(errOut, "latch: database sqlite "+want+"\n") {
		t.Errorf("stderr does not name the database %s:\n%s", want, errOut)
	}
	if strings.TrimSpace(out) != "[]" {
		t.Errorf("-o json printed %q, want [] alone on stdout", out)
	}
}

func TestDescribeDatabaseNeverShowsAPassword(t *testing.T) {
	got := describeDatabase(config.Database{Driver: "postgres", DSN: "host=db.internal port=5433 user=latch password=hunter22 dbname=auth"})
	if got != "postgres latch@db.internal:5433/auth" {
		t.Errorf("got %q", got)
	}
	got = describeDatabase(config.Database{Driver: "postgres", DSN: "postgres://latch:hunter22@db.internal/auth"})
	if strings.Contains(got, "hunter22") || !strings.Contains(got, "db.internal") {
		t.Errorf("got %q", got)
	}
}

// TestUnknownLatchVariableIsNamedWithTheNearestKnownOne reads the real
// process environment, as a misspelt export in a shell would be.
func TestUnknownLatchVariableIsNamedWithTheNearestKnownOne(t *testing.T) {
	t.Setenv("LATCH_DATABSE_DSN", "/tmp/x.db")
	env := cliDB(t)
	_, errOut, err := latch(t, env, "", "clients", "list")
	if err != nil {
		t.Fatal(err)
	}
	want := "latch: warning: LATCH_DATABSE_DSN is not a Latch variable and is ignored; did you mean LATCH_DATABASE_DSN?"
	if !strings.Contains(errOut, want) {
		t.Errorf("stderr lacks %q:\n%s", want, errOut)
	}
}

var listenLine = regexp.MustCompile(`latch listening on (\S+)`)

// TestListenNeverRewritesAConfiguredIssuer: --listen moves the socket,
// never the public URL; both are printed.
func TestListenNeverRewritesAConfiguredIssuer(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	writeFile(t, cfg, "issuer: https://auth.example.com\ndatabase: {dsn: ':memory:'}\n")
	issuer, out := startServe(t, nil, "--config", cfg, "--listen", "127.0.0.1:0")
	if issuer != "https://auth.example.com" {
		t.Fatalf("issuer URL %q, want the configured one", issuer)
	}
	m := listenLine.FindStringSubmatch(out.String())
	if m == nil || strings.HasSuffix(m[1], ":0") {
		t.Fatalf("no listening address with the port taken:\n%s", out)
	}
	resp, err := http.Get("http://" + m[1] + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Issuer string `json:"issuer"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || doc.Issuer != "https://auth.example.com" {
		t.Fatalf("discovery at the listening address: issuer %q, err %v", doc.Issuer, err)
	}
}

// TestResponseTypesDefaultTheSameOnEveryPath: a code client that leaves
// response_types out is accepted by config.yaml and the CLI alike, with
// ["code"]; the admin API and registration share clients.Defaults.
func TestResponseTypesDefaultTheSameOnEveryPath(t *testing.T) {
	env := cliDB(t)
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	writeFile(t, cfg, `
clients:
  - id: web
    secret: a-chosen-secret
    grant_types: [authorization_code]
    redirect_uris: [https://app.example.com/cb]
`)
	if _, errOut, err := latch(t, env, "", "clients", "list", "--config", cfg); err != nil {
		t.Fatalf("config.yaml refused a code client without response_types: %v\n%s", err, errOut)
	}
	out := mustLatch(t, env, "", "clients", "create", "--id", "cli-web", "--grant-type", "authorization_code",
		"--redirect-uri", "https://app.example.com/cb", "-o", "json")
	if !strings.Contains(out, `"response_types": [
    "code"
  ]`) {
		t.Errorf("CLI client without --response-type:\n%s", out)
	}
}

// TestCLIJSONListsAreNeverNull: every list the CLI prints as JSON is []
// when empty, in objects and at the top level.
func TestCLIJSONListsAreNeverNull(t *testing.T) {
	env := cliDB(t)
	for _, args := range [][]string{
		{"clients", "list", "-o", "json"},
		{"users", "list", "-o", "json"},
		{"clients", "create", "--id", "svc", "-o", "json"},
		{"clients", "get", "svc", "-o", "json"},
		{"clients", "list", "-o", "json"},
		{"keys", "list", "-o", "json"},
	} {
		out := mustLatch(t, env, "", args...)
		if strings.Contains(out, "null") {
			t.Errorf("latch %s printed null:\n%s", strings.Join(args, " "), out)
		}
	}
}

// TestPasswordsShorterThanEightCharactersAreRefused, NIST SP 800-63B's
// minimum, on every CLI path that sets one, naming what was wrong.
func TestPasswordsShorterThanEightCharactersAreRefused(t *testing.T) {
	env := cliDB(t)
	_, _, err := latch(t, env, "x\n", "users", "add", "--username", "bob")
	if err == nil || !strings.Contains(err.Error(), "password of user bob: must be at least 8 characters") {
		t.Fatalf("users add with a 1-character password: %v", err)
	}
	mustLatch(t, env, "long-enough\n", "users", "add", "--username", "bob")
	_, _, err = latch(t, env, "1234567\n", "users", "set-password", "bob")
	if err == nil || !strings.Contains(err.Error(), "must be at least 8 characters") {
		t.Fatalf("set-password with 7 characters: %v", err)
	}

	cfg := filepath.Join(t.TempDir(), "config.yaml")
	writeFile(t, cfg, "users: [{username: carol, password: short}]\n")
	_, _, err = latch(t, env, "", "users", "list", "--config", cfg)
	if err == nil || !strings.Contains(err.Error(), "users[0].password: must be at least 8 characters") {
		t.Fatalf("config.yaml with a 5-character password: %v", err)
	}
}

// TestBackupSaysWhatIsWrongInOneLine: the usage shows the argument, and a
// missing folder is named as such, without a doubled prefix.
func TestBackupSaysWhatIsWrongInOneLine(t *testing.T) {
	env := cliDB(t)
	_, _, err := latch(t, env, "", "backup")
	if err == nil || !strings.Contains(err.Error(), "latch backup FILE") {
		t.Errorf("backup without FILE: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "nope", "copy.db")
	_, _, err = latch(t, env, "", "backup", missing)
	if err == nil || !strings.HasPrefix(err.Error(), "no such folder "+filepath.Dir(missing)) ||
		strings.Contains(err.Error(), "\n") || strings.Count(err.Error(), "storage:") > 0 {
		t.Errorf("backup into a missing folder: %v", err)
	}
}

// TestDerivedIssuerFollowsTheHTTPRule: without a configured issuer, one
// derived from a non-loopback listen address over http is refused like a
// configured one, unless insecure_http is set.
func TestDerivedIssuerFollowsTheHTTPRule(t *testing.T) {
	if got := listenIssuer(&net.TCPAddr{IP: net.IPv4zero, Port: 8080}, false); got != "http://127.0.0.1:8080" {
		t.Errorf("0.0.0.0:8080 gives %q, want the loopback address", got)
	}
	if got := listenIssuer(&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 8443}, true); got != "https://192.0.2.7:8443" {
		t.Errorf("got %q", got)
	}
	// A non-loopback address of this machine, if it has one.
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.To4() == nil {
			continue
		}
		env := map[string]string{"LATCH_DATABASE_DSN": ":memory:"}
		err := run(t.Context(), []string{"serve", "--listen", ipn.IP.String() + ":0"}, envFrom(env), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "issuer") {
			t.Fatalf("serve on %s with a derived http issuer: %v", ipn.IP, err)
		}
		return
	}
	t.Log("no non-loopback IPv4 address: the refusal itself was not exercised")
}
