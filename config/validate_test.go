package config

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestValidateValid(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*File)
	}{
		{"full file", func(*File) {}},
		{"http on localhost", func(f *File) { f.Issuer = "http://localhost:8080" }},
		{"http on ::1", func(f *File) { f.Issuer = "http://[::1]:8080/latch" }},
		{"http on 127.0.0.0/8", func(f *File) { f.Issuer = "http://127.5.0.1" }},
		{"http elsewhere with insecure_http", func(f *File) { f.Issuer, f.InsecureHTTP = "http://latch.internal:8080", true }},
		{"http redirect URI to a remote host with insecure_http", func(f *File) {
			f.InsecureHTTP, f.Clients[0].RedirectURIs = true, []string{"http://app.internal/cb"}
		}},
		{"port 0", func(f *File) { f.Listen = "127.0.0.1:0" }},
		{"no tls", func(f *File) { f.TLS = TLS{} }},
		{"disabled janitor", func(f *File) { f.Janitor.Interval = Duration{} }},
		{"1s lifespans", func(f *File) { f.Tokens.AccessTokenLifespan = Duration{time.Second} }},
		{"token endpoint only client", func(f *File) { f.Clients[2].ResponseTypes = []string{} }},
		{"default auth method", func(f *File) { f.Clients[0].TokenEndpointAuthMethod = "" }},
		{"no lists", func(f *File) { f.Clients, f.Users, f.TrustedIssuers = nil, nil, nil }},
		{"token exchange with a policy", func(f *File) {
			f.Clients[0].GrantTypes = append(f.Clients[0].GrantTypes, "urn:ietf:params:oauth:grant-type:token-exchange")
			f.Clients[0].TokenExchange = &TokenExchange{Audiences: []string{"https://api.example.com"}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := parse(t, fullYAML(t))
			tt.mutate(&f)
			if err := f.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

// keyPath is how every Validate message must start.
var keyPath = regexp.MustCompile(`^[a-z_]+(\[\d+\])?(\.[a-z_]+(\[\d+\])?)*: `)

// TestValidateRules breaks one rule per case on the full valid file and
// expects exactly one error, starting with want.
func TestValidateRules(t *testing.T) {
	_, privateJWKS := testJWKS(t)
	tests := []struct {
		name   string
		mutate func(*File)
		want   string
	}{
		{"issuer relative", func(f *File) { f.Issuer = "auth.example.com" }, "issuer: must be an absolute http(s) URL"},
		{"issuer scheme", func(f *File) { f.Issuer = "ftp://auth.example.com" }, "issuer: must be an absolute http(s) URL"},
		{"issuer empty", func(f *File) { f.Issuer = "" }, "issuer: must be an absolute http(s) URL"},
		{"issuer query", func(f *File) { f.Issuer = "https://auth.example.com?x=1" }, "issuer: must not have a query or fragment"},
		{"issuer fragment", func(f *File) { f.Issuer = "https://auth.example.com#x" }, "issuer: must not have a query or fragment"},
		{"issuer user", func(f *File) { f.Issuer = "https://u:p@auth.example.com" }, "issuer: must not contain user information"},
		{"issuer trailing slash", func(f *File) { f.Issuer = "https://auth.example.com/" }, "issuer: must not end with a slash"},
		{"issuer http not loopback", func(f *File) { f.Issuer = "http://auth.example.com" }, "issuer: http is allowed only for a loopback host"},
		{"listen not host:port", func(f *File) { f.Listen = "8080" }, "listen: must be host:port"},
		{"listen bad port", func(f *File) { f.Listen = "127.0.0.1:99999" }, "listen: port must be a number"},
		{"tls cert only", func(f *File) { f.TLS.KeyFile = "" }, "tls.key_file: must be set"},
		{"tls key only", func(f *File) { f.TLS.CertFile = "" }, "tls.cert_file: must be set"},
		{"shutdown negative", func(f *File) { f.ShutdownTimeout = Duration{-time.Second} }, "shutdown_timeout: must be at least 0s"},
		{"log level", func(f *File) { f.Log.Level = "verbose" }, `log.level: must be one of debug | info | warn | error, got "verbose"`},
		{"log format", func(f *File) { f.Log.Format = "xml" }, "log.format: must be one of text | json"},
		{"janitor negative", func(f *File) { f.Janitor.Interval = Duration{-time.Minute} }, "janitor.interval: must be at least 0s"},
		{"driver", func(f *File) { f.Database.Driver = "mysql" }, "database.driver: must be one of sqlite | postgres"},
		{"dsn", func(f *File) { f.Database.DSN = "" }, "database.dsn: must not be empty"},
		{"system secret short", func(f *File) { f.Secrets.System = "short" }, "secrets.system: must be at least 32 bytes, got 5"},
		{"access lifespan", func(f *File) { f.Tokens.AccessTokenLifespan = Duration{500 * time.Millisecond} }, "tokens.access_token_lifespan: must be at least 1s, got 500ms"},
		{"refresh lifespan", func(f *File) { f.Tokens.RefreshTokenLifespan = Duration{} }, "tokens.refresh_token_lifespan: must be at least 1s"},
		{"code lifespan", func(f *File) { f.Tokens.AuthorizeCodeLifespan = Duration{} }, "tokens.authorize_code_lifespan: must be at least 1s"},
		{"id lifespan", func(f *File) { f.Tokens.IDTokenLifespan = Duration{} }, "tokens.id_token_lifespan: must be at least 1s"},
		{"device lifespan", func(f *File) { f.Tokens.DeviceCodeLifespan = Duration{-time.Second} }, "tokens.device_code_lifespan: must be at least 1s"},
		{"grace negative", func(f *File) { f.Tokens.RefreshTokenGracePeriod = Duration{-time.Second} }, "tokens.refresh_token_grace_period: must be at least 0s"},
		{"token format", func(f *File) { f.Tokens.AccessTokenFormat = "paseto" }, "tokens.access_token_format: must be one of opaque | jwt"},

		{"trusted issuer url", func(f *File) { f.TrustedIssuers[0].Issuer = "ci" }, "trusted_issuers[0].issuer: must be an absolute URL"},
		{"trusted no subject", func(f *File) { f.TrustedIssuers[0].Subject = "" }, "trusted_issuers[0]: set subject, or allow_any_subject: true"},
		{"trusted both subjects", func(f *File) { f.TrustedIssuers[1].Subject = "x" }, "trusted_issuers[1]: set only one of subject and allow_any_subject"},
		{"trusted no keys", func(f *File) { f.TrustedIssuers[1].JWKSFile = "" }, "trusted_issuers[1]: set jwks_file or jwks"},
		{"trusted both keys", func(f *File) { f.TrustedIssuers[0].JWKSFile = "k.json" }, "trusted_issuers[0]: set only one of jwks_file and jwks"},
		{"trusted jwks not JSON JWKS", func(f *File) { f.TrustedIssuers[0].JWKS = json.RawMessage(`{"keys": 1}`) }, "trusted_issuers[0].jwks: is not a JSON Web Key Set"},
		{"trusted jwks bad key", func(f *File) { f.TrustedIssuers[0].JWKS = json.RawMessage(`{"keys": [{"kty": "EC"}]}`) }, "trusted_issuers[0].jwks: is not a JSON Web Key Set"},
		{"trusted jwks empty", func(f *File) { f.TrustedIssuers[0].JWKS = json.RawMessage(`{"keys": []}`) }, "trusted_issuers[0].jwks: is not a JSON Web Key Set: no keys"},
		{"trusted jwks private", func(f *File) { f.TrustedIssuers[0].JWKS = json.RawMessage(privateJWKS) }, "trusted_issuers[0].jwks: keys[0] must be a public key"},
		{"trusted scope", func(f *File) { f.TrustedIssuers[0].Scopes = []string{"a b"} }, "trusted_issuers[0].scopes[0]: must be non-empty and without spaces"},
		{"trusted duplicate", func(f *File) { f.TrustedIssuers = append(f.TrustedIssuers, f.TrustedIssuers[0]) }, "trusted_issuers[2]: repeats the issuer and subject of trusted_issuers[0]"},

		{"client id empty", func(f *File) { f.Clients[1].ID = "" }, "clients[1].id: must not be empty"},
		{"client id long", func(f *File) { f.Clients[1].ID = strings.Repeat("x", 256) }, "clients[1].id: must be at most 255 characters"},
		{"client id duplicate", func(f *File) { f.Clients[1].ID = "my-app" }, `clients[1].id: "my-app" is already the id of clients[0]`},
		{"client no grant types", func(f *File) { f.Clients[2].GrantTypes = nil }, "clients[2].grant_types: must list at least one grant type"},
		{"client grant type", func(f *File) { f.Clients[0].GrantTypes[2] = "implicit" }, "clients[0].grant_types[2]: must be one of authorization_code | refresh_token | client_credentials"},
		{"client response type", func(f *File) { f.Clients[0].ResponseTypes = []string{"code", "token"} }, `clients[0].response_types[1]: must be one of code, got "token"`},
		{"client auth method", func(f *File) { f.Clients[0].TokenEndpointAuthMethod = "tls_client_auth" }, "clients[0].token_endpoint_auth_method: must be one of client_secret_basic | client_secret_post | client_secret_jwt | none | private_key_jwt"},
		{"client_secret_jwt with a short secret", func(f *File) { f.Clients[0].TokenEndpointAuthMethod = "client_secret_jwt" }, "clients[0].secret: must be at least 32 bytes for client_secret_jwt"},
		{"public client with secret", func(f *File) { f.Clients[1].Secret = "s" }, "clients[1].secret: must be empty for a public client"},
		{"basic without secret", func(f *File) { f.Clients[0].Secret, f.Clients[0].TokenEndpointAuthMethod = "", "" }, "clients[0].secret: must be set for token_endpoint_auth_method client_secret_basic"},
		{"post without secret", func(f *File) { f.Clients[0].Secret = "" }, "clients[0].secret: must be set for token_endpoint_auth_method client_secret_post"},
		{"private_key_jwt without jwks", func(f *File) { f.Clients[2].JWKS = nil }, "clients[2].jwks: must be set for token_endpoint_auth_method private_key_jwt"},
		{"private_key_jwt with secret", func(f *File) { f.Clients[2].Secret = "s" }, "clients[2].secret: must be empty with private_key_jwt"},
		{"client jwks invalid", func(f *File) { f.Clients[2].JWKS = json.RawMessage(`[]`) }, "clients[2].jwks: is not a JSON Web Key Set"},
		{"client_credentials for public client", func(f *File) { f.Clients[1].GrantTypes = append(f.Clients[1].GrantTypes, "client_credentials") }, "clients[1].grant_types[2]: client_credentials needs a confidential client"},
		{"code grant without redirect", func(f *File) { f.Clients[1].RedirectURIs = nil }, "clients[1].redirect_uris: the authorization_code grant needs at least one redirect URI"},
		{"code grant with response_types: []", func(f *File) { f.Clients[1].ResponseTypes = []string{} }, "clients[1].response_types: the authorization_code grant needs response type code"},
		{"code response without code grant", func(f *File) { f.Clients[2].ResponseTypes = []string{"code"} }, "clients[2].response_types: code needs the authorization_code grant"},
		{"redirect relative", func(f *File) { f.Clients[0].RedirectURIs = []string{"/callback"} }, "clients[0].redirect_uris[0]: must be an absolute URI"},
		{"redirect no host", func(f *File) { f.Clients[0].RedirectURIs = []string{"https:///cb"} }, "clients[0].redirect_uris[0]: must have a host"},
		{"redirect fragment", func(f *File) { f.Clients[0].RedirectURIs = []string{"https://app/cb#x"} }, "clients[0].redirect_uris[0]: must not have a fragment"},
		{"redirect javascript", func(f *File) { f.Clients[0].RedirectURIs = []string{"javascript:alert(1)"} }, "clients[0].redirect_uris[0]: must not use the javascript: scheme"},
		{"redirect http to a remote host", func(f *File) { f.Clients[0].RedirectURIs = []string{"http://app.example.com/cb"} }, "clients[0].redirect_uris[0]: must use https"},
		{"token exchange without a policy", func(f *File) {
			f.Clients[0].GrantTypes = append(f.Clients[0].GrantTypes, "urn:ietf:params:oauth:grant-type:token-exchange")
		}, "clients[0].token_exchange: must be set when grant_types lists"},
		{"token exchange policy without the grant", func(f *File) { f.Clients[0].TokenExchange = &TokenExchange{Impersonation: true} }, "clients[0].token_exchange: is set but grant_types does not list"},
		{"token exchange for a public client", func(f *File) {
			f.Clients[1].GrantTypes = append(f.Clients[1].GrantTypes, "urn:ietf:params:oauth:grant-type:token-exchange")
			f.Clients[1].TokenExchange = &TokenExchange{}
		}, "clients[1].grant_types: urn:ietf:params:oauth:grant-type:token-exchange needs a confidential client"},
		{"token exchange audience with a space", func(f *File) {
			f.Clients[0].GrantTypes = append(f.Clients[0].GrantTypes, "urn:ietf:params:oauth:grant-type:token-exchange")
			f.Clients[0].TokenExchange = &TokenExchange{Audiences: []string{"a b"}}
		}, "clients[0].token_exchange.audiences[0]: must be non-empty"},
		{"token exchange audience twice", func(f *File) {
			f.Clients[0].GrantTypes = append(f.Clients[0].GrantTypes, "urn:ietf:params:oauth:grant-type:token-exchange")
			f.Clients[0].TokenExchange = &TokenExchange{Audiences: []string{"a", "a"}}
		}, `clients[0].token_exchange.audiences[1]: "a" is listed twice`},
		{"registration token exchange grant", func(f *File) {
			f.Registration.AllowedGrantTypes = []string{"urn:ietf:params:oauth:grant-type:token-exchange"}
		}, "registration.allowed_grant_types[0]: token exchange is never open"},
		{"registration password grant", func(f *File) { f.Registration.AllowedGrantTypes = []string{"password"} }, "registration.allowed_grant_types[0]: the password grant is never open"},
		{"registration unknown grant", func(f *File) { f.Registration.InitialAccessPolicy.AllowedGrantTypes = []string{"implicit"} }, "registration.initial_access_policy.allowed_grant_types[0]: unknown grant type"},
		{"registration scope with a space", func(f *File) { f.Registration.AllowedScopes = []string{"a b"} }, "registration.allowed_scopes[0]: must be a scope token"},
		{"registration max_clients 0", func(f *File) { f.Registration.MaxClients = 0 }, "registration.max_clients: must be at least 1"},
		{"redirect duplicate", func(f *File) { f.Clients[0].RedirectURIs = []string{"https://app/cb", "https://app/cb"} }, `clients[0].redirect_uris[1]: "https://app/cb" is listed twice`},
		{"post logout relative", func(f *File) { f.Clients[0].PostLogoutRedirectURIs = []string{"bye"} }, "clients[0].post_logout_redirect_uris[0]: must be an absolute URI"},
		{"back-channel logout fragment", func(f *File) { f.Clients[0].BackchannelLogoutURI = "https://app/bc#x" }, "clients[0].backchannel_logout_uri: must not have a fragment"},
		{"back-channel logout remote http", func(f *File) { f.Clients[0].BackchannelLogoutURI = "http://app.example/bc" }, "clients[0].backchannel_logout_uri: must use https"},
		{"client scope", func(f *File) { f.Clients[0].Scopes = []string{""} }, "clients[0].scopes[0]: must be non-empty"},
		{"client audience", func(f *File) { f.Clients[0].Audience = []string{"a b"} }, "clients[0].audience[0]: must be non-empty"},
		{"client token format", func(f *File) { f.Clients[0].AccessTokenFormat = "JWT" }, "clients[0].access_token_format: must be one of opaque | jwt"},
		{"rate limit negative", func(f *File) { f.Clients[0].RateLimit = -1 }, "clients[0].rate_limit: must be a number >= 0"},
		{"rate limit NaN", func(f *File) { f.Clients[0].RateLimit = math.NaN() }, "clients[0].rate_limit: must be a number >= 0"},

		{"username empty", func(f *File) { f.Users[2].Username = "" }, "users[2].username: must not be empty"},
		{"username duplicate", func(f *File) { f.Users[2].Username = "alice" }, `users[2].username: "alice" is already the username of users[0]`},
		{"no password", func(f *File) { f.Users[0].Password = "" }, "users[0]: set password or password_hash"},
		{"both passwords", func(f *File) { f.Users[1].Password = "x" }, "users[1]: set only one of password and password_hash"},
		{"hash plain", func(f *File) { f.Users[1].PasswordHash = "secret" }, "users[1].password_hash: must be a bcrypt"},
		{"hash bcrypt truncated", func(f *File) { f.Users[1].PasswordHash = bcryptHash[:40] }, "users[1].password_hash: must be a bcrypt"},
		{"hash argon2i", func(f *File) { f.Users[2].PasswordHash = strings.Replace(argon2idHash, "argon2id", "argon2i", 1) }, "users[2].password_hash: must be a bcrypt"},
		{"hash argon2id bad base64", func(f *File) { f.Users[2].PasswordHash = argon2idHash[:len(argon2idHash)-1] + "A" + "A" }, "users[2].password_hash: must be a bcrypt"},
		{"email", func(f *File) { f.Users[0].Email = "alice.example.com" }, `users[0].email: must be an email address, got "alice.example.com"`},
		{"group", func(f *File) { f.Users[0].Groups = []string{""} }, "users[0].groups[0]: must be non-empty"},
		{"reserved claim", func(f *File) { f.Users[0].Claims["sub"] = "root" }, "users[0].claims.sub: is set by the server"},
		{"claim with its own key", func(f *File) { f.Users[0].Claims["email"] = "x@y" }, "users[0].claims.email: use the user's email key instead"},
		{"claim not JSON", func(f *File) { f.Users[0].Claims["x"] = map[any]any{1: 2} }, "users[0].claims: cannot be encoded as JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := parse(t, fullYAML(t))
			tt.mutate(&f)
			err := f.Validate()
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], tt.want) {
				t.Errorf("got\n%v\nwant exactly one error starting with\n%s", err, tt.want)
			}
			if !keyPath.MatchString(lines[0]) {
				t.Errorf("%q does not start with a key path", lines[0])
			}
		})
	}
}

func TestValidateCollectsEverything(t *testing.T) {
	f := Default()
	f.Issuer = "example.com"
	f.Log.Level = "loud"
	f.Tokens.IDTokenLifespan = Duration{}
	f.Clients = []Client{{Secret: "s", GrantTypes: []string{"authorization_code"}, ResponseTypes: []string{"code"},
		RedirectURIs: []string{"https://app/cb", "cb"}}}
	f.Users = []User{{Username: "a"}, {Username: "a", Password: "p", Email: "nope"}}

	err := f.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		"issuer: ", "log.level: ", "tokens.id_token_lifespan: ", "clients[0].id: ",
		"clients[0].redirect_uris[1]: ", "users[0]: ", "users[1].username: ", "users[1].password: ", "users[1].email: ",
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Errorf("got %d errors, want %d:\n%v", len(lines), len(want), err)
	}
	for i, w := range want {
		if i < len(lines) && !strings.HasPrefix(lines[i], w) {
			t.Errorf("error %d = %q, want it to start with %q", i, lines[i], w)
		}
	}
}

func TestKeySet(t *testing.T) {
	public, private := testJWKS(t)
	dir := t.TempDir()
	file := func(content string) string {
		path := filepath.Join(dir, fmt.Sprintf("jwks%d.json", len(content)))
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tests := []struct {
		name    string
		issuer  TrustedIssuer
		wantErr bool
	}{
		{"inline", TrustedIssuer{JWKS: json.RawMessage(public)}, false},
		{"file", TrustedIssuer{JWKSFile: file(public)}, false},
		{"missing file", TrustedIssuer{JWKSFile: filepath.Join(dir, "none.json")}, true},
		{"private key in file", TrustedIssuer{JWKSFile: file(private)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := tt.issuer.KeySet()
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && (len(set.Keys) != 1 || set.Keys[0].KeyID != "k1") {
				t.Errorf("unexpected set %+v", set)
			}
		})
	}
}

// TestValidateUsernameNotClientID: a user named like a client would share
// the subject of that client's client_credentials tokens.
func TestValidateUsernameNotClientID(t *testing.T) {
	f := parse(t, fullYAML(t))
	f.Users[1].Username = f.Clients[0].ID
	err := f.Validate()
	want := fmt.Sprintf("users[1].username: %q is the id of clients[0]; a username may not be a client id", f.Clients[0].ID)
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}
