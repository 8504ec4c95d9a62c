package server

import (
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v3/jwt"
	"github.com/ory/fosite"
)

// Time bounds of RFC 7523 assertions, checked before their signature or
// jti is looked at. fosite checks exp - iat of a grant assertion and
// refuses a client assertion whose iat is ahead of its clock, but neither
// bounds how far ahead exp is from now: an assertion with iat ten years
// ahead (and exp a minute after it) passed the grant's check, and a client
// assertion with exp ten years ahead was taken. Each would then be good
// for years if it leaked, and its jti kept until exp.
const (
	// assertionClockLeeway is how far ahead of this server's clock an
	// assertion's iat may be: the issuer's clock may run a little fast.
	assertionClockLeeway = time.Minute
	// clientAssertionMaxAhead caps exp - now of a private_key_jwt client
	// assertion: one is minted for one request (OIDC Core §9), so ten
	// minutes covers any clock skew and retry. A grant assertion may be
	// good for jwtBearerMaxLifetime.
	clientAssertionMaxAhead = 10 * time.Minute
)

// checkAssertionTimes refuses an assertion whose iat is more than the
// leeway ahead of now, or whose exp is more than maxAhead (plus the leeway)
// ahead. The claims are read without verifying the signature: the check
// only refuses, and a malformed assertion is left to fosite, which
// verifies everything else. refuse makes the error of the caller's flow.
func checkAssertionTimes(assertion string, now time.Time, maxAhead time.Duration, refuse func(hint string) error) error {
	tok, err := jwt.ParseSigned(assertion)
	if err != nil {
		return nil
	}
	var c jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
		return nil
	}
	if c.IssuedAt != nil && c.IssuedAt.Time().After(now.Add(assertionClockLeeway)) {
		return refuse(fmt.Sprintf("The assertion's 'iat' is more than %s ahead of this server's clock.", assertionClockLeeway))
	}
	if c.Expiry != nil && c.Expiry.Time().After(now.Add(maxAhead+assertionClockLeeway)) {
		return refuse(fmt.Sprintf("The assertion's 'exp' is more than %s ahead; mint a fresh, short-lived assertion for each request.", maxAhead))
	}
	return nil
}

func refuseGrantAssertion(hint string) error { return fosite.ErrInvalidGrant.WithHint(hint) }

func refuseClientAssertion(hint string) error { return fosite.ErrInvalidClient.WithHint(hint) }
