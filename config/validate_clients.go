package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	jose "github.com/go-jose/go-jose/v3"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/passhash"
)

// AuthMethod is the client's token endpoint auth method, with the default
// (client_secret_basic) filled in.
func (c Client) AuthMethod() string {
	if c.TokenEndpointAuthMethod == "" {
		return clients.AuthMethodBasic
	}
	return c.TokenEndpointAuthMethod
}

// Model is the client as Latch stores it, with clients.Defaults applied so
// that Validate judges what will be stored, without its secret (the caller
// hashes Secret: clients.Manager.Seed).
func (c Client) Model() (*clients.Client, error) {
	m := &clients.Client{
		ID:                         c.ID,
		Name:                       c.Name,
		RedirectURIs:               c.RedirectURIs,
		PostLogoutRedirectURIs:     c.PostLogoutRedirectURIs,
		GrantTypes:                 c.GrantTypes,
		ResponseTypes:              c.ResponseTypes,
		Scopes:                     c.Scopes,
		PrivateScopes:              c.PrivateScopes,
		Audience:                   c.Audience,
		TokenEndpointAuthMethod:    c.AuthMethod(),
		AccessTokenFormat:          c.AccessTokenFormat,
		RateLimit:                  c.RateLimit,
		SkipConsent:                c.SkipConsent,
		RequireMFA:                 c.RequireMFA,
		RequireSignedRequestObject: c.RequireSignedRequestObject,
		DPoPBoundAccessTokens:      c.DPoPBoundAccessTokens,

		BackchannelLogoutURI:             c.BackchannelLogoutURI,
		BackchannelLogoutSessionRequired: c.BackchannelLogoutSessionRequired,
	}
	if te := c.TokenExchange; te != nil {
		m.TokenExchange = &clients.TokenExchangePolicy{Audiences: te.Audiences, Impersonation: te.Impersonation, RefreshTokens: te.RefreshTokens}
	}
	clients.Defaults(m)
	if len(c.JWKS) > 0 && string(c.JWKS) != "null" {
		m.JWKS = new(jose.JSONWebKeySet)
		if err := json.Unmarshal(c.JWKS, m.JWKS); err != nil {
			return nil, fmt.Errorf("client %s: jwks: %w", c.ID, err)
		}
	}
	return m, nil
}

// clients checks each client with the client rules every path
// that creates a client shares, plus what only a file can get wrong:
// duplicate ids, and a JWK set that holds private keys.
func (p *problems) clients(list []Client, rules clients.Rules) {
	seen := map[string]int{}
	for i, c := range list {
		key := fmt.Sprintf("clients[%d]", i)
		if j, dup := seen[c.ID]; dup && c.ID != "" {
			p.add(key+".id", "%q is already the id of clients[%d]", c.ID, j)
		} else {
			seen[c.ID] = i
		}
		if len(c.JWKS) > 0 {
			p.jwks(key+".jwks", c.JWKS)
		}
		m, err := c.Model()
		if err != nil {
			continue // the jwks problem is reported above
		}
		if c.Secret != "" {
			// A well-formed stand-in: the rules only ask whether there is one.
			m.SetSecret(c.Secret, clients.HashGenerated(c.Secret))
		}
		var invalid clients.ValidationError
		if errors.As(rules.Validate(m), &invalid) {
			for _, fe := range invalid {
				p.add(key+"."+fe.Field, "%s", fe.Reason)
			}
		}
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

// usernamesNotClientIDs: a client_credentials token's subject is its
// client id, so a user named like a client would share that subject with
// it at every resource server that reads sub.
func (p *problems) usernamesNotClientIDs(f File) {
	ids := map[string]int{}
	for i, c := range f.Clients {
		ids[c.ID] = i
	}
	for i, u := range f.Users {
		if j, clash := ids[u.Username]; clash && u.Username != "" {
			p.add(fmt.Sprintf("users[%d].username", i), "%q is the id of clients[%d]; a username may not be a client id", u.Username, j)
		}
	}
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
		case u.Password != "":
			if err := passhash.CheckPassword(u.Password); err != nil {
				p.add(key+".password", "%v", err)
			}
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

// KeySet returns the issuer's keys, from jwks or by reading jwks_file
// (Load has made a relative path relative to the config file's folder).
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
