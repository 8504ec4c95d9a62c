package config

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"

	jose "github.com/go-jose/go-jose/v3"

	"github.com/latchauth/latch/passhash"
)

// The grant types and token endpoint auth methods a client may use; the
// clients package has the same lists for clients managed at run time.
const (
	grantAuthorizationCode = "authorization_code"
	grantRefreshToken      = "refresh_token"
	grantClientCredentials = "client_credentials"
	grantDeviceCode        = "urn:ietf:params:oauth:grant-type:device_code"
	grantJWTBearer         = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	grantPassword          = "password"

	authSecretBasic   = "client_secret_basic"
	authSecretPost    = "client_secret_post"
	authNone          = "none"
	authPrivateKeyJWT = "private_key_jwt"
)

var grantTypes = []string{grantAuthorizationCode, grantRefreshToken, grantClientCredentials, grantDeviceCode, grantJWTBearer, grantPassword}

// AuthMethod is the client's token endpoint auth method, with the default
// (client_secret_basic) filled in.
func (c Client) AuthMethod() string {
	if c.TokenEndpointAuthMethod == "" {
		return authSecretBasic
	}
	return c.TokenEndpointAuthMethod
}

func (p *problems) clients(list []Client) {
	seen := map[string]int{}
	for i, c := range list {
		key := fmt.Sprintf("clients[%d]", i)
		if c.ID == "" {
			p.add(key+".id", "must not be empty")
		} else if len(c.ID) > 255 {
			p.add(key+".id", "must be at most 255 characters")
		} else if j, dup := seen[c.ID]; dup {
			p.add(key+".id", "%q is already the id of clients[%d]", c.ID, j)
		} else {
			seen[c.ID] = i
		}

		method := c.AuthMethod()
		switch method {
		case authNone:
			if c.Secret != "" {
				p.add(key+".secret", "must be empty for a public client (token_endpoint_auth_method: none)")
			}
		case authSecretBasic, authSecretPost:
			if c.Secret == "" {
				p.add(key+".secret", "must be set for token_endpoint_auth_method %s; a client without a secret uses none", method)
			}
		case authPrivateKeyJWT:
			if len(c.JWKS) == 0 {
				p.add(key+".jwks", "must be set for token_endpoint_auth_method private_key_jwt")
			}
			if c.Secret != "" {
				p.add(key+".secret", "must be empty with private_key_jwt; the client authenticates with its keys")
			}
		default:
			p.oneOf(key+".token_endpoint_auth_method", method, authSecretBasic, authSecretPost, authNone, authPrivateKeyJWT)
		}
		if len(c.JWKS) > 0 {
			p.jwks(key+".jwks", c.JWKS)
		}

		if len(c.GrantTypes) == 0 {
			p.add(key+".grant_types", "must list at least one grant type")
		}
		var codeGrant, codeResponse bool
		for j, g := range c.GrantTypes {
			gkey := fmt.Sprintf("%s.grant_types[%d]", key, j)
			p.oneOf(gkey, g, grantTypes...)
			codeGrant = codeGrant || g == grantAuthorizationCode
			if g == grantClientCredentials && method == authNone {
				p.add(gkey, "client_credentials needs a confidential client, not token_endpoint_auth_method none")
			}
		}
		for j, r := range c.ResponseTypes {
			p.oneOf(fmt.Sprintf("%s.response_types[%d]", key, j), r, "code")
			codeResponse = codeResponse || r == "code"
		}
		switch {
		case codeGrant && len(c.RedirectURIs) == 0:
			p.add(key+".redirect_uris", "the authorization_code grant needs at least one redirect URI")
		case codeGrant && !codeResponse:
			p.add(key+".response_types", "the authorization_code grant needs response type code")
		case !codeGrant && codeResponse:
			p.add(key+".response_types", "code needs the authorization_code grant in grant_types")
		}
		p.uris(key+".redirect_uris", c.RedirectURIs)
		p.uris(key+".post_logout_redirect_uris", c.PostLogoutRedirectURIs)
		p.words(key+".scopes", c.Scopes)
		p.words(key+".audience", c.Audience)
		if c.AccessTokenFormat != "" {
			p.oneOf(key+".access_token_format", c.AccessTokenFormat, "opaque", "jwt")
		}
		if !(c.RateLimit >= 0) || math.IsInf(c.RateLimit, 0) {
			p.add(key+".rate_limit", "must be a number >= 0 (0 is unlimited), got %v", c.RateLimit)
		}
	}
}

// uris checks redirect URIs, which are matched exactly, so they must be
// complete and distinct.
func (p *problems) uris(key string, list []string) {
	seen := map[string]bool{}
	for j, s := range list {
		ukey := fmt.Sprintf("%s[%d]", key, j)
		if !absoluteURL(s) || strings.Contains(s, "#") {
			p.add(ukey, "must be an absolute URL without fragment, got %q", s)
		} else if seen[s] {
			p.add(ukey, "%q is listed twice", s)
		}
		seen[s] = true
	}
}

// reservedClaims are set by the server; a config claim must not forge them.
var reservedClaims = map[string]string{
	"iss": "", "sub": "", "aud": "", "exp": "", "iat": "", "nbf": "", "jti": "",
	"auth_time": "", "nonce": "", "acr": "", "amr": "", "azp": "", "at_hash": "",
	"c_hash": "", "sid": "", "scope": "", "client_id": "",
	"email": "email", "email_verified": "email_verified", "name": "name",
	"groups": "groups", "preferred_username": "username",
}

func (p *problems) users(list []User) {
	seen := map[string]int{}
	for i, u := range list {
		key := fmt.Sprintf("users[%d]", i)
		if u.Username == "" {
			p.add(key+".username", "must not be empty")
		} else if j, dup := seen[u.Username]; dup {
			p.add(key+".username", "%q is already the username of users[%d]", u.Username, j)
		} else {
			seen[u.Username] = i
		}
		switch {
		case u.Password == "" && u.PasswordHash == "":
			p.add(key, "set password or password_hash")
		case u.Password != "" && u.PasswordHash != "":
			p.add(key, "set only one of password and password_hash")
		case u.PasswordHash != "" && !isPasswordHash(u.PasswordHash):
			p.add(key+".password_hash", "must be a bcrypt ($2a$, $2b$, $2y$) or argon2id ($argon2id$) hash")
		}
		if u.Email != "" {
			at := strings.LastIndex(u.Email, "@")
			if at < 1 || at == len(u.Email)-1 || strings.ContainsAny(u.Email, " \t\r\n") {
				p.add(key+".email", "must be an email address, got %q", u.Email)
			}
		}
		p.words(key+".groups", u.Groups)
		for name := range u.Claims {
			if use, ok := reservedClaims[name]; ok && use != "" {
				p.add(key+".claims."+name, "use the user's %s key instead", use)
			} else if ok {
				p.add(key+".claims."+name, "is set by the server and cannot be a custom claim")
			}
		}
		if _, err := json.Marshal(u.Claims); err != nil {
			p.add(key+".claims", "cannot be encoded as JSON: %v", err)
		}
	}
}

// isPasswordHash accepts exactly the hashes passhash can verify (bcrypt,
// argon2id), so a password_hash that could never match is refused at load.
func isPasswordHash(h string) bool { return passhash.IsHash(h) }

// jwksProblems accepts a JSON Web Key Set of valid public keys only: a
// private key in a config file is a leak, and a symmetric one cannot verify
// an asymmetric signature.
func jwksProblems(raw json.RawMessage) []string {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		return []string{fmt.Sprintf("is not a JSON Web Key Set: %v", err)}
	}
	if len(set.Keys) == 0 {
		return []string{"is not a JSON Web Key Set: no keys"}
	}
	var out []string
	for j, k := range set.Keys {
		switch {
		case !k.Valid():
			out = append(out, fmt.Sprintf("keys[%d] is not a valid key", j))
		case !k.IsPublic():
			out = append(out, fmt.Sprintf("keys[%d] must be a public key", j))
		}
	}
	return out
}

func (p *problems) jwks(key string, raw json.RawMessage) {
	for _, msg := range jwksProblems(raw) {
		p.add(key, "%s", msg)
	}
}

// KeySet returns the issuer's keys, from jwks or by reading jwks_file (a
// path relative to the working directory, like database.dsn).
func (t TrustedIssuer) KeySet() (*jose.JSONWebKeySet, error) {
	raw := t.JWKS
	if t.JWKSFile != "" {
		b, err := os.ReadFile(t.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("trusted issuer %s: %w", t.Issuer, err)
		}
		raw = b
	}
	if msgs := jwksProblems(raw); len(msgs) > 0 {
		return nil, fmt.Errorf("trusted issuer %s: jwks %s", t.Issuer, strings.Join(msgs, "; "))
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, err
	}
	return &set, nil
}
