package server

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"
	"github.com/stretchr/testify/require"
)

// fullGrantSession is grantSession without its MarshalJSON: encoding/json's
// form of every field, as stored before the lean form.
type fullGrantSession grantSession

// TestSessionJSONRoundTrip: the lean stored form of a grant session
// decodes, into the fresh session a reader passes, to exactly what the
// full form decodes to, for sessions with every field set, none set, and
// nil or empty parts; and it is shorter.
func TestSessionJSONRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 7, 30, 0, 123456789, time.UTC)
	// fresh is what a reader decodes into; its "rat" is fixed so two
	// decodes compare equal.
	fresh := func() *grantSession {
		g := newGrantSession()
		g.Claims.RequestedAt = t0.Add(-time.Hour)
		return g
	}
	issued := func() *grantSession {
		g := newGrantSession()
		g.Claims.RequestedAt = t0
		g.Subject = "svc"
		g.SetExpiresAt(fosite.AccessToken, t0.Add(time.Hour))
		return g
	}
	everything := func() *grantSession {
		g := issued()
		g.Username = "alice"
		g.SetExpiresAt(fosite.RefreshToken, t0.Add(24*time.Hour))
		g.Claims = &jwt.IDTokenClaims{
			JTI: "j", Issuer: "https://issuer", Subject: "alice", Audience: []string{"a", "b"}, Nonce: "n",
			ExpiresAt: t0.Add(time.Hour), IssuedAt: t0, RequestedAt: t0, AuthTime: t0.Add(-time.Minute),
			AccessTokenHash: "ath", AuthenticationContextClassReference: "urn:latch:acr:mfa",
			AuthenticationMethodsReferences: []string{"pwd", "otp"}, CodeHash: "ch",
			Extra: map[string]interface{}{"sid": "s1", "n": 1.5, "nested": map[string]interface{}{"k": "v"}},
		}
		g.Headers = &jwt.Headers{Extra: map[string]interface{}{"kid": "k1"}}
		g.DPoPJKT, g.RefreshJKT = "jkt-a", "jkt-r"
		g.Connector, g.Exchanged = "corp-ldap", true
		g.Act = map[string]any{"sub": "svc", "act": map[string]any{"sub": "earlier"}}
		return g
	}
	cases := map[string]func() *grantSession{
		"new":        newGrantSession,
		"issued":     issued,
		"everything": everything,
		"zero claims": func() *grantSession {
			g := issued()
			g.Claims = &jwt.IDTokenClaims{}
			return g
		},
		"nil claims and headers": func() *grantSession {
			g := issued()
			g.Claims, g.Headers = nil, nil
			return g
		},
		"empty maps and lists": func() *grantSession {
			g := issued()
			g.ExpiresAt = map[fosite.TokenType]time.Time{}
			g.Claims.Extra, g.Claims.Audience, g.Claims.AuthenticationMethodsReferences = map[string]interface{}{}, []string{}, []string{}
			g.Headers.Extra = map[string]interface{}{}
			return g
		},
		"no default session": func() *grantSession { return &grantSession{DPoPJKT: "jkt", Connector: "c"} },
		"default session without claims": func() *grantSession {
			return &grantSession{DefaultSession: &openid.DefaultSession{Subject: "x"}}
		},
	}
	for name, make := range cases {
		t.Run(name, func(t *testing.T) {
			g := make()
			full, err := json.Marshal((*fullGrantSession)(g))
			require.NoError(t, err)
			lean, err := json.Marshal(g)
			require.NoError(t, err)
			require.LessOrEqual(t, len(lean), len(full), "lean %s\nfull %s", lean, full)

			fromFull, fromLean := fresh(), fresh()
			require.NoError(t, json.Unmarshal(full, fromFull))
			require.NoError(t, json.Unmarshal(lean, fromLean))
			require.Equal(t, fromFull, fromLean, "lean %s\nfull %s", lean, full)
		})
	}
	// Every field of grantSession's own is in the lean form: everything
	// sets each, so a field added without a value here fails.
	lean, err := json.Marshal(everything())
	require.NoError(t, err)
	var keys map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(lean, &keys))
	rt := reflect.TypeOf(grantSession{})
	for i := range rt.NumField() {
		f := rt.Field(i)
		if f.Anonymous || !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		require.Contains(t, keys, name, "grantSession.%s is not in the lean form (or not set in everything)", f.Name)
	}

	// What it is for: a client_credentials grant's session.
	full, _ := json.Marshal((*fullGrantSession)(issued()))
	lean, _ = json.Marshal(issued())
	require.Less(t, len(lean), len(full)/2, "lean %s", lean)
}
