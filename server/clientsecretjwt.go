package server

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v3/jwt"
	"github.com/ory/fosite"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/storage"
)

// client_secret_jwt (RFC 7523 §2.2, OIDC Core §9): the client
// authenticates with a JWT MACed with its secret. fosite refuses every
// HMAC client assertion, so Latch verifies these itself, with the checks
// fosite makes of a private_key_jwt assertion: iss and sub the client,
// aud this server, exp, and a jti used once.

// hmacAssertionAlgs are the MAC algorithms of client_secret_jwt (RFC 7518
// §3.2), listed in discovery.
var hmacAssertionAlgs = []string{"HS256", "HS384", "HS512"}

// clientAssertionType is RFC 7523 §2.2's client_assertion_type.
const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// clientAssertionJTIMaxLen caps the jti of a client assertion.
const clientAssertionJTIMaxLen = 256

// assertionAudiences are the aud values a client assertion may name for
// this server: its issuer, its token endpoint and its PAR endpoint. RFC
// 9126 §2 asks a PAR endpoint to accept all three, OIDC Core §9 suggests
// the token endpoint, and RFC 7523's successor draft and client libraries
// (oauth4webapi) send the issuer; every one of them names this server and
// no other.
func assertionAudiences(issuer string) []string {
	return []string{issuer, issuer + pathToken, issuer + pathPAR}
}

// isHMACAssertion reports whether a client assertion is MACed (so
// client_secret_jwt), by its header alone.
func isHMACAssertion(form url.Values) bool {
	if form.Get("client_assertion_type") != clientAssertionType {
		return false
	}
	tok, err := jwt.ParseSigned(form.Get("client_assertion"))
	return err == nil && len(tok.Headers) == 1 && slices.Contains(hmacAssertionAlgs, tok.Headers[0].Algorithm)
}

// secretJWTAuth authenticates a client_secret_jwt client. Every refusal
// is 401 invalid_client, and none tells an unauthenticated caller whether
// the client exists or which method it is registered for; a storage
// failure keeps its own answer (503).
type secretJWTAuth struct {
	store     fosite.Storage
	audiences []string
	now       func() time.Time
}

func (a secretJWTAuth) authenticate(ctx context.Context, form url.Values) (fosite.Client, error) {
	tok, err := jwt.ParseSigned(form.Get("client_assertion"))
	if err != nil {
		return nil, fosite.ErrInvalidClient.WithHint("The 'client_assertion' is not a JWT.")
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, fosite.ErrInvalidClient.WithHint("The 'client_assertion' claims are not valid JSON.")
	}
	id := form.Get("client_id")
	if id == "" {
		id = unverified.Subject
	}
	if id == "" {
		return nil, fosite.ErrInvalidClient.WithHint("The 'client_assertion' has no 'sub' and the request no 'client_id'.")
	}
	client, claims, err := a.verified(ctx, tok, id)
	if err != nil {
		return nil, err
	}
	if err := a.checkClaims(claims, id); err != nil {
		return nil, err
	}
	err = a.store.SetClientAssertionJWT(ctx, claims.ID, claims.Expiry.Time())
	switch {
	case errors.Is(err, fosite.ErrJTIKnown):
		return nil, fosite.ErrInvalidClient.WithHint("The 'jti' of the 'client_assertion' was used before; an assertion is good for one request.")
	case err != nil && !errors.Is(err, storage.ErrUnavailable):
		return nil, errors.Join(storage.ErrUnavailable, err)
	case err != nil:
		return nil, err
	}
	return client, nil
}

// verified returns client id and the assertion's claims once its MAC
// verifies with the client's secret (go-jose compares MACs in constant
// time). A MAC that does not verify is checked once more when the stored
// row has another secret than the (cached) client: a secret just rotated
// on another instance.
func (a secretJWTAuth) verified(ctx context.Context, tok *jwt.JSONWebToken, id string) (fosite.Client, *jwt.Claims, error) {
	refused := fosite.ErrInvalidClient.WithHint("The 'client_assertion' is not MACed with the client's secret.")
	for attempt := 0; ; attempt++ {
		fc, err := a.store.GetClient(ctx, id)
		if errors.Is(err, storage.ErrUnavailable) {
			return nil, nil, err
		}
		if err != nil {
			return nil, nil, fosite.ErrInvalidClient.WithWrap(err)
		}
		c, ok := fc.(*clients.Client)
		if !ok || c.GetTokenEndpointAuthMethod() != clients.AuthMethodSecretJWT || c.JWTSecret == "" {
			return nil, nil, fosite.ErrInvalidClient
		}
		if !clients.JWTSecretFits(c.JWTSecret, tok.Headers[0].Algorithm) {
			return nil, nil, fosite.ErrInvalidClient.WithHintf("The client's secret is too short a key for %s (RFC 7518 §3.2); use HS256.", tok.Headers[0].Algorithm)
		}
		claims := new(jwt.Claims)
		if err := tok.Claims([]byte(c.JWTSecret), claims); err == nil {
			return c, claims, nil
		}
		reloader, ok := a.store.(storage.ClientReloader)
		if attempt > 0 || !ok {
			return nil, nil, refused
		}
		changed, err := reloader.ReloadClient(ctx, id)
		if err != nil {
			return nil, nil, err
		}
		if !changed {
			return nil, nil, refused
		}
	}
}

// checkClaims makes RFC 7523 §3's checks of a verified assertion of client
// id; the iat and exp bounds (checkAssertionTimes) were checked before.
func (a secretJWTAuth) checkClaims(c *jwt.Claims, id string) error {
	now := a.now()
	switch {
	case c.Issuer != id || c.Subject != id:
		return fosite.ErrInvalidClient.WithHint("The 'client_assertion' must have 'iss' and 'sub' both the client's id.")
	case !slices.ContainsFunc(a.audiences, func(aud string) bool { return c.Audience.Contains(aud) }):
		return fosite.ErrInvalidClient.WithHint("The 'client_assertion' 'aud' must name this server: its issuer or token endpoint.")
	case c.Expiry == nil:
		return fosite.ErrInvalidClient.WithHint("The 'client_assertion' has no 'exp'.")
	case !now.Before(c.Expiry.Time()):
		return fosite.ErrInvalidClient.WithHint("The 'client_assertion' has expired.")
	case c.NotBefore != nil && c.NotBefore.Time().After(now.Add(assertionClockLeeway)):
		return fosite.ErrInvalidClient.WithHint("The 'client_assertion' is not valid yet ('nbf').")
	case c.ID == "":
		return fosite.ErrInvalidClient.WithHint("The 'client_assertion' has no 'jti'.")
	case len(c.ID) > clientAssertionJTIMaxLen:
		return fosite.ErrInvalidClient.WithHint("The 'jti' of the 'client_assertion' is too long.")
	}
	return nil
}
