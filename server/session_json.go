package server

import (
	"encoding/json"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/token/jwt"
)

// The stored form of a grantSession, written once per token and read on
// every introspection, revocation and refresh. encoding/json writes every
// field of fosite's openid.DefaultSession, most of them empty for a token
// endpoint's grant (a client_credentials session is 387 bytes, four of
// them zero times that each cost a time.Parse to read back). The lean form
// leaves out the zero leaves of the ID token claims and the empty strings,
// and decodes, with the decoder the store already uses, into exactly the
// session the full form gives: a left-out key leaves the field as a fresh
// session has it, which is its zero value (sessionJSONRoundTrip in the
// tests holds this for each field). Two exceptions are written even when
// zero, because a fresh session does not have them at zero: the claims and
// headers pointers (null or an object) and "rat", which
// openid.NewDefaultSession sets to the time of decoding.

// leanClaims is jwt.IDTokenClaims field for field (so one converts to the
// other), with omitzero on every leaf but rat.
type leanClaims struct {
	JTI                                 string                 `json:"jti,omitzero"`
	Issuer                              string                 `json:"iss,omitzero"`
	Subject                             string                 `json:"sub,omitzero"`
	Audience                            []string               `json:"aud,omitzero"`
	Nonce                               string                 `json:"nonce,omitzero"`
	ExpiresAt                           time.Time              `json:"exp,omitzero"`
	IssuedAt                            time.Time              `json:"iat,omitzero"`
	RequestedAt                         time.Time              `json:"rat"`
	AuthTime                            time.Time              `json:"auth_time,omitzero"`
	AccessTokenHash                     string                 `json:"at_hash,omitzero"`
	AuthenticationContextClassReference string                 `json:"acr,omitzero"`
	AuthenticationMethodsReferences     []string               `json:"amr,omitzero"`
	CodeHash                            string                 `json:"c_hash,omitzero"`
	Extra                               map[string]interface{} `json:"ext,omitzero"`
}

// leanHeaders is jwt.Headers with an empty Extra left out.
type leanHeaders struct {
	Extra map[string]interface{} `json:"extra,omitzero"`
}

// ownFields is grantSession without its methods: encoding/json writes its
// fields as they are, every one grantSession has or will have.
type ownFields grantSession

// MarshalJSON writes the lean form of g: the fields of the embedded
// openid.DefaultSession are shadowed by lean ones of the same JSON names
// (encoding/json takes the shallower field), and every field of
// grantSession's own is written by encoding/json as declared, so a field
// added to grantSession is stored without a change here.
func (g *grantSession) MarshalJSON() ([]byte, error) {
	d := g.DefaultSession
	if d == nil {
		// encoding/json writes none of a nil embedded struct's keys.
		return json.Marshal((*ownFields)(g))
	}
	out := struct {
		*ownFields
		Claims    *leanClaims                    `json:"id_token_claims"`
		Headers   *leanHeaders                   `json:"headers"`
		ExpiresAt map[fosite.TokenType]time.Time `json:"expires_at,omitzero"`
		Username  string                         `json:"username,omitzero"`
		Subject   string                         `json:"subject,omitzero"`
	}{ownFields: (*ownFields)(g), ExpiresAt: d.ExpiresAt, Username: d.Username, Subject: d.Subject}
	if d.Claims != nil {
		c := leanClaims(*d.Claims)
		out.Claims = &c
	}
	if d.Headers != nil {
		out.Headers = &leanHeaders{Extra: d.Headers.Extra}
	}
	return json.Marshal(out)
}

// Compile-time check that leanClaims stays convertible: a field added to
// fosite's claims breaks the build here instead of being dropped.
var _ = leanClaims(jwt.IDTokenClaims{})
