package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v3"
	"github.com/spf13/cobra"

	"github.com/latchauth/latch/clients"
)

// secretNotice follows every secret the CLI prints.
const secretNotice = "Store this secret now: it cannot be shown again."

// clientFlags are the client fields of SPEC as flags, named after the
// config.yaml keys in the singular for the repeatable ones.
type clientFlags struct {
	id, name, authMethod, jwksFile, tokenFormat, backchannelURI string

	redirectURIs, postLogoutURIs, grantTypes, responseTypes, scopes, audience []string

	rateLimit   float64
	skipConsent bool
	signedReq   bool
	dpopBound   bool
	bcSession   bool

	// The token exchange policy (RFC 8693).
	xchgAudiences                  []string
	xchgImpersonation, xchgRefresh bool
}

func (o *clientFlags) add(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&o.name, "name", "", "name shown on the login and consent pages")
	fs.StringArrayVar(&o.redirectURIs, "redirect-uri", nil, "redirect URI (repeatable)")
	fs.StringArrayVar(&o.postLogoutURIs, "post-logout-redirect-uri", nil, "post-logout redirect URI (repeatable)")
	fs.StringArrayVar(&o.grantTypes, "grant-type", nil, "grant type (repeatable; default client_credentials): "+strings.Join(grantNames, ", "))
	fs.StringArrayVar(&o.responseTypes, "response-type", nil, `response type (repeatable; default "code" with authorization_code)`)
	fs.StringArrayVar(&o.scopes, "scope", nil, "scope the client may request (repeatable)")
	fs.StringArrayVar(&o.audience, "audience", nil, "audience the client may request (repeatable)")
	fs.StringVar(&o.authMethod, "token-endpoint-auth-method", "", "client_secret_basic (default), client_secret_post, client_secret_jwt, none (public, PKCE) or private_key_jwt")
	fs.StringVar(&o.jwksFile, "jwks-file", "", "JSON Web Key Set file of the client's public keys (private_key_jwt)")
	fs.StringVar(&o.tokenFormat, "access-token-format", "", "opaque or jwt; empty: the server's tokens.access_token_format")
	fs.Float64Var(&o.rateLimit, "rate-limit", 0, "token requests per second for this client; 0 = unlimited")
	fs.BoolVar(&o.skipConsent, "skip-consent", false, "never show the consent page for this client")
	fs.BoolVar(&o.signedReq, "require-signed-request-object", false, "accept authorization requests only as a signed request object (RFC 9101)")
	fs.BoolVar(&o.dpopBound, "dpop-bound-access-tokens", false, "refuse token requests without a DPoP proof (RFC 9449)")
	fs.StringVar(&o.backchannelURI, "backchannel-logout-uri", "", `URL that receives a logout_token when a sign-in the client took part in ends (OIDC Back-Channel Logout); "" clears it`)
	fs.BoolVar(&o.bcSession, "backchannel-logout-session-required", false, "the client needs sid in its logout tokens (Latch always sends it)")
	fs.StringArrayVar(&o.xchgAudiences, "token-exchange-audience", nil, "audience the client may request by token exchange (repeatable; RFC 8693)")
	fs.BoolVar(&o.xchgImpersonation, "token-exchange-impersonation", false, "allow token exchange without an actor_token (impersonation)")
	fs.BoolVar(&o.xchgRefresh, "token-exchange-refresh-tokens", false, "allow token exchange for a refresh token")
}

var grantNames = []string{
	clients.GrantAuthorizationCode, clients.GrantRefreshToken, clients.GrantClientCredentials,
	clients.GrantDeviceCode, clients.GrantJWTBearer, clients.GrantPassword, clients.GrantTokenExchange,
}

// apply copies the flags given on the command line into cl; the others
// leave cl as it is, so update changes only what was asked.
func (o *clientFlags) apply(cmd *cobra.Command, cl *clients.Client) error {
	changed := cmd.Flags().Changed
	if changed("name") {
		cl.Name = o.name
	}
	lists := []struct {
		flag string
		val  []string
		dst  *[]string
	}{
		{"redirect-uri", o.redirectURIs, &cl.RedirectURIs},
		{"post-logout-redirect-uri", o.postLogoutURIs, &cl.PostLogoutRedirectURIs},
		{"grant-type", o.grantTypes, &cl.GrantTypes},
		{"response-type", o.responseTypes, &cl.ResponseTypes},
		{"scope", o.scopes, &cl.Scopes},
		{"audience", o.audience, &cl.Audience},
	}
	for _, l := range lists {
		if changed(l.flag) {
			// An empty value clears the list: --scope "".
			*l.dst = slices.DeleteFunc(slices.Clone(l.val), func(s string) bool { return s == "" })
		}
	}
	// authorization_code needs response type "code" and nothing else may
	// have one: unless response types were given, clients.Defaults derives
	// them from the new grant types.
	if changed("grant-type") && !changed("response-type") {
		cl.ResponseTypes = nil
	}
	if changed("token-endpoint-auth-method") {
		cl.TokenEndpointAuthMethod = o.authMethod
	}
	if changed("jwks-file") {
		set, err := readJWKS(o.jwksFile)
		if err != nil {
			return err
		}
		cl.JWKS = set
	}
	if changed("access-token-format") {
		cl.AccessTokenFormat = o.tokenFormat
	}
	if changed("rate-limit") {
		cl.RateLimit = o.rateLimit
	}
	if changed("require-signed-request-object") {
		cl.RequireSignedRequestObject = o.signedReq
	}
	if changed("skip-consent") {
		cl.SkipConsent = o.skipConsent
	}
	if changed("dpop-bound-access-tokens") {
		cl.DPoPBoundAccessTokens = o.dpopBound
	}
	if changed("backchannel-logout-uri") {
		cl.BackchannelLogoutURI = o.backchannelURI
	}
	if changed("backchannel-logout-session-required") {
		cl.BackchannelLogoutSessionRequired = o.bcSession
	}
	o.applyTokenExchange(cmd, cl)
	return nil
}

// applyTokenExchange keeps the token exchange policy in step with the
// grant: a client given the grant gets a policy (empty until flags fill
// it), one whose grants no longer list it loses its policy, and the
// policy flags change only what they name.
func (o *clientFlags) applyTokenExchange(cmd *cobra.Command, cl *clients.Client) {
	changed := cmd.Flags().Changed
	listed := slices.Contains(cl.GrantTypes, clients.GrantTokenExchange)
	if !listed && changed("grant-type") {
		cl.TokenExchange = nil
	}
	if listed && cl.TokenExchange == nil {
		cl.TokenExchange = &clients.TokenExchangePolicy{Audiences: []string{}}
	}
	if cl.TokenExchange == nil {
		if changed("token-exchange-audience") || changed("token-exchange-impersonation") || changed("token-exchange-refresh-tokens") {
			// Validation names the missing grant.
			cl.TokenExchange = &clients.TokenExchangePolicy{Audiences: []string{}}
		} else {
			return
		}
	}
	te := cl.TokenExchange
	if changed("token-exchange-audience") {
		te.Audiences = slices.DeleteFunc(slices.Clone(o.xchgAudiences), func(s string) bool { return s == "" })
	}
	if changed("token-exchange-impersonation") {
		te.Impersonation = o.xchgImpersonation
	}
	if changed("token-exchange-refresh-tokens") {
		te.RefreshTokens = o.xchgRefresh
	}
}

// readJWKS reads a key set of public keys; "" clears it.
func readJWKS(path string) (*jose.JSONWebKeySet, error) {
	if path == "" {
		return nil, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--jwks-file: %w", err)
	}
	set := new(jose.JSONWebKeySet)
	if err := json.Unmarshal(raw, set); err != nil {
		return nil, fmt.Errorf("--jwks-file %s: not a JSON Web Key Set: %w", path, err)
	}
	for i, k := range set.Keys {
		if !k.IsPublic() {
			return nil, fmt.Errorf("--jwks-file %s: key %d is a private key; give the public keys only", path, i)
		}
	}
	return set, nil
}
