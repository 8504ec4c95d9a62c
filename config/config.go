// Package config owns the config.yaml schema of Latch: the File type with the
// built-in defaults, strict YAML decoding (an unknown key or a wrong type is an
// error that names the key and its line), the LATCH_* environment overrides,
// and Validate, which reports every problem of a file at once.
//
// It is deliberately separate from the server's runtime configuration: the
// command line turns a validated File into server.Config, so the server never
// sees YAML, environment variables or unvalidated values.
//
// Precedence, lowest first: Default, the YAML file (Load), the environment
// (ApplyEnv), then command-line flags set by the caller; Validate runs last.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// File is the whole config.yaml. Every key of the specification has a field;
// the yaml tags are the keys, and LATCH_* variable names derive from them.
type File struct {
	Issuer string `yaml:"issuer"`
	// IssuerSet is whether the issuer was configured (in the file, by
	// LATCH_ISSUER or by a flag) rather than left at its default. Only
	// a default issuer may follow the address serve actually listens on:
	// a configured one is the public URL and never changes behind the
	// user's back.
	IssuerSet       bool            `yaml:"-"`
	Listen          string          `yaml:"listen"`
	InsecureHTTP    bool            `yaml:"insecure_http"`
	TLS             TLS             `yaml:"tls"`
	ShutdownTimeout Duration        `yaml:"shutdown_timeout"`
	Log             Log             `yaml:"log"`
	Janitor         Janitor         `yaml:"janitor"`
	Database        Database        `yaml:"database"`
	Secrets         Secrets         `yaml:"secrets"`
	Admin           Admin           `yaml:"admin"`
	Tokens          Tokens          `yaml:"tokens"`
	Registration    Registration    `yaml:"registration"`
	MFA             MFA             `yaml:"mfa"`
	Login           Login           `yaml:"login"`
	TrustedIssuers  []TrustedIssuer `yaml:"trusted_issuers"`
	// TrustedProxies are the CIDRs of reverse proxies whose
	// X-Forwarded-For and Forwarded headers are believed; a request from
	// any other address is known by its own address only.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// Connectors are the upstream identity providers (connectors.go).
	Connectors []Connector `yaml:"connectors"`
	Clients    []Client    `yaml:"clients"`
	Users      []User      `yaml:"users"`
}

// MFA is the second-factor policy of built-in users.
type MFA struct {
	// Required asks every user for a second factor; one without any is
	// shown the enrolment page after the password.
	Required bool `yaml:"required"`
}

// TLS makes the server listen with HTTPS when both files are set.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Log selects the slog handler.
type Log struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // text | json
}

// Janitor is the background clean-up of expired rows; Interval 0 disables it.
type Janitor struct {
	Interval Duration `yaml:"interval"`
}

// Database selects the storage backend.
type Database struct {
	Driver string `yaml:"driver"` // sqlite | postgres
	DSN    string `yaml:"dsn"`
}

// Secrets holds the system secret; empty means generated once and stored in
// the database.
type Secrets struct {
	System string `yaml:"system"`
}

// Admin holds the bearer token of the admin API; empty turns the API off.
type Admin struct {
	Token string `yaml:"token"`
}

// Tokens are the lifespans and formats of issued tokens.
type Tokens struct {
	AccessTokenLifespan     Duration `yaml:"access_token_lifespan"`
	RefreshTokenLifespan    Duration `yaml:"refresh_token_lifespan"`
	AuthorizeCodeLifespan   Duration `yaml:"authorize_code_lifespan"`
	IDTokenLifespan         Duration `yaml:"id_token_lifespan"`
	DeviceCodeLifespan      Duration `yaml:"device_code_lifespan"`
	AccessTokenFormat       string   `yaml:"access_token_format"` // opaque | jwt
	DPoPRequireNonce        bool     `yaml:"dpop_require_nonce"`  // RFC 9449 §8
	RefreshTokenRotation    bool     `yaml:"refresh_token_rotation"`
	RefreshTokenGracePeriod Duration `yaml:"refresh_token_grace_period"`
	// IDTokenSigningAlg is the algorithm of keys generated from now on:
	// RS256 or ES256. Not in SPEC's schema; Latch's addition.
	IDTokenSigningAlg string `yaml:"id_token_signing_alg"`
}

// Registration is RFC 7591 dynamic client registration and its policy:
// what a client that registers itself may ask for.
type Registration struct {
	Enabled            bool   `yaml:"enabled"`
	InitialAccessToken string `yaml:"initial_access_token"`
	// AllowedScopes and AllowedGrantTypes bound what a registered client
	// may list; a registration asking for more is refused.
	AllowedScopes     []string `yaml:"allowed_scopes"`
	AllowedGrantTypes []string `yaml:"allowed_grant_types"`
	// MaxClients bounds how many registered clients exist at once.
	MaxClients int `yaml:"max_clients"`
	// PerAddressPerHour bounds the registrations one caller address (an
	// IPv6 /64) makes in an hour; 0 turns the bound off.
	PerAddressPerHour int `yaml:"per_address_per_hour"`
	// InitialAccessPolicy is the policy of registrations that present
	// initial_access_token; an empty list there means the list above.
	InitialAccessPolicy RegistrationPolicy `yaml:"initial_access_policy"`
}

// RegistrationPolicy is what registrations with the initial access token
// may ask for. Latch's addition to SPEC's schema.
type RegistrationPolicy struct {
	AllowedScopes     []string `yaml:"allowed_scopes"`
	AllowedGrantTypes []string `yaml:"allowed_grant_types"`
}

// TrustedIssuer is one RFC 7523 trust relationship for the JWT bearer grant.
// Its keys come from exactly one of JWKSFile and JWKS.
type TrustedIssuer struct {
	Issuer          string          `yaml:"issuer"`
	Subject         string          `yaml:"subject"`
	AllowAnySubject bool            `yaml:"allow_any_subject"`
	JWKSFile        string          `yaml:"jwks_file"`
	JWKS            json.RawMessage `yaml:"jwks"` // a JWK set written as YAML, held as JSON
	Scopes          []string        `yaml:"scopes"`
}

// Client is a client declared in the file and upserted at start-up.
type Client struct {
	ID                      string          `yaml:"id"`
	Secret                  string          `yaml:"secret"` // plaintext; hashed before it is stored
	Name                    string          `yaml:"name"`
	RedirectURIs            []string        `yaml:"redirect_uris"`
	PostLogoutRedirectURIs  []string        `yaml:"post_logout_redirect_uris"`
	GrantTypes              []string        `yaml:"grant_types"`
	ResponseTypes           []string        `yaml:"response_types"`
	Scopes                  []string        `yaml:"scopes"`
	PrivateScopes           []string        `yaml:"private_scopes"` // not listed in discovery
	Audience                []string        `yaml:"audience"`
	TokenEndpointAuthMethod string          `yaml:"token_endpoint_auth_method"`
	JWKS                    json.RawMessage `yaml:"jwks"` // nil, or a JWK set written as YAML, held as JSON
	AccessTokenFormat       string          `yaml:"access_token_format"`
	RateLimit               float64         `yaml:"rate_limit"`
	SkipConsent             bool            `yaml:"skip_consent"`
	RequireMFA              bool            `yaml:"require_mfa"`
	// RequireSignedRequestObject: authorization requests only as a
	// signed request object (RFC 9101).
	RequireSignedRequestObject bool `yaml:"require_signed_request_object"`
	DPoPBoundAccessTokens      bool `yaml:"dpop_bound_access_tokens"` // RFC 9449 §5.2
	// BackchannelLogoutURI receives logout tokens (OIDC Back-Channel
	// Logout 1.0); BackchannelLogoutSessionRequired is the client's
	// registered wish for sid, which Latch always sends.
	BackchannelLogoutURI             string `yaml:"backchannel_logout_uri"`
	BackchannelLogoutSessionRequired bool   `yaml:"backchannel_logout_session_required"`
	// TokenExchange is the client's RFC 8693 policy; required when
	// grant_types lists the token exchange grant.
	TokenExchange *TokenExchange `yaml:"token_exchange"`
}

// TokenExchange is a client's token exchange policy (RFC 8693).
type TokenExchange struct {
	Audiences     []string `yaml:"audiences"`      // targets the client may request
	Impersonation bool     `yaml:"impersonation"`  // exchange without an actor_token
	RefreshTokens bool     `yaml:"refresh_tokens"` // requested_token_type refresh_token
}

// User is a user declared in the file and upserted at start-up. Exactly one
// of Password (plaintext, hashed before it is stored) and PasswordHash is set.
type User struct {
	Username      string         `yaml:"username"`
	Password      string         `yaml:"password"`
	PasswordHash  string         `yaml:"password_hash"`
	Email         string         `yaml:"email"`
	EmailVerified bool           `yaml:"email_verified"`
	Name          string         `yaml:"name"`
	Groups        []string       `yaml:"groups"`
	Claims        map[string]any `yaml:"claims"`
}

// Duration is a time.Duration written in YAML as a Go duration string
// ("1h", "10m", "1s", "0s"; a bare 0 also works).
type Duration struct{ time.Duration }

// UnmarshalYAML parses a Go duration string. Its errors carry the node's
// position so that Load can name the key.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return positioned(n, "must be a duration such as 30s, 10m or 1h")
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return positioned(n, fmt.Sprintf("invalid duration %q (use e.g. 30s, 10m, 1h)", n.Value))
	}
	d.Duration = v
	return nil
}

// MarshalYAML writes the shortest Go duration string ("1h", not "1h0m0s").
func (d Duration) MarshalYAML() (any, error) {
	return d.String(), nil
}

// String is time.Duration's String without the trailing zero units.
func (d Duration) String() string {
	s := d.Duration.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// Default returns the built-in defaults of the specification: what
// `latch serve` runs with when there is no config file, no variable and no
// flag. It declares no clients, users or trusted issuers.
func Default() File {
	return File{
		Issuer:          "http://127.0.0.1:8080",
		Listen:          "127.0.0.1:8080",
		ShutdownTimeout: Duration{15 * time.Second},
		Log:             Log{Level: "info", Format: "text"},
		Janitor:         Janitor{Interval: Duration{5 * time.Minute}},
		Database:        Database{Driver: "sqlite", DSN: "latch.db"},
		Login:           Login{PasswordForm: true},
		Tokens: Tokens{
			AccessTokenLifespan:   Duration{time.Hour},
			RefreshTokenLifespan:  Duration{720 * time.Hour},
			AuthorizeCodeLifespan: Duration{10 * time.Minute},
			IDTokenLifespan:       Duration{time.Hour},
			DeviceCodeLifespan:    Duration{10 * time.Minute},
			AccessTokenFormat:     "opaque",
			IDTokenSigningAlg:     "RS256",
			RefreshTokenRotation:  true,
		},
		Registration: Registration{
			AllowedScopes:     []string{"openid", "profile", "email", "offline_access"},
			AllowedGrantTypes: []string{"authorization_code", "refresh_token"},
			MaxClients:        1000,
			PerAddressPerHour: 20,
		},
	}
}

// Load returns Default with the YAML file at path decoded on top of it.
// Keys absent from the file keep their defaults; relative file paths
// (database.dsn for SQLite, tls files, trusted_issuers[].jwks_file) are
// resolved against the file's folder. It does not validate.
func Load(path string) (File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return File{}, err
	}
	f, err := Parse(path, data)
	if err != nil {
		return File{}, err
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return File{}, err
	}
	f.resolvePaths(dir)
	return f, nil
}

// LoadDefault is Load for a path the user did not ask for explicitly: a
// missing file yields Default and no error. Any other failure is an error.
func LoadDefault(path string) (File, error) {
	f, err := Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Default(), nil
	}
	return f, err
}

// Parse decodes data, the contents of the file called name, on top of
// Default. Decoding is strict: an unknown key, a wrong type or a second YAML
// document is an error; every such error starts with name and the line.
// An empty document yields Default.
func Parse(name string, data []byte) (File, error) {
	f := Default()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return f, nil
		}
		return File{}, explain(name, data, err)
	}
	var declared struct {
		Issuer *string `yaml:"issuer"`
	}
	_ = yaml.Unmarshal(data, &declared) // it decoded strictly above
	f.IssuerSet = declared.Issuer != nil && *declared.Issuer != ""
	// Further documents are almost always a paste mistake; allow only empty ones.
	for {
		var extra yaml.Node
		err := dec.Decode(&extra)
		switch {
		case errors.Is(err, io.EOF):
			return f, nil
		case err != nil:
			return File{}, explain(name, data, err)
		case len(extra.Content) > 0 && extra.Content[0].ShortTag() != "!!null":
			return File{}, fmt.Errorf("%s line %d: a second YAML document is not allowed", name, extra.Content[0].Line)
		}
	}
}
