package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/internal/syncbuf"
)

// cliDB is the environment of a CLI test: its own SQLite file, and a
// working directory without config.yaml so that only built-in defaults and
// the variables apply.
func cliDB(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	t.Chdir(dir)
	return map[string]string{"LATCH_DATABASE_DSN": filepath.Join(dir, "latch.db")}
}

// latch runs the CLI in-process with stdin and returns what it printed.
func latch(t *testing.T, env map[string]string, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut syncbuf.Buffer
	err = runWithInput(t.Context(), args, envFrom(env), strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), err
}

// mustLatch is latch that fails the test on an error.
func mustLatch(t *testing.T, env map[string]string, stdin string, args ...string) string {
	t.Helper()
	out, errOut, err := latch(t, env, stdin, args...)
	if err != nil {
		t.Fatalf("latch %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

var secretLine = regexp.MustCompile(`client_secret: (\S+)\n`)

// createdSecret is the secret that clients create printed.
func createdSecret(t *testing.T, out string) string {
	t.Helper()
	m := secretLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no secret printed:\n%s", out)
	}
	if !strings.Contains(out, "cannot be shown again") {
		t.Fatalf("the secret is not said to be shown once:\n%s", out)
	}
	return m[1]
}

func getClientJSON(t *testing.T, env map[string]string, id string) map[string]any {
	t.Helper()
	var got map[string]any
	out := mustLatch(t, env, "", "clients", "get", id, "--output", "json")
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("clients get --output json printed %q: %v", out, err)
	}
	return got
}

func TestClientsCreateShowsSecretOnce(t *testing.T) {
	env := cliDB(t)
	out := mustLatch(t, env, "", "clients", "create", "--id", "web", "--name", "Web App",
		"--grant-type", "authorization_code", "--grant-type", "refresh_token",
		"--redirect-uri", "https://app.example.com/callback", "--redirect-uri", "http://127.0.0.1:5555/callback",
		"--post-logout-redirect-uri", "https://app.example.com/",
		"--scope", "openid", "--scope", "profile", "--audience", "https://api.example.com",
		"--token-endpoint-auth-method", "client_secret_post", "--access-token-format", "jwt",
		"--rate-limit", "2.5", "--skip-consent", "--require-signed-request-object",
		"--dpop-bound-access-tokens", "--backchannel-logout-uri", "https://app.example.com/backchannel",
		"--backchannel-logout-session-required")
	secret := createdSecret(t, out)
	if !strings.HasPrefix(out, "created client web\n") {
		t.Fatalf("create printed:\n%s", out)
	}

	want := map[string]any{
		"client_id":                           "web",
		"client_name":                         "Web App",
		"grant_types":                         []any{"authorization_code", "refresh_token"},
		"response_types":                      []any{"code"},
		"redirect_uris":                       []any{"https://app.example.com/callback", "http://127.0.0.1:5555/callback"},
		"post_logout_redirect_uris":           []any{"https://app.example.com/"},
		"scopes":                              []any{"openid", "profile"},
		"audience":                            []any{"https://api.example.com"},
		"token_endpoint_auth_method":          "client_secret_post",
		"access_token_format":                 "jwt",
		"rate_limit":                          2.5,
		"skip_consent":                        true,
		"require_signed_request_object":       true,
		"dpop_bound_access_tokens":            true,
		"backchannel_logout_uri":              "https://app.example.com/backchannel",
		"backchannel_logout_session_required": true,
	}
	got := getClientJSON(t, env, "web")
	for k, v := range want {
		if fmt.Sprint(got[k]) != fmt.Sprint(v) {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}

	// Neither the secret nor its hash can be read back, in any format.
	for _, args := range [][]string{
		{"clients", "get", "web"}, {"clients", "get", "web", "--output", "json"},
		{"clients", "list"}, {"clients", "list", "--output", "json"},
	} {
		out := mustLatch(t, env, "", args...)
		if strings.Contains(out, secret) || strings.Contains(out, "sha256$") || strings.Contains(out, "client_secret:") {
			t.Errorf("%s shows a secret:\n%s", strings.Join(args, " "), out)
		}
	}
}

func TestClientsCreateDefaults(t *testing.T) {
	env := cliDB(t)
	createdSecret(t, mustLatch(t, env, "", "clients", "create", "--id", "svc"))
	got := getClientJSON(t, env, "svc")
	if fmt.Sprint(got["grant_types"]) != "[client_credentials]" || fmt.Sprint(got["response_types"]) != "[]" ||
		got["token_endpoint_auth_method"] != clients.AuthMethodBasic {
		t.Fatalf("defaults of create: %v", got)
	}

	// A public client gets no secret.
	out := mustLatch(t, env, "", "clients", "create", "--id", "spa", "--token-endpoint-auth-method", "none",
		"--grant-type", "authorization_code", "--redirect-uri", "http://127.0.0.1:5555/callback")
	if strings.Contains(out, "client_secret:") {
		t.Fatalf("a public client was given a secret:\n%s", out)
	}
	if got := getClientJSON(t, env, "spa"); fmt.Sprint(got["response_types"]) != "[code]" {
		t.Fatalf("authorization_code without --response-type: response_types %v", got["response_types"])
	}
}

func TestClientsCreateJSON(t *testing.T) {
	env := cliDB(t)
	out, errOut, err := latch(t, env, "", "clients", "create", "--id", "svc", "--scope", "read", "--output", "json")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		ID     string   `json:"client_id"`
		Secret string   `json:"client_secret"`
		Scopes []string `json:"scopes"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("create --output json printed %q: %v", out, err)
	}
	if got.ID != "svc" || len(got.Secret) < 40 || fmt.Sprint(got.Scopes) != "[read]" {
		t.Fatalf("create --output json: %+v", got)
	}
	if !strings.Contains(errOut, "cannot be shown again") {
		t.Fatalf("no notice on stderr: %q", errOut)
	}
}

func TestClientsTableOutput(t *testing.T) {
	env := cliDB(t)
	mustLatch(t, env, "", "clients", "create", "--id", "a-long-client-id", "--name", "A", "--scope", "read")
	mustLatch(t, env, "", "clients", "create", "--id", "b", "--scope", "write")
	lines := strings.Split(strings.TrimSpace(mustLatch(t, env, "", "clients", "list")), "\n")
	if len(lines) != 3 {
		t.Fatalf("list printed %d lines:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	// Aligned columns: NAME starts at the same offset on every line.
	col := strings.Index(lines[0], "NAME")
	if !strings.HasPrefix(lines[0], "CLIENT ID") || col < len("a-long-client-id") ||
		!strings.HasPrefix(lines[1][col:], "A ") || !strings.HasPrefix(lines[2][col:], "- ") {
		t.Fatalf("columns are not aligned:\n%s", strings.Join(lines, "\n"))
	}
	if !strings.Contains(lines[1], "client_secret_basic") || !strings.Contains(lines[2], "client_credentials") {
		t.Fatalf("list rows:\n%s", strings.Join(lines, "\n"))
	}

	get := mustLatch(t, env, "", "clients", "get", "b")
	for _, want := range []string{"client_id                   b\n", "scopes                      write\n", "rate_limit                  unlimited\n"} {
		if !strings.Contains(get, want) {
			t.Errorf("get does not show %q:\n%s", want, get)
		}
	}
}

func TestClientsUpdate(t *testing.T) {
	env := cliDB(t)
	mustLatch(t, env, "", "clients", "create", "--id", "app", "--name", "App", "--scope", "read", "--scope", "write",
		"--audience", "https://api.example.com")
	before := getClientJSON(t, env, "app")

	out := mustLatch(t, env, "", "clients", "update", "app", "--name", "Renamed", "--audience", "")
	if !strings.HasPrefix(out, "updated client app\n") || strings.Contains(out, "client_secret:") {
		t.Fatalf("update printed:\n%s", out)
	}
	got := getClientJSON(t, env, "app")
	if got["client_name"] != "Renamed" || fmt.Sprint(got["scopes"]) != "[read write]" || fmt.Sprint(got["audience"]) != "[]" ||
		got["created_at"] != before["created_at"] {
		t.Fatalf("update changed more or less than asked: %v", got)
	}

	// Switching grant types brings the response types along.
	mustLatch(t, env, "", "clients", "update", "app", "--grant-type", "authorization_code", "--redirect-uri", "https://app.example.com/cb")
	if got := getClientJSON(t, env, "app"); fmt.Sprint(got["response_types"]) != "[code]" {
		t.Fatalf("response_types after adding authorization_code: %v", got["response_types"])
	}
	mustLatch(t, env, "", "clients", "update", "app", "--grant-type", "client_credentials")
	if got := getClientJSON(t, env, "app"); fmt.Sprint(got["response_types"]) != "[]" {
		t.Fatalf("response_types after removing authorization_code: %v", got["response_types"])
	}

	// A public client made confidential is given a secret, shown once.
	mustLatch(t, env, "", "clients", "create", "--id", "spa", "--token-endpoint-auth-method", "none",
		"--grant-type", "authorization_code", "--redirect-uri", "http://127.0.0.1:5555/callback")
	createdSecret(t, mustLatch(t, env, "", "clients", "update", "spa", "--token-endpoint-auth-method", "client_secret_basic"))
	mustLatch(t, env, "", "clients", "rotate-secret", "spa")

	// A back-channel logout URI is set, then cleared with "".
	mustLatch(t, env, "", "clients", "update", "spa", "--backchannel-logout-uri", "https://app.example.com/bc")
	if got := getClientJSON(t, env, "spa"); got["backchannel_logout_uri"] != "https://app.example.com/bc" {
		t.Fatalf("backchannel_logout_uri after update: %v", got["backchannel_logout_uri"])
	}
	mustLatch(t, env, "", "clients", "update", "spa", "--backchannel-logout-uri", "")
	if got := getClientJSON(t, env, "spa"); got["backchannel_logout_uri"] != nil {
		t.Fatalf("backchannel_logout_uri after clearing: %v", got["backchannel_logout_uri"])
	}
}

func TestClientsDelete(t *testing.T) {
	env := cliDB(t)
	mustLatch(t, env, "", "clients", "create", "--id", "gone")
	if out := mustLatch(t, env, "", "clients", "delete", "gone"); out != "deleted client gone and revoked every token issued to it\n" {
		t.Fatalf("delete printed %q", out)
	}
	if out := mustLatch(t, env, "", "clients", "list", "--output", "json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("list after delete: %s", out)
	}
}

// insecure_http, which lets an issuer be plain http off loopback, lets
// redirect URIs be so too: the CLI applies the deployment's rules.
func TestClientsInsecureHTTPAllowsRemoteHTTPRedirectURIs(t *testing.T) {
	env := cliDB(t)
	env["LATCH_INSECURE_HTTP"] = "true"
	env["LATCH_ISSUER"] = "http://latch.internal:8080"
	mustLatch(t, env, "", "clients", "create", "--id", "web", "--token-endpoint-auth-method", "none",
		"--grant-type", "authorization_code", "--redirect-uri", "http://app.internal/cb")
	_, _, err := latch(t, env, "", "clients", "create", "--id", "js", "--token-endpoint-auth-method", "none",
		"--grant-type", "authorization_code", "--redirect-uri", "javascript:alert(1)")
	if err == nil || !strings.Contains(err.Error(), "javascript") {
		t.Fatalf("a javascript: URI with insecure_http: %v, want refused", err)
	}
}

func TestClientsErrors(t *testing.T) {
	env := cliDB(t)
	mustLatch(t, env, "", "clients", "create", "--id", "svc")
	mustLatch(t, env, "", "clients", "create", "--id", "spa", "--token-endpoint-auth-method", "none",
		"--grant-type", "authorization_code", "--redirect-uri", "http://127.0.0.1:5555/callback")
	jwks := filepath.Join(t.TempDir(), "private.json")
	writeFile(t, jwks, `{"keys":[{"kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQ","kid":"x"}]}`)
	cases := []struct {
		name  string
		stdin string
		args  []string
		want  []string
	}{
		{"create without id", "", []string{"clients", "create"}, []string{"--id is required"}},
		{"duplicate id", "", []string{"clients", "create", "--id", "svc"}, []string{`client "svc" already exists`}},
		{"invalid redirect URI", "", []string{"clients", "create", "--id", "web", "--grant-type", "authorization_code", "--redirect-uri", "/callback"},
			[]string{"invalid client \"web\":\n  redirect_uris[0]: ", `"/callback"`}},
		{"javascript: redirect URI", "", []string{"clients", "create", "--id", "web", "--grant-type", "authorization_code", "--redirect-uri", "javascript:alert(1)"},
			[]string{"invalid client \"web\":\n  redirect_uris[0]: must not use the javascript: scheme"}},
		{"plain http to a remote host", "", []string{"clients", "create", "--id", "web", "--grant-type", "authorization_code", "--redirect-uri", "http://app.example.com/cb"},
			[]string{"redirect_uris[0]: must use https", "insecure_http"}},
		{"every problem at once", "", []string{"clients", "create", "--id", "web", "--grant-type", "magic", "--redirect-uri", "x#y"},
			[]string{"invalid client \"web\":\n  grant_types[0]: ", `"magic"`, "\n  redirect_uris[0]: ", `"x#y"`}},
		{"authorization_code without redirect URI", "", []string{"clients", "create", "--id", "web", "--grant-type", "authorization_code"},
			[]string{"\n  redirect_uris: "}},
		{"unknown auth method", "", []string{"clients", "create", "--id", "x", "--token-endpoint-auth-method", "magic"},
			[]string{"\n  token_endpoint_auth_method: ", `"magic"`}},
		{"unknown output", "", []string{"clients", "list", "--output", "yaml"}, []string{`--output must be table or json, not "yaml"`}},
		{"a private key in --jwks-file", "", []string{"clients", "create", "--id", "x", "--jwks-file", jwks}, []string{"is a private key"}},
		{"missing --jwks-file", "", []string{"clients", "create", "--id", "x", "--jwks-file", filepath.Join(t.TempDir(), "nope.json")}, []string{"--jwks-file"}},
		{"empty chosen secret", "\n", []string{"clients", "create", "--id", "x", "--secret-stdin"}, []string{"client secret must not be empty"}},
		{"chosen secret for a public client", "s3cret\n", []string{"clients", "create", "--id", "x", "--secret-stdin", "--token-endpoint-auth-method", "none",
			"--grant-type", "authorization_code", "--redirect-uri", "http://127.0.0.1:5555/callback"}, []string{"public client"}},
		{"secret as a flag", "", []string{"clients", "create", "--id", "x", "--secret", "s3cret"}, []string{"unknown flag: --secret"}},
		{"get unknown", "", []string{"clients", "get", "nope"}, []string{`client "nope" not found`}},
		{"update unknown", "", []string{"clients", "update", "nope", "--name", "x"}, []string{`client "nope" not found`}},
		{"delete unknown", "", []string{"clients", "delete", "nope"}, []string{`client "nope" not found`}},
		{"rotate unknown", "", []string{"clients", "rotate-secret", "nope"}, []string{`client "nope" not found`}},
		{"rotate a public client", "", []string{"clients", "rotate-secret", "spa"}, []string{`client "spa" is public`}},
		{"update to invalid", "", []string{"clients", "update", "svc", "--redirect-uri", "not a uri"}, []string{"invalid client \"svc\":\n  redirect_uris[0]: "}},
		{"get without id", "", []string{"clients", "get"}, []string{"give one client id: latch clients get ID"}},
		{"delete with two ids", "", []string{"clients", "delete", "a", "b"}, []string{"give one client id"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := latch(t, env, tc.stdin, tc.args...)
			if err == nil {
				t.Fatalf("succeeded; printed:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	// Nothing of the failed commands was stored.
	if out := mustLatch(t, env, "", "clients", "list"); strings.Count(out, "\n") != 3 {
		t.Fatalf("failed commands left clients behind:\n%s", out)
	}
}

// TestClientsSharedDatabaseWithServe: the CLI writes the SQLite file a
// running server uses, at the same time as the server issues tokens; the
// server sees every change at once.
func TestClientsSharedDatabaseWithServe(t *testing.T) {
	env := cliDB(t)
	issuer, _ := startServe(t, env, "--listen", "127.0.0.1:0")
	tokenURL := issuer + "/oauth2/token"

	secret := createdSecret(t, mustLatch(t, env, "", "clients", "create", "--id", "svc", "--scope", "read"))
	mustLatch(t, env, "chosen-secret-of-a-person\n", "clients", "create", "--id", "chosen", "--secret-stdin")

	// The CLI creates and lists clients while the server issues tokens.
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 8 {
			var out, errOut syncbuf.Buffer
			if err := runWithInput(t.Context(), []string{"clients", "create", "--id", fmt.Sprintf("busy-%d", i)}, envFrom(env), strings.NewReader(""), &out, &errOut); err != nil {
				errs <- fmt.Errorf("clients create busy-%d: %w", i, err)
			}
			if err := runWithInput(t.Context(), []string{"clients", "list"}, envFrom(env), strings.NewReader(""), &out, &errOut); err != nil {
				errs <- fmt.Errorf("clients list: %w", err)
			}
		}
	}()
	var tokens []string
	for range 16 {
		cc := clientcredentials.Config{ClientID: "svc", ClientSecret: secret, TokenURL: tokenURL, Scopes: []string{"read"}}
		tok, err := cc.Token(t.Context())
		if err != nil {
			t.Fatalf("token while the CLI writes: %v", err)
		}
		tokens = append(tokens, tok.AccessToken)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	cc := clientcredentials.Config{ClientID: "chosen", ClientSecret: "chosen-secret-of-a-person", TokenURL: tokenURL}
	if _, err := cc.Token(t.Context()); err != nil {
		t.Fatalf("token of a client with a chosen secret: %v", err)
	}

	introspect := func(token, secret string) string {
		_, body := postForm(t, issuer+"/oauth2/introspect", "svc", secret, url.Values{"token": {token}})
		return body
	}
	if body := introspect(tokens[0], secret); !strings.Contains(body, `"active":true`) {
		t.Fatalf("fresh token: %s", body)
	}

	t.Run("rotate-secret", func(t *testing.T) {
		out := mustLatch(t, env, "", "clients", "rotate-secret", "svc")
		m := regexp.MustCompile(`^new secret of client svc: (\S+)\n.*cannot be shown again`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("rotate-secret printed:\n%s", out)
		}
		old := secret
		secret = m[1]
		// The new secret works at once: a refused secret is checked once
		// more against the database.
		if status, body := postForm(t, tokenURL, "svc", secret, url.Values{"grant_type": {"client_credentials"}}); status != http.StatusOK {
			t.Fatalf("the new secret does not work: %d %s", status, body)
		}
		// The old one stops working within the client cache's time (2 s;
		// SPEC allows 5 s for a change made by another process).
		deadline := time.Now().Add(5 * time.Second)
		for {
			status, _ := postForm(t, tokenURL, "svc", old, url.Values{"grant_type": {"client_credentials"}})
			if status == http.StatusUnauthorized {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the old secret still works after 5 s: %d", status)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if status, body := postForm(t, tokenURL, "svc", secret, url.Values{"grant_type": {"client_credentials"}}); status != http.StatusOK {
			t.Fatalf("the new secret does not work: %d %s", status, body)
		}
		if body := introspect(tokens[0], secret); !strings.Contains(body, `"active":true`) {
			t.Fatalf("rotating the secret revoked a token: %s", body)
		}
	})

	t.Run("tokens revoke --client", func(t *testing.T) {
		// 16 tokens above and two with the new secret: 18 grants.
		if out := mustLatch(t, env, "", "tokens", "revoke", "--client", "svc"); out != "revoked 18 grants of client svc\n" {
			t.Fatalf("tokens revoke printed %q", out)
		}
		for _, tok := range []string{tokens[0], tokens[len(tokens)-1]} {
			if body := introspect(tok, secret); body != `{"active":false}` {
				t.Fatalf("a revoked token is still active: %s", body)
			}
		}
		if out := mustLatch(t, env, "", "tokens", "revoke", "--client", "svc"); out != "revoked 0 grants of client svc\n" {
			t.Fatalf("second revoke printed %q", out)
		}
	})
}

// The token exchange policy follows its grant: given with it, kept and
// changed by the policy flags, refused without it, dropped with it.
func TestClientsTokenExchangePolicy(t *testing.T) {
	env := cliDB(t)
	mustLatch(t, env, "", "clients", "create", "--id", "gw", "--grant-type", clients.GrantTokenExchange,
		"--token-exchange-audience", "https://api.example.com", "--token-exchange-audience", "https://billing.example.com")
	got := getClientJSON(t, env, "gw")
	if fmt.Sprint(got["token_exchange"]) != "map[audiences:[https://api.example.com https://billing.example.com]]" {
		t.Fatalf("token_exchange after create: %v", got["token_exchange"])
	}
	mustLatch(t, env, "", "clients", "update", "gw", "--token-exchange-impersonation", "--token-exchange-refresh-tokens")
	got = getClientJSON(t, env, "gw")
	if fmt.Sprint(got["token_exchange"]) != "map[audiences:[https://api.example.com https://billing.example.com] impersonation:true refresh_tokens:true]" {
		t.Fatalf("token_exchange after update: %v", got["token_exchange"])
	}
	if out := mustLatch(t, env, "", "clients", "get", "gw"); !strings.Contains(out, "impersonation=true refresh_tokens=true") {
		t.Fatalf("clients get does not show the policy:\n%s", out)
	}
	// The policy alone, without the grant, is refused and names the field.
	if _, _, err := latch(t, env, "", "clients", "create", "--id", "other", "--token-exchange-impersonation"); err == nil ||
		!strings.Contains(err.Error(), "token_exchange: is set but grant_types does not list") {
		t.Fatalf("a policy without the grant: %v", err)
	}
	mustLatch(t, env, "", "clients", "update", "gw", "--grant-type", clients.GrantClientCredentials)
	if got := getClientJSON(t, env, "gw"); got["token_exchange"] != nil {
		t.Fatalf("token_exchange kept after the grant was removed: %v", got["token_exchange"])
	}
}
