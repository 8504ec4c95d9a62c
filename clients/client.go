// Package clients owns the OAuth 2.0 client model of Latch: the type fosite
// sees, its validation, secret generation and hashing, and the management
// operations shared by the CLI, the admin API and config seeding.
package clients

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"
)

// Token endpoint authentication methods (OIDC Core §9, RFC 7591).
const (
	AuthMethodBasic      = "client_secret_basic"
	AuthMethodPost       = "client_secret_post"
	AuthMethodNone       = "none"
	AuthMethodPrivateKey = "private_key_jwt"
	// AuthMethodSecretJWT is client_secret_jwt (RFC 7523 §2.2, OIDC Core
	// §9): a client assertion MACed with the client secret (HS256,
	// HS384 or HS512).
	AuthMethodSecretJWT = "client_secret_jwt"
)

// Grant types a client may list.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
	GrantDeviceCode        = "urn:ietf:params:oauth:grant-type:device_code"
	GrantJWTBearer         = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	GrantPassword          = "password"
	GrantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
)

// Client is a registered OAuth 2.0 client. SecretHash never holds a clear
// secret: see hash.go for the formats it may hold.
type Client struct {
	ID         string `json:"client_id"`
	Name       string `json:"client_name,omitempty"`
	SecretHash string `json:"-"`
	// JWTSecret is the clear secret of a client_secret_jwt client, ""
	// for every other method: an HMAC client assertion is verified with
	// the secret itself, which a hash cannot give back. The store keeps
	// it encrypted at rest under secrets.system (storage/sealed.go).
	JWTSecret string `json:"-"`
	// RegistrationTokenHash is the SHA-256 (hex) of the RFC 7592
	// registration access token of a dynamically registered client.
	RegistrationTokenHash string `json:"-"`
	// RegistrationPolicy names the registration policy a dynamically
	// registered client was registered under ("" the open one,
	// "initial_access" the initial access token's); RFC 7592 updates keep
	// to it.
	RegistrationPolicy     string   `json:"registration_policy,omitempty"`
	RedirectURIs           []string `json:"redirect_uris"`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
	GrantTypes             []string `json:"grant_types"`
	ResponseTypes          []string `json:"response_types"`
	Scopes                 []string `json:"scopes"`
	// PrivateScopes are scopes of Scopes that discovery's scopes_supported
	// does not list (an internal API's, say); the client may still ask
	// for them.
	PrivateScopes           []string            `json:"private_scopes,omitempty"`
	Audience                []string            `json:"audience"`
	TokenEndpointAuthMethod string              `json:"token_endpoint_auth_method"`
	JWKS                    *jose.JSONWebKeySet `json:"jwks,omitempty"`
	AccessTokenFormat       string              `json:"access_token_format,omitempty"`
	RateLimit               float64             `json:"rate_limit,omitempty"`
	SkipConsent             bool                `json:"skip_consent,omitempty"`
	// RequireMFA asks everyone who signs in to this client for a second
	// factor.
	RequireMFA bool `json:"require_mfa,omitempty"`
	// RequireSignedRequestObject refuses the client's authorization
	// requests unless they come as a signed request object (RFC 9101
	// §10.5), by value or pushed (PAR).
	RequireSignedRequestObject bool `json:"require_signed_request_object,omitempty"`
	// DPoPBoundAccessTokens refuses this client's token requests that
	// carry no DPoP proof (RFC 9449 §5.2).
	DPoPBoundAccessTokens bool `json:"dpop_bound_access_tokens,omitempty"`
	// BackchannelLogoutURI is where a logout token is POSTed when a login
	// session this client took part in ends (OIDC Back-Channel Logout 1.0
	// §2.2); empty: the client is not told.
	BackchannelLogoutURI string `json:"backchannel_logout_uri,omitempty"`
	// BackchannelLogoutSessionRequired says the client needs sid in its
	// logout tokens (and ID tokens); Latch always sends it, so this only
	// records what the client registered.
	BackchannelLogoutSessionRequired bool `json:"backchannel_logout_session_required,omitempty"`
	// TokenExchange is what the client may do with the token exchange
	// grant (RFC 8693); set exactly when GrantTypes lists it.
	TokenExchange *TokenExchangePolicy `json:"token_exchange,omitempty"`
	CreatedAt     time.Time            `json:"created_at"`
	UpdatedAt     time.Time            `json:"updated_at"`
}

// TokenExchangePolicy bounds a client's token exchanges (RFC 8693 leaves
// the policy to the server, §2.1 and §5).
type TokenExchangePolicy struct {
	// Audiences are the targets (audience or resource values) the client
	// may ask an exchanged token for; a token for anything else is
	// invalid_target.
	Audiences []string `json:"audiences"`
	// Impersonation allows an exchange without an actor_token: the new
	// token is the subject's alone, with no trace of the client acting.
	// Without it the client may only delegate (the token carries act).
	Impersonation bool `json:"impersonation,omitempty"`
	// RefreshTokens allows requested_token_type refresh_token: a
	// long-lived credential, so never by default.
	RefreshTokens bool `json:"refresh_tokens,omitempty"`
}

var (
	_ fosite.Client              = (*Client)(nil)
	_ fosite.OpenIDConnectClient = (*Client)(nil)
	_ fosite.ResponseModeClient  = (*Client)(nil)
)

func (c *Client) GetID() string                   { return c.ID }
func (c *Client) GetHashedSecret() []byte         { return []byte(c.SecretHash) }
func (c *Client) GetRedirectURIs() []string       { return c.RedirectURIs }
func (c *Client) GetGrantTypes() fosite.Arguments { return c.GrantTypes }
func (c *Client) GetScopes() fosite.Arguments     { return c.Scopes }
func (c *Client) GetAudience() fosite.Arguments   { return c.Audience }

// Clone returns a copy of c that shares nothing mutable with it but the
// key set, which nothing changes in place.
func (c *Client) Clone() *Client {
	cp := *c
	for _, s := range []*[]string{&cp.RedirectURIs, &cp.PostLogoutRedirectURIs, &cp.GrantTypes, &cp.ResponseTypes, &cp.Scopes, &cp.PrivateScopes, &cp.Audience} {
		if *s != nil {
			*s = append([]string{}, *s...)
		}
	}
	if c.TokenExchange != nil {
		te := *c.TokenExchange
		te.Audiences = append([]string{}, te.Audiences...)
		cp.TokenExchange = &te
	}
	return &cp
}

// GetRateLimit is the client's token requests per second (0: unlimited).
func (c *Client) GetRateLimit() float64 { return c.RateLimit }

// GetResponseTypes returns the registered response types; an empty list
// means the client only uses the token endpoint, so nothing is allowed at
// the authorization endpoint (fosite's DefaultClient would assume "code").
func (c *Client) GetResponseTypes() fosite.Arguments { return c.ResponseTypes }

// IsPublic reports whether the client has no secret: SPEC ties public-ness
// to token_endpoint_auth_method none and nothing else.
func (c *Client) IsPublic() bool { return c.TokenEndpointAuthMethod == AuthMethodNone }

func (c *Client) GetRequestURIs() []string                 { return nil }
func (c *Client) GetJSONWebKeysURI() string                { return "" }
func (c *Client) GetRequestObjectSigningAlgorithm() string { return "" }

// GetJSONWebKeys returns the registered keys, a key without "use" marked
// as a signing key: RFC 7517 makes "use" optional, and fosite verifies a
// private_key_jwt client assertion only with keys marked use=sig.
func (c *Client) GetJSONWebKeys() *jose.JSONWebKeySet {
	if c.JWKS == nil {
		return nil
	}
	set := &jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, len(c.JWKS.Keys))}
	for i, k := range c.JWKS.Keys {
		if k.Use == "" {
			k.Use = "sig"
		}
		set.Keys[i] = k
	}
	return set
}

// GetTokenEndpointAuthSigningAlgorithm is the one "alg" fosite accepts in
// a private_key_jwt client assertion: that of the client's first signing
// key, its "alg" or else the one its type implies (RS256 for RSA, ES256,
// ES384 or ES512 for P-256, P-384 or P-521); RS256 without keys.
func (c *Client) GetTokenEndpointAuthSigningAlgorithm() string {
	if c.TokenEndpointAuthMethod != AuthMethodPrivateKey {
		return ""
	}
	if c.JWKS != nil {
		for _, k := range c.JWKS.Keys {
			if k.Use != "" && k.Use != "sig" {
				continue
			}
			if k.Algorithm != "" {
				return k.Algorithm
			}
			switch key := k.Public().Key.(type) {
			case *rsa.PublicKey:
				return "RS256"
			case *ecdsa.PublicKey:
				switch key.Curve.Params().Name {
				case "P-256":
					return "ES256"
				case "P-384":
					return "ES384"
				case "P-521":
					return "ES512"
				}
			}
		}
	}
	return "RS256"
}

// GetTokenEndpointAuthMethod defaults to client_secret_basic as RFC 7591 §2 does.
func (c *Client) GetTokenEndpointAuthMethod() string {
	if c.TokenEndpointAuthMethod == "" {
		return AuthMethodBasic
	}
	return c.TokenEndpointAuthMethod
}

// GetResponseModes allows query, fragment and form_post: the authorization
// endpoint still enforces per-response-type rules.
func (c *Client) GetResponseModes() []fosite.ResponseModeType {
	return []fosite.ResponseModeType{fosite.ResponseModeDefault, fosite.ResponseModeQuery, fosite.ResponseModeFragment, fosite.ResponseModeFormPost}
}
