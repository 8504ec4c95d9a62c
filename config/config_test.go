package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v3"
	"gopkg.in/yaml.v3"
)

const (
	bcryptHash   = "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
	argon2idHash = "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG"
)

// testJWKS returns a JWK set with one fresh public key, and one whose key is
// private.
func testJWKS(t *testing.T) (public, private string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	enc := func(k any) string {
		b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	return enc(&key.PublicKey), enc(key)
}

// fullYAML is a valid file using every list: a confidential, a public and a
// private_key_jwt client, users with password and both hash kinds, and a
// trusted issuer with inline jwks.
func fullYAML(t *testing.T) string {
	t.Helper()
	jwks, _ := testJWKS(t)
	return strings.NewReplacer("JWKS", jwks, "BCRYPT", bcryptHash, "ARGON", argon2idHash).Replace(`
issuer: https://auth.example.com
listen: ":8443"
tls: {cert_file: cert.pem, key_file: key.pem}
log: {level: debug, format: json}
database: {driver: postgres, dsn: "postgres://latch@db/latch"}
secrets: {system: 0123456789abcdef0123456789abcdef}
admin: {token: admin-token}
tokens:
  access_token_format: jwt
  refresh_token_grace_period: 5s
registration: {enabled: true, initial_access_token: reg}
trusted_issuers:
  - issuer: https://ci.example.com
    subject: deploy-bot
    jwks: JWKS
    scopes: [deploy]
  - issuer: https://other.example.com
    allow_any_subject: true
    jwks_file: other-jwks.json
clients:
  - id: my-app
    secret: change-me
    name: My App
    redirect_uris: [http://127.0.0.1:5555/callback]
    post_logout_redirect_uris: [http://127.0.0.1:5555/]
    grant_types: [authorization_code, refresh_token, client_credentials]
    response_types: [code]
    scopes: [openid, profile, email, offline_access]
    audience: [https://api.example.com]
    token_endpoint_auth_method: client_secret_post
    access_token_format: opaque
    rate_limit: 2.5
    skip_consent: true
  - id: spa
    redirect_uris: [com.example.app:/callback]
    grant_types: [authorization_code, urn:ietf:params:oauth:grant-type:device_code]
    response_types: [code]
    token_endpoint_auth_method: none
  - id: service
    grant_types: [client_credentials, urn:ietf:params:oauth:grant-type:jwt-bearer]
    token_endpoint_auth_method: private_key_jwt
    jwks: JWKS
users:
  - username: alice
    password: alice-password
    email: alice@example.com
    email_verified: true
    name: Alice Example
    groups: [admins]
    claims: {department: engineering, level: 3}
  - {username: bob, password_hash: "BCRYPT"}
  - {username: carol, password_hash: "ARGON"}
`)
}

func parse(t *testing.T, src string) File {
	t.Helper()
	f, err := Parse("config.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return f
}

func TestDefault(t *testing.T) {
	f := Default()
	if err := f.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"issuer", f.Issuer, "http://127.0.0.1:8080"},
		{"listen", f.Listen, "127.0.0.1:8080"},
		{"database", f.Database, Database{Driver: "sqlite", DSN: "latch.db"}},
		{"shutdown", f.ShutdownTimeout.Duration, 15 * time.Second},
		{"log", f.Log, Log{Level: "info", Format: "text"}},
		{"janitor", f.Janitor.Interval.Duration, 5 * time.Minute},
		{"access", f.Tokens.AccessTokenLifespan.Duration, time.Hour},
		{"refresh", f.Tokens.RefreshTokenLifespan.Duration, 720 * time.Hour},
		{"code", f.Tokens.AuthorizeCodeLifespan.Duration, 10 * time.Minute},
		{"id", f.Tokens.IDTokenLifespan.Duration, time.Hour},
		{"device", f.Tokens.DeviceCodeLifespan.Duration, 10 * time.Minute},
		{"format", f.Tokens.AccessTokenFormat, "opaque"},
		{"rotation", f.Tokens.RefreshTokenRotation, true},
		{"grace", f.Tokens.RefreshTokenGracePeriod.Duration, time.Duration(0)},
		{"registration scopes", f.Registration.AllowedScopes, []string{"openid", "profile", "email", "offline_access"}},
		{"registration grants", f.Registration.AllowedGrantTypes, []string{"authorization_code", "refresh_token"}},
		{"registration max clients", f.Registration.MaxClients, 1000},
		{"lists", len(f.Clients) + len(f.Users) + len(f.TrustedIssuers), 0},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("got %v, want %v", c.got, c.want)
			}
		})
	}
}

// The shipped example must work as is and document exactly the defaults.
func TestRepositoryConfig(t *testing.T) {
	f, err := Load("../config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Validate(); err != nil {
		t.Fatalf("../config.yaml does not validate: %v", err)
	}
	if f.Clients == nil || f.Users == nil || f.TrustedIssuers == nil {
		t.Error("the example should spell out clients: [], users: [] and trusted_issuers: []")
	}
	f.Clients, f.Users, f.TrustedIssuers, f.TrustedProxies, f.Connectors = nil, nil, nil, nil, nil
	want := Default()
	abs, err := filepath.Abs("../latch.db") // the dsn is relative to the file's folder
	if err != nil {
		t.Fatal(err)
	}
	want.Database.DSN = abs
	if !reflect.DeepEqual(f, want) {
		t.Errorf("../config.yaml differs from Default():\n got %+v\nwant %+v", f, want)
	}
}

func TestLoadFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "latch.yaml")
	if err := os.WriteFile(path, []byte("listen: 127.0.0.1:9999\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.yaml")

	tests := []struct {
		name    string
		load    func(string) (File, error)
		path    string
		listen  string
		wantErr bool
	}{
		{"Load existing", Load, path, "127.0.0.1:9999", false},
		{"LoadDefault existing", LoadDefault, path, "127.0.0.1:9999", false},
		{"LoadDefault missing", LoadDefault, missing, "127.0.0.1:8080", false},
		{"Load missing", Load, missing, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := tt.load(tt.path)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if f.Listen != tt.listen {
				t.Errorf("listen = %q, want %q", f.Listen, tt.listen)
			}
		})
	}
}

func TestParseKeepsDefaults(t *testing.T) {
	tests := []struct {
		name, src string
		check     func(File) bool
	}{
		{"empty", "", func(f File) bool { return reflect.DeepEqual(f, Default()) }},
		{"comments only", "# nothing\n", func(f File) bool { return reflect.DeepEqual(f, Default()) }},
		{"empty document", "---\n", func(f File) bool { return reflect.DeepEqual(f, Default()) }},
		{"nested key keeps siblings", "log: {level: debug}\n", func(f File) bool {
			return f.Log == Log{Level: "debug", Format: "text"}
		}},
		{"null section", "tokens:\n", func(f File) bool { return reflect.DeepEqual(f.Tokens, Default().Tokens) }},
		{"bare zero duration", "janitor: {interval: 0}\n", func(f File) bool { return f.Janitor.Interval.Duration == 0 }},
		{"false overrides true", "tokens: {refresh_token_rotation: false}\n", func(f File) bool {
			return !f.Tokens.RefreshTokenRotation && f.Tokens.AccessTokenLifespan.Duration == time.Hour
		}},
		{"jwks as JSON text", `clients: [{id: a, jwks: '{"keys":[]}'}]`, func(f File) bool {
			return string(f.Clients[0].JWKS) == `{"keys":[]}`
		}},
		{"null jwks", "clients: [{id: a, jwks: null}]", func(f File) bool { return f.Clients[0].JWKS == nil }},
		{"dpop_bound_access_tokens reaches the client", "clients: [{id: a, dpop_bound_access_tokens: true}]", func(f File) bool {
			m, err := f.Clients[0].Model()
			return err == nil && m.DPoPBoundAccessTokens
		}},
		{"back-channel logout reaches the client", "clients: [{id: a, backchannel_logout_uri: 'https://a.example/bc', backchannel_logout_session_required: true}]", func(f File) bool {
			m, err := f.Clients[0].Model()
			return err == nil && m.BackchannelLogoutURI == "https://a.example/bc" && m.BackchannelLogoutSessionRequired
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if f := parse(t, tt.src); !tt.check(f) {
				t.Errorf("unexpected result: %+v", f)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // each must appear, on its own line of the error
	}{
		{"unknown top-level key", "issuer: http://127.0.0.1:8080\nlisten: 127.0.0.1:8080\nfoo: 1\n",
			[]string{`config.yaml line 3: unknown key "foo"`}},
		{"unknown nested key", "log:\n  level: info\ndatabase:\n  driver: sqlite\n  foo: bar\n",
			[]string{`config.yaml line 5: unknown key "foo" (in database)`}},
		{"unknown key in a client", "clients:\n  - id: a\n  - id: b\n    secrett: x\n",
			[]string{`config.yaml line 4: unknown key "secrett" (in clients[1])`}},
		{"unknown key in a trusted issuer", "trusted_issuers:\n  - issuer: https://x\n    jwks_files: a\n",
			[]string{`config.yaml line 3: unknown key "jwks_files" (in trusted_issuers[0])`}},
		{"unknown key in a token exchange policy", "clients:\n  - id: a\n    token_exchange:\n      audience: [x]\n",
			[]string{`config.yaml line 4: unknown key "audience" (in clients[0].token_exchange)`}},
		{"unknown key in a user", "users:\n  - username: a\n    mail: a@b\n",
			[]string{`config.yaml line 3: unknown key "mail" (in users[0])`}},
		{"several unknown keys at once", "foo: 1\ntls:\n  cert: x\n",
			[]string{`config.yaml line 1: unknown key "foo"`, `config.yaml line 3: unknown key "cert" (in tls)`}},
		{"list for a string", "issuer: http://127.0.0.1:8080\nlisten: [1,2]\n",
			[]string{"config.yaml line 2: listen: expected a string, got a list"}},
		{"bad duration", "log: {level: info}\nshutdown_timeout: forever\n",
			[]string{`config.yaml line 2: shutdown_timeout: invalid duration "forever"`}},
		{"nested bad duration", "tokens:\n  access_token_lifespan: 5\n",
			[]string{`config.yaml line 2: tokens.access_token_lifespan: invalid duration "5"`}},
		{"duration as list", "janitor:\n  interval: [1h]\n",
			[]string{"config.yaml line 2: janitor.interval: must be a duration"}},
		{"bad number in a client", "clients:\n  - id: a\n    rate_limit: fast\n",
			[]string{`config.yaml line 3: clients[0].rate_limit: expected a number, got "fast"`}},
		{"bad bool", "insecure_http: maybe\n",
			[]string{`config.yaml line 1: insecure_http: expected true or false, got "maybe"`}},
		{"bad jwks", "clients:\n  - id: a\n    jwks: 5\n",
			[]string{"config.yaml line 3: clients[0].jwks: must be a JWK set"}},
		{"client not a mapping", "clients: [a]\n",
			[]string{`config.yaml line 1: clients[0]: expected a mapping, got "a"`}},
		{"top level not a mapping", "- a\n", []string{"config.yaml line 1: expected a mapping, got a list"}},
		{"duplicate key", "listen: a:1\nlisten: b:2\n", []string{"config.yaml line 2: mapping key \"listen\" already defined at line 1"}},
		{"syntax error", "log:\n  level: info\n format: json\n", []string{"config.yaml line 2: did not find expected key"}},
		{"second document", "listen: a:1\n---\nlisten: b:2\n", []string{"config.yaml line 3: a second YAML document is not allowed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("config.yaml", []byte(tt.src))
			if err == nil {
				t.Fatal("no error")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Errorf("got %d errors, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for _, w := range tt.want {
				if !containsPrefix(lines, w) {
					t.Errorf("no error line starts with %q:\n%v", w, err)
				}
			}
		})
	}
}

func containsPrefix(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// Marshalling a parsed File and parsing the result gives the same YAML
// again: every key, durations and jwks included, survives the trip.
func TestRoundTrip(t *testing.T) {
	for name, src := range map[string]string{"default": "", "full": fullYAML(t)} {
		t.Run(name, func(t *testing.T) {
			first, err := yaml.Marshal(parse(t, src))
			if err != nil {
				t.Fatal(err)
			}
			second, err := yaml.Marshal(parse(t, string(first)))
			if err != nil {
				t.Fatal(err)
			}
			if string(first) != string(second) {
				t.Errorf("round trip differs:\n%s\n---\n%s", first, second)
			}
			if !strings.Contains(string(first), "refresh_token_lifespan: 720h\n") {
				t.Errorf("durations should marshal short:\n%s", first)
			}
			if name == "full" && !strings.Contains(string(first), "crv: P-256") {
				t.Errorf("jwks should marshal as YAML:\n%s", first)
			}
		})
	}
}
