package clients

import (
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"unicode"
)

var knownGrants = []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials, GrantDeviceCode, GrantJWTBearer, GrantPassword, GrantTokenExchange}

var knownAuthMethods = []string{AuthMethodBasic, AuthMethodPost, AuthMethodSecretJWT, AuthMethodNone, AuthMethodPrivateKey}

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

// Rules is what the client rules depend on beyond the client: the
// deployment's insecure_http. The zero value is the strict rule set.
type Rules struct {
	// InsecureHTTP accepts http:// redirect URIs to hosts that are not
	// loopback (config insecure_http), as it accepts such an issuer.
	InsecureHTTP bool
}

// Validate is Rules{}.Validate: the strict rules.
func Validate(c *Client) error { return Rules{}.Validate(c) }

// Validate returns every problem of c at once, as a ValidationError, each
// naming its field. It checks the client as stored: SecretHash, and the
// clear secret only of a client_secret_jwt client, which keeps it. It is
// the one set of client rules: the CLI, the admin API, registration and
// config.yaml (through config.Validate) all use it.
func (rules Rules) Validate(c *Client) error {
	var errs ValidationError
	bad := func(field, format string, args ...any) {
		errs = append(errs, FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	oneOf := func(field, value string, allowed []string) bool {
		if slices.Contains(allowed, value) {
			return true
		}
		bad(field, "must be one of %s, got %q", strings.Join(allowed, " | "), value)
		return false
	}
	if c.ID == "" {
		bad("id", "must not be empty")
	} else if len(c.ID) > 255 {
		bad("id", "must be at most 255 characters")
	} else if strings.ContainsAny(c.ID, "/?#%") || strings.IndexFunc(c.ID, unicode.IsControl) >= 0 || strings.TrimSpace(c.ID) != c.ID {
		// The id is a path segment of the admin API and registration URLs.
		bad("id", "must not contain '/', '?', '#', '%%', control characters or surrounding spaces, got %q", c.ID)
	}

	method := c.GetTokenEndpointAuthMethod()
	if oneOf("token_endpoint_auth_method", method, knownAuthMethods) {
		switch {
		case method == AuthMethodNone && c.SecretHash != "":
			bad("secret", "must be empty for a public client (token_endpoint_auth_method: none)")
		case NeedsSecret(method) && c.SecretHash == "":
			bad("secret", "must be set for token_endpoint_auth_method %s; a client without a secret uses none", method)
		case method == AuthMethodPrivateKey && c.SecretHash != "":
			bad("secret", "must be empty with private_key_jwt; the client authenticates with its keys")
		case method == AuthMethodSecretJWT && c.JWTSecret == "":
			bad("secret", "must be given anew for client_secret_jwt: the server keeps that secret itself (sealed) to verify assertions, and this one is stored only as a hash")
		case method == AuthMethodSecretJWT && len(c.JWTSecret) < MinJWTSecretLen:
			bad("secret", "must be at least %d bytes for client_secret_jwt: it is the HMAC key (RFC 7518 §3.2)", MinJWTSecretLen)
		}
		if method == AuthMethodPrivateKey && (c.JWKS == nil || len(c.JWKS.Keys) == 0) {
			bad("jwks", "must be set for token_endpoint_auth_method private_key_jwt")
		}
	}
	if c.SecretHash != "" && !IsHash(c.SecretHash) {
		bad("secret", "is not a stored hash")
	}

	if len(c.GrantTypes) == 0 {
		bad("grant_types", "must list at least one grant type")
	}
	var codeGrant, codeResponse bool
	for i, g := range c.GrantTypes {
		field := fmt.Sprintf("grant_types[%d]", i)
		oneOf(field, g, knownGrants)
		codeGrant = codeGrant || g == GrantAuthorizationCode
		if g == GrantClientCredentials && method == AuthMethodNone {
			bad(field, "client_credentials needs a confidential client, not token_endpoint_auth_method none")
		}
	}
	for i, rt := range c.ResponseTypes {
		oneOf(fmt.Sprintf("response_types[%d]", i), rt, []string{"code"})
		codeResponse = codeResponse || rt == "code"
	}
	switch {
	case codeGrant && len(c.RedirectURIs) == 0:
		bad("redirect_uris", "the authorization_code grant needs at least one redirect URI")
	case codeGrant && !codeResponse:
		bad("response_types", "the authorization_code grant needs response type code")
	case !codeGrant && len(c.ResponseTypes) > 0:
		bad("response_types", "%s needs the authorization_code grant in grant_types", strings.Join(c.ResponseTypes, " "))
	}
	checkURIs := func(field string, uris []string) {
		seen := map[string]bool{}
		for i, u := range uris {
			f := fmt.Sprintf("%s[%d]", field, i)
			if err := rules.CheckRedirectURI(u); err != nil {
				bad(f, "%v", err)
			} else if seen[u] {
				bad(f, "%q is listed twice", u)
			}
			seen[u] = true
		}
	}
	checkURIs("redirect_uris", c.RedirectURIs)
	checkURIs("post_logout_redirect_uris", c.PostLogoutRedirectURIs)
	if c.BackchannelLogoutURI != "" {
		if err := rules.CheckBackchannelLogoutURI(c.BackchannelLogoutURI); err != nil {
			bad("backchannel_logout_uri", "%v", err)
		}
	}
	words := func(field string, list []string) {
		for i, w := range list {
			if w == "" || strings.ContainsAny(w, " \t\r\n") {
				bad(fmt.Sprintf("%s[%d]", field, i), "must be non-empty and without spaces, got %q", w)
			}
		}
	}
	words("scopes", c.Scopes)
	words("audience", c.Audience)
	for i, scope := range c.PrivateScopes {
		if !slices.Contains(c.Scopes, scope) {
			bad(fmt.Sprintf("private_scopes[%d]", i), "%q is not one of the client's scopes", scope)
		}
	}
	if c.AccessTokenFormat != "" {
		oneOf("access_token_format", c.AccessTokenFormat, []string{"opaque", "jwt"})
	}
	if !(c.RateLimit >= 0) || math.IsInf(c.RateLimit, 0) {
		bad("rate_limit", "must be a number >= 0 (0 is unlimited), got %v", c.RateLimit)
	}
	errs = append(errs, tokenExchangeProblems(c)...)
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// MaxTokenExchangeAudiences caps a token exchange policy's audiences:
// each exchange compares its targets with them.
const MaxTokenExchangeAudiences = 100

// tokenExchangeProblems checks the token exchange policy (RFC 8693): the
// grant needs a policy and a confidential client (an exchange turns one
// token into another, which only a client that proves who it is may
// ask), and a policy without the grant would be dead configuration that
// reads as if it did something.
func tokenExchangeProblems(c *Client) ValidationError {
	var errs ValidationError
	bad := func(field, format string, args ...any) {
		errs = append(errs, FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	listed := slices.Contains(c.GrantTypes, GrantTokenExchange)
	te := c.TokenExchange
	switch {
	case listed && te == nil:
		bad("token_exchange", "must be set when grant_types lists %s (audiences the client may request, impersonation)", GrantTokenExchange)
	case !listed && te != nil:
		bad("token_exchange", "is set but grant_types does not list %s", GrantTokenExchange)
	}
	if listed && c.GetTokenEndpointAuthMethod() == AuthMethodNone {
		bad("grant_types", "%s needs a confidential client, not token_endpoint_auth_method none", GrantTokenExchange)
	}
	if te == nil {
		return errs
	}
	if len(te.Audiences) > MaxTokenExchangeAudiences {
		bad("token_exchange.audiences", "must list at most %d audiences, got %d", MaxTokenExchangeAudiences, len(te.Audiences))
	}
	seen := map[string]bool{}
	for i, a := range te.Audiences {
		field := fmt.Sprintf("token_exchange.audiences[%d]", i)
		switch {
		case a == "" || strings.ContainsAny(a, " \t\r\n") || len(a) > 2048:
			bad(field, "must be non-empty, without spaces and at most 2048 characters, got %q", a)
		case seen[a]:
			bad(field, "%q is listed twice", a)
		}
		seen[a] = true
	}
	return errs
}

// MaxRedirectURILength caps one redirect URI: it is stored with the client
// and compared on every authorization request.
const MaxRedirectURILength = 2048

// refusedSchemes run code or read local files in the browser instead of
// navigating to an application: never a redirect target, whatever else is
// allowed.
var refusedSchemes = []string{"javascript", "data", "vbscript", "file"}

// CheckRedirectURI says why raw may not be a redirect URI (or a
// post-logout redirect URI), or returns nil. Accepted are https:// with a
// host; http:// for a loopback host (RFC 8252 §7.3; any host with
// InsecureHTTP); and a private-use scheme containing a dot, such as
// com.example.app:/callback (RFC 8252 §7.1). Never a fragment (RFC 6749
// §3.1.2), and never javascript:, data:, vbscript: or file:. Each message
// quotes raw.
func (rules Rules) CheckRedirectURI(raw string) error {
	if len(raw) > MaxRedirectURILength {
		return fmt.Errorf("must be at most %d characters, got %d", MaxRedirectURILength, len(raw))
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() {
		return fmt.Errorf("must be an absolute URI, got %q", raw)
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case slices.Contains(refusedSchemes, scheme):
		return fmt.Errorf("must not use the %s: scheme, got %q", scheme, raw)
	case strings.Contains(raw, "#"):
		return fmt.Errorf("must not have a fragment, got %q", raw)
	case scheme == "https" || scheme == "http":
		if u.Host == "" || u.Opaque != "" {
			return fmt.Errorf("must have a host, got %q", raw)
		}
		if scheme == "http" && !rules.InsecureHTTP && !IsLoopbackHost(u.Hostname()) {
			return fmt.Errorf("must use https: http is allowed for loopback hosts only (127.0.0.1, [::1], localhost; RFC 8252 §7.3) unless insecure_http is set, got %q", raw)
		}
	case !strings.Contains(scheme, "."):
		return fmt.Errorf("must be https, loopback http, or a private-use scheme with a dot such as com.example.app (RFC 8252 §7.1), got %q", raw)
	}
	return nil
}

// CheckBackchannelLogoutURI says why raw may not be a back-channel logout
// URI, or returns nil. Latch itself POSTs to it, so unlike a redirect URI
// it must be a web address: https://, or http:// where CheckRedirectURI
// accepts http (a loopback host, or any with InsecureHTTP). It must not
// have a fragment (Back-Channel Logout 1.0 §2.2); a query is allowed.
func (rules Rules) CheckBackchannelLogoutURI(raw string) error {
	if err := rules.CheckRedirectURI(raw); err != nil {
		return err
	}
	if u, _ := url.Parse(raw); u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Errorf("must be an https URL (or http for a loopback host), got %q", raw)
	}
	return nil
}

// IsLoopbackHost reports whether host (without port or brackets) is
// localhost or a loopback address.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// IsKnownGrant reports whether g is a grant type a client may list.
func IsKnownGrant(g string) bool { return slices.Contains(knownGrants, g) }
