package clients

import (
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
)

var knownGrants = []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials, GrantDeviceCode, GrantJWTBearer, GrantPassword}

var knownAuthMethods = []string{AuthMethodBasic, AuthMethodPost, AuthMethodNone, AuthMethodPrivateKey}

// FieldError is one problem of a client, naming its field.
type FieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

func (e FieldError) Error() string { return e.Field + ": " + e.Reason }

// ValidationError is every problem Validate found; its message is one
// "field: reason" line each. The admin API and registration answer the
// fields one by one.
type ValidationError []FieldError

func (v ValidationError) Error() string {
	lines := make([]string, len(v))
	for i, e := range v {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap gives each field's problem, as errors.Join would.
func (v ValidationError) Unwrap() []error {
	errs := make([]error, len(v))
	for i, e := range v {
		errs[i] = e
	}
	return errs
}

// Validate returns every problem of c at once, as a ValidationError, each
// naming its field. It checks the client as stored: SecretHash, never a
// clear secret.
func Validate(c *Client) error {
	var errs ValidationError
	bad := func(field, format string, args ...any) {
		errs = append(errs, FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	if c.ID == "" {
		bad("id", "must not be empty")
	} else if len(c.ID) > 255 {
		bad("id", "must be at most 255 characters")
	}
	for i, g := range c.GrantTypes {
		if !slices.Contains(knownGrants, g) {
			bad(fmt.Sprintf("grant_types[%d]", i), "unknown grant type %q", g)
		}
	}
	if len(c.GrantTypes) == 0 {
		bad("grant_types", "must list at least one grant type")
	}
	for i, rt := range c.ResponseTypes {
		if rt != "code" {
			bad(fmt.Sprintf("response_types[%d]", i), "unsupported response type %q (only \"code\")", rt)
		}
	}
	method := c.GetTokenEndpointAuthMethod()
	switch {
	case !slices.Contains(knownAuthMethods, method):
		bad("token_endpoint_auth_method", "unknown method %q", method)
	case method == AuthMethodNone && c.SecretHash != "":
		bad("secret", "a public client (token_endpoint_auth_method none) has no secret")
	case (method == AuthMethodBasic || method == AuthMethodPost) && c.SecretHash == "":
		bad("secret", "a confidential client (%s) needs a secret", method)
	case method == AuthMethodPrivateKey && (c.JWKS == nil || len(c.JWKS.Keys) == 0):
		bad("jwks", "private_key_jwt needs the client's public keys")
	}
	if c.SecretHash != "" && !IsHash(c.SecretHash) {
		bad("secret", "is not a stored hash")
	}
	if method == AuthMethodNone && slices.Contains(c.GrantTypes, GrantClientCredentials) {
		bad("grant_types", "a public client cannot use client_credentials")
	}
	if slices.Contains(c.GrantTypes, GrantAuthorizationCode) {
		if len(c.RedirectURIs) == 0 {
			bad("redirect_uris", "authorization_code needs at least one redirect URI")
		}
		if !slices.Contains(c.ResponseTypes, "code") {
			bad("response_types", "authorization_code needs response type \"code\"")
		}
	} else if len(c.ResponseTypes) > 0 {
		bad("response_types", "only a client with the authorization_code grant uses the authorization endpoint")
	}
	checkURIs := func(field string, uris []string) {
		seen := map[string]bool{}
		for i, u := range uris {
			if err := checkRedirectURI(u); err != nil {
				bad(fmt.Sprintf("%s[%d]", field, i), "%v", err)
			}
			if seen[u] {
				bad(fmt.Sprintf("%s[%d]", field, i), "duplicate %q", u)
			}
			seen[u] = true
		}
	}
	checkURIs("redirect_uris", c.RedirectURIs)
	checkURIs("post_logout_redirect_uris", c.PostLogoutRedirectURIs)
	switch c.AccessTokenFormat {
	case "", "opaque", "jwt":
	default:
		bad("access_token_format", "must be opaque or jwt, not %q", c.AccessTokenFormat)
	}
	if c.RateLimit < 0 || math.IsNaN(c.RateLimit) || math.IsInf(c.RateLimit, 0) {
		bad("rate_limit", "must be a finite number, not negative")
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// checkRedirectURI accepts an absolute URI without fragment (RFC 6749
// §3.1.2). Custom schemes are allowed for native apps (RFC 8252 §7.1).
func checkRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not a URI", raw)
	case !u.IsAbs():
		return fmt.Errorf("%q must be absolute", raw)
	case strings.Contains(raw, "#"):
		return fmt.Errorf("%q must not have a fragment", raw)
	case (u.Scheme == "http" || u.Scheme == "https") && u.Host == "":
		return fmt.Errorf("%q has no host", raw)
	}
	return nil
}
