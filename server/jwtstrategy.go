package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/users"
)

// Access token formats (tokens.access_token_format and a client's
// access_token_format).
const (
	formatOpaque = "opaque"
	formatJWT    = "jwt"
)

// jwtAccessTokenType is the typ header of RFC 9068 §2.1.
const jwtAccessTokenType = "at+jwt"

// tokenStrategy is the oauth2.CoreStrategy of every handler. It issues an
// RFC 9068 JWT access token to a client whose effective format is jwt (its
// own access_token_format, or the server's when it has none), and leaves
// everything else to the HMAC strategy: opaque access tokens, refresh
// tokens and authorization codes.
//
// A JWT access token is recorded in the store like an opaque one, so
// introspection, revocation, the cascade from refresh tokens and userinfo
// treat both alike: a revoked JWT introspects inactive although its
// signature stays valid until exp. Its store key is the SHA-256 of its JWS
// signature (base64url, 43 characters, as long as an HMAC signature): the
// signature itself is 342 characters for RS256 and would not fit the
// VARCHAR(128) signature columns of PostgreSQL.
//
// Which kind a presented token is follows from its shape alone (a JWT has
// three dot-separated parts; an HMAC token has the ory_at_ prefix and one
// dot), never from its client, which is not known before the lookup.
type tokenStrategy struct {
	oauth2.CoreStrategy // the HMAC strategy

	signer jwt.Signer
	issuer string
	format string // the server's default: formatOpaque or formatJWT
	// userClaims puts the user's ID token claims in JWT access tokens too,
	// as mock servers do: dev mode only. Otherwise they stay out, for
	// userinfo and the ID token, since every API the token reaches reads
	// an access token.
	userClaims bool
}

var _ oauth2.CoreStrategy = (*tokenStrategy)(nil)

// newTokenStrategy wraps hmacStrategy; signer signs JWT access tokens with
// the current key and verifies them by kid.
func newTokenStrategy(hmacStrategy oauth2.CoreStrategy, signer jwt.Signer, issuer, format string) *tokenStrategy {
	if format == "" {
		format = formatOpaque
	}
	return &tokenStrategy{CoreStrategy: hmacStrategy, signer: signer, issuer: issuer, format: format}
}

// accessTokenFormat is the effective format for client.
func (s *tokenStrategy) accessTokenFormat(client fosite.Client) string {
	if c, ok := client.(*clients.Client); ok && c.AccessTokenFormat != "" {
		return c.AccessTokenFormat
	}
	return s.format
}

// looksLikeJWT reports whether token has the shape of a compact JWS.
func looksLikeJWT(token string) bool {
	return strings.Count(token, ".") == 2 && !strings.HasPrefix(token, "ory_")
}

// jwtStoreKey is the store signature of a JWT access token.
func jwtStoreKey(token string) string {
	sig := token[strings.LastIndexByte(token, '.')+1:]
	sum := sha256.Sum256([]byte(sig))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// AccessTokenSignature is the key the access token is stored under.
func (s *tokenStrategy) AccessTokenSignature(ctx context.Context, token string) string {
	if looksLikeJWT(token) {
		return jwtStoreKey(token)
	}
	return s.CoreStrategy.AccessTokenSignature(ctx, token)
}

// GenerateAccessToken issues a JWT or an opaque token by the client's
// effective format.
func (s *tokenStrategy) GenerateAccessToken(ctx context.Context, r fosite.Requester) (string, string, error) {
	if r.GetClient() == nil || s.accessTokenFormat(r.GetClient()) != formatJWT {
		return s.CoreStrategy.GenerateAccessToken(ctx, r)
	}
	return s.generateJWT(ctx, r)
}

// generateJWT issues an RFC 9068 JWT access token for r, whatever the
// client's format (a token exchange may ask for one by
// requested_token_type).
func (s *tokenStrategy) generateJWT(ctx context.Context, r fosite.Requester) (string, string, error) {
	claims, err := s.accessTokenClaims(r)
	if err != nil {
		return "", "", err
	}
	token, _, err := s.signer.Generate(ctx, claims, &jwt.Headers{Extra: map[string]interface{}{"typ": jwtAccessTokenType}})
	if err != nil {
		return "", "", err
	}
	return token, jwtStoreKey(token), nil
}

// accessTokenClaims are RFC 9068 §2.2's claims for r, built as fosite's
// DefaultJWTStrategy builds them from a JWTSessionContainer (which
// *openid.DefaultSession is not), with scope as a space-separated string.
func (s *tokenStrategy) accessTokenClaims(r fosite.Requester) (jwt.MapClaims, error) {
	sess := r.GetSession()
	if sess == nil {
		return nil, errors.New("server: a JWT access token needs a session")
	}
	exp := sess.GetExpiresAt(fosite.AccessToken)
	if exp.IsZero() {
		return nil, errors.New("server: a JWT access token needs an expiry")
	}
	iat := r.GetRequestedAt()
	if iat.IsZero() || iat.After(time.Now()) {
		iat = time.Now()
	}
	jti, err := newJTI()
	if err != nil {
		return nil, err
	}
	clientID := r.GetClient().GetID()
	aud := []string(r.GetGrantedAudience())
	if len(aud) == 0 {
		aud = []string{clientID}
	}
	claims := jwt.MapClaims{
		"iss":       s.issuer,
		"aud":       aud,
		"client_id": clientID,
		"jti":       jti,
		"iat":       iat.Unix(),
		"exp":       exp.Unix(),
	}
	if sub := sess.GetSubject(); sub != "" {
		claims["sub"] = sub
	}
	if scope := r.GetGrantedScopes(); len(scope) > 0 {
		claims["scope"] = strings.Join(scope, " ")
	}
	if jkt := dpopJKT(sess); jkt != "" {
		// RFC 9449 §6.1: the key the token is bound to.
		claims["cnf"] = map[string]any{"jkt": jkt}
	}
	if at := authTime(sess); !at.IsZero() {
		claims["auth_time"] = at.Unix()
	}
	if act := exchangeAct(sess); act != nil {
		// RFC 8693 §4.1: who acts for the subject.
		claims["act"] = act
	}
	// RFC 9068 §2.2.1: how the user signed in, as in the ID token.
	if ds, ok := oidcSession(sess); ok && ds.Claims != nil && len(ds.Claims.AuthenticationMethodsReferences) > 0 {
		claims["amr"] = ds.Claims.AuthenticationMethodsReferences
		claims["acr"] = ds.Claims.AuthenticationContextClassReference
	}
	// In dev mode, the user's claims of the ID token (profile claims of
	// the granted scopes, custom claims); the protocol claims above stay
	// the server's.
	if ds, ok := oidcSession(sess); ok && s.userClaims && ds.Claims != nil {
		for k, v := range ds.Claims.Extra {
			if _, set := claims[k]; !set && !users.ReservedClaim(k) {
				claims[k] = v
			}
		}
	}
	return claims, nil
}

// authTime is when the user of sess signed in, zero when there is no user
// or it is not known.
func authTime(sess fosite.Session) time.Time {
	if s, ok := oidcSession(sess); ok {
		// Not IDTokenClaims(): it would add empty claims to the session.
		if s.Claims != nil {
			return s.Claims.AuthTime
		}
		return time.Time{}
	}
	switch s := sess.(type) {
	case openid.Session:
		if c := s.IDTokenClaims(); c != nil {
			return c.AuthTime
		}
	}
	return time.Time{}
}

func newJTI() (string, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("server: generate jti: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// ValidateAccessToken checks token against r, the request stored under its
// signature: a JWT must carry a valid signature of a published key, the
// at+jwt type and an unexpired exp; either kind must not have expired by
// the stored session.
func (s *tokenStrategy) ValidateAccessToken(ctx context.Context, r fosite.Requester, token string) error {
	if !looksLikeJWT(token) {
		return s.CoreStrategy.ValidateAccessToken(ctx, r, token)
	}
	t, err := s.signer.Decode(ctx, token)
	if err != nil {
		var ve *jwt.ValidationError
		if errors.As(err, &ve) {
			return jwtValidationError(ve).WithWrap(err).WithDebug(err.Error())
		}
		// The key store failed: not the token's fault.
		return err
	}
	if err := t.Claims.Valid(); err != nil {
		var ve *jwt.ValidationError
		if errors.As(err, &ve) {
			return jwtValidationError(ve).WithWrap(err).WithDebug(err.Error())
		}
		return fosite.ErrTokenClaim.WithWrap(err).WithDebug(err.Error())
	}
	if typ, _ := t.Header["typ"].(string); !strings.EqualFold(typ, jwtAccessTokenType) {
		return fosite.ErrTokenClaim.WithHint("The token is not a JWT access token.")
	}
	if exp := r.GetSession().GetExpiresAt(fosite.AccessToken); !exp.IsZero() && exp.Before(time.Now().UTC()) {
		return fosite.ErrTokenExpired.WithHintf("Access token expired at '%s'.", exp)
	}
	return nil
}

// jwtValidationError maps a JWT failure to fosite's error, as fosite's
// DefaultJWTStrategy does.
func jwtValidationError(v *jwt.ValidationError) *fosite.RFC6749Error {
	switch {
	case v.Has(jwt.ValidationErrorMalformed):
		return fosite.ErrInvalidTokenFormat
	case v.Has(jwt.ValidationErrorUnverifiable | jwt.ValidationErrorSignatureInvalid):
		return fosite.ErrTokenSignatureMismatch
	case v.Has(jwt.ValidationErrorExpired):
		return fosite.ErrTokenExpired
	case v.Has(jwt.ValidationErrorAudience | jwt.ValidationErrorIssuedAt | jwt.ValidationErrorIssuer |
		jwt.ValidationErrorNotValidYet | jwt.ValidationErrorId | jwt.ValidationErrorClaimsInvalid):
		return fosite.ErrTokenClaim
	default:
		return fosite.ErrRequestUnauthorized
	}
}
