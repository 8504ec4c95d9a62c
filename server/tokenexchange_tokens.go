package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	gojwt "github.com/go-jose/go-jose/v3/jwt"
	"github.com/ory/fosite"
	"github.com/ory/fosite/token/jwt"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/storage"
)

// The subject and actor tokens of a token exchange (RFC 8693 §2.1): what
// Latch accepts, and how each is checked.

// exchangeToken is a subject or actor token that passed its checks.
type exchangeToken struct {
	subject   string
	issuer    string // "" for Latch's own tokens
	scopes    fosite.Arguments
	expiresAt time.Time
	act       map[string]any // the token's own act claim (§4.1), if any
	// For Latch's own access tokens: the grant (request ID) and session
	// it was issued with.
	grantID   string
	signature string
	session   *grantSession
}

// errExchangeToken is the answer for a subject or actor token that is not
// acceptable: RFC 8693 §2.2.2 says invalid_request, "if either the
// subject_token or actor_token are invalid for any reason, or are
// unacceptable based on policy".
func errExchangeToken(param, hint string) *fosite.RFC6749Error {
	return fosite.ErrInvalidRequest.WithHintf("The '%s' is not acceptable: %s", param, hint)
}

// checkToken checks token, of the declared type, for client. Latch's own
// access tokens (opaque or JWT) are looked up in the store and must be
// active; its ID tokens must carry its signature and be unexpired; a JWT
// of another issuer must pass the RFC 7523 checks of a trusted issuer.
// Latch's own tokens must also be meant for client: issued to it, or
// naming it in their audience, so that a token leaked to a third client
// cannot be exchanged by that one. A DPoP-bound token is refused: its key
// would not travel with it.
func (g *tokenExchangeGrant) checkToken(ctx context.Context, client *clients.Client, param, token, typ string) (*exchangeToken, error) {
	switch typ {
	case tokenTypeAccess:
		return g.ownAccessToken(ctx, client, param, token)
	case tokenTypeIDToken:
		return g.ownIDToken(ctx, client, param, token)
	case tokenTypeJWT:
		if !looksLikeJWT(token) {
			return nil, errExchangeToken(param, "it is not a JWT.")
		}
		iss, typHeader := unverifiedIssuer(token)
		switch {
		case iss != g.issuer:
			return g.trustedJWT(ctx, client, param, token)
		case strings.EqualFold(typHeader, jwtAccessTokenType):
			return g.ownAccessToken(ctx, client, param, token)
		default:
			return g.ownIDToken(ctx, client, param, token)
		}
	}
	return nil, fosite.ErrInvalidRequest.WithHintf("The '%s_type' is not a token type this server accepts: use %s, %s or %s.",
		param, tokenTypeAccess, tokenTypeIDToken, tokenTypeJWT)
}

// unverifiedIssuer reads the iss claim and typ header of a JWT without
// checking it, to choose the checks that follow.
func unverifiedIssuer(token string) (iss, typ string) {
	t, err := gojwt.ParseSigned(token)
	if err != nil {
		return "", ""
	}
	var claims gojwt.Claims
	if err := t.UnsafeClaimsWithoutVerification(&claims); err != nil {
		return "", ""
	}
	if len(t.Headers) > 0 {
		typ, _ = t.Headers[0].ExtraHeaders["typ"].(string)
	}
	return claims.Issuer, typ
}

// ownAccessToken checks an access token Latch issued: stored, unexpired,
// not revoked.
func (g *tokenExchangeGrant) ownAccessToken(ctx context.Context, client *clients.Client, param, token string) (*exchangeToken, error) {
	sig := g.strategy.AccessTokenSignature(ctx, token)
	sess := newGrantSession()
	req, err := g.store.GetAccessTokenSession(ctx, sig, sess)
	if errors.Is(err, fosite.ErrNotFound) {
		return nil, errExchangeToken(param, "it is not an active access token of this server.")
	}
	if err != nil {
		return nil, err
	}
	if err := g.strategy.ValidateAccessToken(ctx, req, token); err != nil {
		var rfc *fosite.RFC6749Error
		if !errors.As(err, &rfc) || rfc.CodeField >= http.StatusInternalServerError {
			return nil, err // the key store failed, not the token
		}
		return nil, errExchangeToken(param, "it is not an active access token of this server.").WithWrap(err)
	}
	if dpopJKT(sess) != "" {
		return nil, errExchangeToken(param, "it is DPoP-bound, and the key it is bound to cannot come with it.")
	}
	if req.GetClient().GetID() != client.ID && !req.GetGrantedAudience().Has(client.ID) {
		return nil, errExchangeToken(param, "it was neither issued to this client nor names it in its audience.")
	}
	return &exchangeToken{
		subject:   sess.GetSubject(),
		scopes:    req.GetGrantedScopes(),
		expiresAt: sess.GetExpiresAt(fosite.AccessToken),
		act:       sess.Act,
		grantID:   req.GetID(),
		signature: sig,
		session:   sess,
	}, nil
}

// ownIDToken checks an ID token Latch issued: its signature by a published
// key, iss, exp, a subject, and the client among its audience. An ID
// token says who signed in, not what they allowed, so its only scope is
// openid.
func (g *tokenExchangeGrant) ownIDToken(ctx context.Context, client *clients.Client, param, token string) (*exchangeToken, error) {
	t, err := g.signer.Decode(ctx, token)
	if err != nil {
		var ve *jwt.ValidationError
		if !errors.As(err, &ve) {
			return nil, err // the key store failed, not the token
		}
		return nil, errExchangeToken(param, "it is not a valid ID token of this server (signature or expiry).")
	}
	claims := t.Claims
	exp := numericDate(claims["exp"])
	sub, _ := claims["sub"].(string)
	iss, _ := claims["iss"].(string)
	typ, _ := t.Header["typ"].(string)
	switch {
	case claims.Valid() != nil || exp == 0 || time.Unix(exp, 0).Before(time.Now()):
		return nil, errExchangeToken(param, "the ID token has expired or has no exp.")
	case iss != g.issuer || sub == "":
		return nil, errExchangeToken(param, "it is not an ID token of this server.")
	case strings.EqualFold(typ, jwtAccessTokenType):
		return nil, errExchangeToken(param, "it is an access token, not an ID token.")
	case !audienceHas(claims["aud"], client.ID):
		return nil, errExchangeToken(param, "the ID token was not issued to this client.")
	}
	act, _ := claims["act"].(map[string]any)
	return &exchangeToken{subject: sub, scopes: fosite.Arguments{"openid"}, expiresAt: time.Unix(exp, 0).UTC(), act: boundAct(act, 0)}, nil
}

// numericDate is a JWT NumericDate claim in seconds, 0 when it is not one
// (the JSON decoder gives a float64 or a json.Number).
func numericDate(v any) int64 {
	switch n := v.(type) {
	case float64:
		return int64(n)
	case int64:
		return n
	case json.Number:
		if i, err := n.Int64(); err == nil {
			return i
		}
		if f, err := n.Float64(); err == nil {
			return int64(f)
		}
	}
	return 0
}

// audienceHas reports whether aud, a JWT's aud claim (a string or a list),
// names id.
func audienceHas(aud any, id string) bool {
	switch a := aud.(type) {
	case string:
		return a == id
	case []any:
		for _, v := range a {
			if s, ok := v.(string); ok && s == id {
				return true
			}
		}
	}
	return false
}

// trustedJWT checks a JWT of another issuer exactly as the JWT bearer
// grant checks an assertion (rfc7523.go): a trusted_issuers entry for its
// iss and sub, a signature by that entry's keys, aud naming this server,
// exp, iat and a jti used once. Its scopes are those the entry grants.
func (g *tokenExchangeGrant) trustedJWT(ctx context.Context, client *clients.Client, param, token string) (*exchangeToken, error) {
	probe := fosite.NewAccessRequest(newGrantSession())
	probe.GrantTypes = fosite.Arguments{clients.GrantJWTBearer}
	probe.Form.Set("assertion", token)
	asBearer := client.Clone()
	asBearer.GrantTypes = []string{clients.GrantJWTBearer}
	probe.Client = asBearer
	if err := g.jwtBearer.HandleTokenEndpointRequest(ctx, probe); err != nil {
		var rfc *fosite.RFC6749Error
		if !errors.As(err, &rfc) || rfc.CodeField >= http.StatusInternalServerError || errors.Is(err, storage.ErrUnavailable) {
			return nil, err
		}
		hint := rfc.HintField
		if hint == "" {
			hint = rfc.DescriptionField
		}
		return nil, errExchangeToken(param, strings.ReplaceAll(hint, `"assertion"`, `"`+param+`"`)).WithWrap(err)
	}
	t, err := gojwt.ParseSigned(token)
	if err != nil {
		return nil, errExchangeToken(param, "it is not a JWT.")
	}
	var claims gojwt.Claims
	var extra struct {
		Act map[string]any `json:"act"`
	}
	if err := t.UnsafeClaimsWithoutVerification(&claims, &extra); err != nil { // verified above
		return nil, errExchangeToken(param, "its claims cannot be read.")
	}
	scopes, err := g.trustedScopes(ctx, param, claims.Issuer, claims.Subject)
	if err != nil {
		return nil, err
	}
	out := &exchangeToken{subject: claims.Subject, issuer: claims.Issuer, scopes: scopes, act: boundAct(extra.Act, 0)}
	if claims.Expiry != nil {
		out.expiresAt = claims.Expiry.Time().UTC()
	}
	return out, nil
}

// trustedScopes are the scopes the trusted_issuers entry of iss and sub
// grants; Latch keeps them per entry, the same for each of its keys.
func (g *tokenExchangeGrant) trustedScopes(ctx context.Context, param, iss, sub string) (fosite.Arguments, error) {
	keys, err := g.store.GetPublicKeys(ctx, iss, sub)
	if err != nil || len(keys.Keys) == 0 {
		return nil, errorOr(err, errExchangeToken(param, "its issuer is not trusted."))
	}
	scopes, err := g.store.GetPublicKeyScopes(ctx, iss, sub, keys.Keys[0].KeyID)
	if err != nil {
		return nil, errorOr(err, errExchangeToken(param, "its issuer is not trusted."))
	}
	return scopes, nil
}

// errorOr is err when the store failed, else refusal.
func errorOr(err error, refusal error) error {
	if err != nil && !errors.Is(err, fosite.ErrNotFound) {
		return err
	}
	return refusal
}

// boundAct keeps of an act claim only what §4.1 defines for it (sub, iss,
// client_id, and a nested act), at most storage.MaxExchangeDepth deep, so
// a foreign token cannot make us carry what it likes.
func boundAct(act map[string]any, depth int) map[string]any {
	if act == nil || depth >= storage.MaxExchangeDepth {
		return nil
	}
	out := map[string]any{}
	for _, k := range []string{"sub", "iss", "client_id"} {
		if v, ok := act[k].(string); ok && len(v) <= 255 {
			out[k] = v
		}
	}
	if nested, ok := act["act"].(map[string]any); ok {
		if n := boundAct(nested, depth+1); n != nil {
			out["act"] = n
		}
	}
	if _, ok := out["sub"]; !ok {
		return nil
	}
	return out
}
