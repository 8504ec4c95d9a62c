package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/go-jose/go-jose/v3/jwt"
	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/storage"
)

// RFC 7523 §2.1: JWT bearer assertions as authorization grants. The
// assertions are built with go-jose, as a real issuer (a CI system, an
// identity provider) would build them.

const (
	grantJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	ciIssuer       = "https://ci.example.com"
	ciSubject      = "deploy-bot"
	idpIssuer      = "https://idp.example.com" // allow_any_subject
	jwtClient      = "jwt-client"              // client_secret_basic, lists the grant
)

// testKey is a signing key of a test issuer or client, with the public
// JWKS to register for it.
type testKey struct {
	private jose.JSONWebKey
	alg     jose.SignatureAlgorithm
}

// newTestKey makes an ES256 (P-256) or RS256 (2048-bit) key with kid; an
// empty kid leaves it out of the JWK and the JWS header.
func newTestKey(t *testing.T, alg jose.SignatureAlgorithm, kid string) testKey {
	t.Helper()
	var priv any
	var err error
	switch alg {
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.RS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		t.Fatalf("no test keys for %s", alg)
	}
	require.NoError(t, err)
	return testKey{private: jose.JSONWebKey{Key: priv, KeyID: kid}, alg: alg}
}

// jwks is the public key set of k, as registered: no "alg", no "use".
func (k testKey) jwks(t *testing.T) json.RawMessage {
	t.Helper()
	pub := k.private.Public()
	require.True(t, pub.Valid())
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}})
	require.NoError(t, err)
	return b
}

func (k testKey) keySet(t *testing.T) *jose.JSONWebKeySet {
	t.Helper()
	var set jose.JSONWebKeySet
	require.NoError(t, json.Unmarshal(k.jwks(t), &set))
	return &set
}

// sign makes a compact JWS of claims with k.
func (k testKey) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.private}, (&jose.SignerOptions{}).WithType("JWT"))
	require.NoError(t, err)
	raw, err := jwt.Signed(signer).Claims(claims).CompactSerialize()
	require.NoError(t, err)
	return raw
}

// hs256 signs claims with a shared secret (client_secret_jwt, which Latch
// does not support).
func hs256(t *testing.T, secret []byte, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret}, nil)
	require.NoError(t, err)
	raw, err := jwt.Signed(signer).Claims(claims).CompactSerialize()
	require.NoError(t, err)
	return raw
}

// assertionClaims are valid claims from iss about sub for ts's token
// endpoint, with a fresh jti, issued now and expiring in five minutes.
func (ts *testServer) assertionClaims(iss, sub string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": iss, "sub": sub, "aud": ts.URL + "/oauth2/token",
		"jti": rand.Text(), "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	}
}

// with returns a copy of claims with changes; a nil value removes a claim.
func with(claims map[string]any, changes map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range claims {
		out[k] = v
	}
	for k, v := range changes {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// addClient registers c on ts and remembers its generated secret.
func (ts *testServer) addClient(t *testing.T, c *clients.Client) {
	t.Helper()
	m := &clients.Manager{Store: ts.Store, Hasher: clients.NewHasher(100)}
	secret, err := m.Create(context.Background(), c, "")
	require.NoError(t, err, "create client %s", c.ID)
	if secret != "" {
		ts.secrets[c.ID] = secret
	}
}

func (ts *testServer) trust(t *testing.T, ti storage.TrustedIssuer) {
	t.Helper()
	require.NoError(t, ts.Store.UpsertTrustedIssuer(context.Background(), ti))
}

// jwtBearerFixture is a server trusting ciIssuer for ciSubject (ES256 key
// with a kid, scopes deploy and read) and idpIssuer for any subject (RS256
// key without kid, scope read), with jwtClient allowed the grant.
type jwtBearerFixture struct {
	*testServer
	ci, idp testKey
}

func newJWTBearerFixture(t *testing.T, opts ...option) jwtBearerFixture {
	t.Helper()
	ts := newTestServer(t, opts...)
	f := jwtBearerFixture{testServer: ts, ci: newTestKey(t, jose.ES256, "ci-1"), idp: newTestKey(t, jose.RS256, "")}
	ts.trust(t, storage.TrustedIssuer{Issuer: ciIssuer, Subject: ciSubject, Scopes: []string{"deploy", "read", "admin"}, JWKS: f.ci.jwks(t)})
	ts.trust(t, storage.TrustedIssuer{Issuer: idpIssuer, AllowAnySubject: true, Scopes: []string{"read"}, JWKS: f.idp.jwks(t)})
	ts.addClient(t, &clients.Client{ID: jwtClient, TokenEndpointAuthMethod: clients.AuthMethodBasic,
		GrantTypes: []string{grantJWTBearer}, Scopes: []string{"deploy", "read", "write"}, Audience: []string{"https://api.example.com"}})
	return f
}

// grant sends a JWT bearer grant request with assertion as jwtClient.
func (f jwtBearerFixture) grant(t *testing.T, assertion, scope string) response {
	t.Helper()
	return f.grantAs(t, f.as(jwtClient), assertion, map[string]string{"scope": scope})
}

func (f jwtBearerFixture) grantAs(t *testing.T, a auth, assertion string, extra map[string]string) response {
	t.Helper()
	fields := map[string]string{"grant_type": grantJWTBearer, "assertion": assertion}
	for k, v := range extra {
		if v != "" {
			fields[k] = v
		}
	}
	return f.post(t, "/oauth2/token", "form", fields, a)
}

func TestJWTBearerGrant(t *testing.T) {
	f := newJWTBearerFixture(t)

	r := f.grant(t, f.ci.sign(t, f.assertionClaims(ciIssuer, ciSubject)), "deploy")
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Contains(t, r.Header.Get("Cache-Control"), "no-store")
	body := r.json(t)
	require.Equal(t, "bearer", body["token_type"])
	require.Equal(t, "deploy", body["scope"])
	require.NotContains(t, body, "refresh_token", "RFC 7523 §2.1: no refresh token")
	require.NotContains(t, body, "id_token")
	tok, _ := body["access_token"].(string)
	require.NotEmpty(t, tok)

	in := f.introspect(t, tok)
	require.Equal(t, http.StatusOK, in.Status, "%s", in.Body)
	got := in.json(t)
	require.Equal(t, true, got["active"])
	require.Equal(t, ciSubject, got["sub"], "the subject is the assertion's sub")
	require.Equal(t, "deploy", got["scope"])
	require.Equal(t, jwtClient, got["client_id"])
	require.Equal(t, "access_token", got["token_use"])
	require.NotContains(t, got, "aud", "the assertion's aud (the token endpoint) is not the token's audience")

	t.Run("several scopes and an audience", func(t *testing.T) {
		r := f.grantAs(t, f.as(jwtClient), f.ci.sign(t, f.assertionClaims(ciIssuer, ciSubject)),
			map[string]string{"scope": "deploy read", "audience": "https://api.example.com"})
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		got := f.introspect(t, r.json(t)["access_token"].(string)).json(t)
		require.Equal(t, "deploy read", got["scope"])
		require.Equal(t, []any{"https://api.example.com"}, got["aud"])
	})

	t.Run("no scope", func(t *testing.T) {
		r := f.grant(t, f.ci.sign(t, f.assertionClaims(ciIssuer, ciSubject)), "")
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		got := f.introspect(t, r.json(t)["access_token"].(string)).json(t)
		require.Equal(t, ciSubject, got["sub"])
		require.Equal(t, "", got["scope"])
	})

	t.Run("the token is revocable", func(t *testing.T) {
		r := f.grant(t, f.ci.sign(t, f.assertionClaims(ciIssuer, ciSubject)), "read")
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		tok := r.json(t)["access_token"].(string)
		require.True(t, f.active(t, tok))
		rv := f.post(t, "/oauth2/revoke", "form", map[string]string{"token": tok}, f.as(jwtClient))
		require.Equal(t, http.StatusOK, rv.Status, "%s", rv.Body)
		require.False(t, f.active(t, tok))
	})
}

// TestJWTBearerInvalidAssertion: every assertion that is not valid for
// this server is 400 invalid_grant (RFC 7523 §3.1).
func TestJWTBearerInvalidAssertion(t *testing.T) {
	f := newJWTBearerFixture(t)
	now := time.Now()
	stranger := newTestKey(t, jose.ES256, "ci-1") // same kid, other key
	unknownKid := newTestKey(t, jose.ES256, "ci-2")

	valid := func() map[string]any { return f.assertionClaims(ciIssuer, ciSubject) }
	const (
		noKey     = "No public JWK was registered"
		badSig    = "Unable to verify the integrity"
		badAud    = "MUST contain an 'aud' (audience) claim containing"
		malformed = "Unable to parse"
	)
	tests := []struct {
		name      string
		assertion func() string
		why       string // in error_description
	}{
		{"wrong issuer", func() string {
			return f.ci.sign(t, with(valid(), map[string]any{"iss": "https://evil.example.com"}))
		}, noKey},
		{"untrusted subject", func() string {
			return f.ci.sign(t, with(valid(), map[string]any{"sub": "someone-else"}))
		}, noKey},
		{"another issuer's key", func() string {
			return f.idp.sign(t, valid())
		}, noKey},
		{"wrong audience", func() string {
			return f.ci.sign(t, with(valid(), map[string]any{"aud": "https://other.example.com/oauth2/token"}))
		}, badAud},
		{"the issuer as audience, not the token endpoint", func() string {
			return f.ci.sign(t, with(valid(), map[string]any{"aud": f.URL}))
		}, badAud},
		{"no audience", func() string { return f.ci.sign(t, with(valid(), map[string]any{"aud": nil})) }, "MUST contain an 'aud' (audience) claim."},
		{"expired", func() string {
			return f.ci.sign(t, with(valid(), map[string]any{"iat": now.Add(-10 * time.Minute).Unix(), "exp": now.Add(-time.Minute).Unix()}))
		}, "expired"},
		{"no exp", func() string { return f.ci.sign(t, with(valid(), map[string]any{"exp": nil})) }, "'exp'"},
		{"no iat", func() string { return f.ci.sign(t, with(valid(), map[string]any{"iat": nil})) }, "'iat'"},
		{"exp too far ahead", func() string {
			return f.ci.sign(t, with(valid(), map[string]any{"exp": now.Add(2 * time.Hour).Unix()}))
		}, "'exp' is more than 1h0m0s ahead"},
		{"not yet valid", func() string {
			return f.ci.sign(t, with(valid(), map[string]any{"nbf": now.Add(2 * time.Minute).Unix()}))
		}, "'nbf'"},
		{"missing jti", func() string { return f.ci.sign(t, with(valid(), map[string]any{"jti": nil})) }, "'jti'"},
		{"missing sub", func() string { return f.ci.sign(t, with(valid(), map[string]any{"sub": nil})) }, "'sub'"},
		{"missing iss", func() string { return f.ci.sign(t, with(valid(), map[string]any{"iss": nil})) }, "'iss'"},
		{"signed by an unknown key with a registered kid", func() string { return stranger.sign(t, valid()) }, badSig},
		{"signed by an unknown key with an unknown kid", func() string { return unknownKid.sign(t, valid()) }, noKey},
		{"signed by an unknown key without kid", func() string {
			return newTestKey(t, jose.RS256, "").sign(t, f.assertionClaims(idpIssuer, "anyone"))
		}, noKey},
		{"HMAC-signed", func() string { return hs256(t, []byte("0123456789abcdef0123456789abcdef"), valid()) }, noKey},
		{"not a JWT", func() string { return "not-a-jwt" }, malformed},
		{"tampered payload", func() string {
			good := f.ci.sign(t, valid())
			evil := f.ci.sign(t, with(valid(), map[string]any{"exp": now.Add(30 * time.Minute).Unix()}))
			return headerOf(good) + "." + payloadOf(evil) + "." + signatureOf(good)
		}, badSig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := f.grant(t, tc.assertion(), "deploy")
			requireError(t, r, http.StatusBadRequest, "invalid_grant")
			require.Contains(t, r.json(t)["error_description"], tc.why)
		})
	}

	t.Run("replayed jti", func(t *testing.T) {
		assertion := f.ci.sign(t, valid())
		require.Equal(t, http.StatusOK, f.grant(t, assertion, "deploy").Status)
		r := f.grant(t, assertion, "deploy")
		requireError(t, r, http.StatusBadRequest, "invalid_grant")
		require.Contains(t, r.json(t)["error_description"], "'jti'")
		// A new assertion with the used jti, signed again, is the same replay.
		again := f.ci.sign(t, with(valid(), map[string]any{"jti": claimOf(t, assertion, "jti")}))
		requireError(t, f.grant(t, again, "deploy"), http.StatusBadRequest, "invalid_grant")
	})

	t.Run("a refused assertion does not use up its jti", func(t *testing.T) {
		claims := valid()
		requireError(t, f.grant(t, f.ci.sign(t, claims), "write"), http.StatusBadRequest, "invalid_scope")
		require.Equal(t, http.StatusOK, f.grant(t, f.ci.sign(t, claims), "deploy").Status)
	})

	t.Run("missing assertion", func(t *testing.T) {
		r := f.post(t, "/oauth2/token", "form", map[string]string{"grant_type": grantJWTBearer}, f.as(jwtClient))
		requireError(t, r, http.StatusBadRequest, "invalid_request")
	})
}

// headerOf, payloadOf and signatureOf split a compact JWS.
func jwsPart(raw string, i int) string { return strings.SplitN(raw, ".", 3)[i] }

func headerOf(raw string) string    { return jwsPart(raw, 0) }
func payloadOf(raw string) string   { return jwsPart(raw, 1) }
func signatureOf(raw string) string { return jwsPart(raw, 2) }

// claimOf reads a claim of a JWS without verifying it.
func claimOf(t *testing.T, raw, name string) any {
	t.Helper()
	tok, err := jwt.ParseSigned(raw)
	require.NoError(t, err)
	claims := map[string]any{}
	require.NoError(t, tok.UnsafeClaimsWithoutVerification(&claims))
	return claims[name]
}

// TestJWTBearerScopes: the scopes come from both the trusted issuer and
// the client's registration; a scope outside either is invalid_scope.
func TestJWTBearerScopes(t *testing.T) {
	f := newJWTBearerFixture(t)
	tests := []struct {
		name, scope string
	}{
		{"not allowed for the issuer", "write"},
		{"not allowed for the client", "admin"},
		{"one of several not allowed for the issuer", "deploy write"},
		{"unknown anywhere", "nope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := f.grant(t, f.ci.sign(t, f.assertionClaims(ciIssuer, ciSubject)), tc.scope)
			requireError(t, r, http.StatusBadRequest, "invalid_scope")
		})
	}
	t.Run("an audience the client did not register", func(t *testing.T) {
		r := f.grantAs(t, f.as(jwtClient), f.ci.sign(t, f.assertionClaims(ciIssuer, ciSubject)),
			map[string]string{"scope": "deploy", "audience": "https://elsewhere.example.com"})
		requireError(t, r, http.StatusBadRequest, "invalid_request")
	})
}

// TestJWTBearerAnySubject: an allow_any_subject issuer vouches for any
// sub, and each token is for the sub of its assertion.
func TestJWTBearerAnySubject(t *testing.T) {
	f := newJWTBearerFixture(t)
	for _, sub := range []string{"alice@example.com", "service-42", ciSubject} {
		r := f.grant(t, f.idp.sign(t, f.assertionClaims(idpIssuer, sub)), "read")
		require.Equal(t, http.StatusOK, r.Status, "sub %s: %s", sub, r.Body)
		got := f.introspect(t, r.json(t)["access_token"].(string)).json(t)
		require.Equal(t, sub, got["sub"])
		require.Equal(t, "read", got["scope"])
	}
	t.Run("only the scopes of that issuer", func(t *testing.T) {
		r := f.grant(t, f.idp.sign(t, f.assertionClaims(idpIssuer, "alice@example.com")), "deploy")
		requireError(t, r, http.StatusBadRequest, "invalid_scope")
	})
	t.Run("an exact subject row wins over allow_any_subject", func(t *testing.T) {
		other := newTestKey(t, jose.ES256, "idp-bob")
		f.trust(t, storage.TrustedIssuer{Issuer: idpIssuer, Subject: "bob", Scopes: []string{"deploy"}, JWKS: other.jwks(t)})
		r := f.grant(t, other.sign(t, f.assertionClaims(idpIssuer, "bob")), "deploy")
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		requireError(t, f.grant(t, f.idp.sign(t, f.assertionClaims(idpIssuer, "bob")), "read"), http.StatusBadRequest, "invalid_grant")
	})
}

// TestJWTBearerClient: the client must authenticate (SPEC's clients list
// the grant, so it is a client's grant like any other) and list the grant.
func TestJWTBearerClient(t *testing.T) {
	f := newJWTBearerFixture(t)
	assertion := func() string { return f.ci.sign(t, f.assertionClaims(ciIssuer, ciSubject)) }

	requireError(t, f.grantAs(t, noAuth, assertion(), nil), http.StatusUnauthorized, "invalid_client")
	requireError(t, f.grantAs(t, basicAuth(jwtClient, "wrong"), assertion(), nil), http.StatusUnauthorized, "invalid_client")
	requireError(t, f.grantAs(t, f.as("basic-client"), assertion(), nil), http.StatusBadRequest, "unauthorized_client")
	requireError(t, f.grantAs(t, f.as("public-client"), assertion(), nil), http.StatusBadRequest, "unauthorized_client")
	// The refusals above did not use the grant up: a fresh one still works.
	require.Equal(t, http.StatusOK, f.grant(t, assertion(), "deploy").Status)
}

// TestJWTBearerConcurrentReplay: one assertion sent many times at once
// gives exactly one token; the others are invalid_grant, never a 500.
func TestJWTBearerConcurrentReplay(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend ...option) {
		f := newJWTBearerFixture(t, backend...)
		for _, n := range raceSizes {
			assertion := f.ci.sign(t, f.assertionClaims(ciIssuer, ciSubject))
			answers := f.raceForm(t, n, "/oauth2/token", map[string]string{
				"grant_type": grantJWTBearer, "assertion": assertion, "scope": "deploy",
			}, f.as(jwtClient))
			requireOneWinner(t, answers, http.StatusBadRequest, "invalid_grant")
		}
	})
}

func TestJWTBearerDiscovery(t *testing.T) {
	ts := newTestServer(t)
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		doc := ts.get(t, path).json(t)
		require.Contains(t, doc["grant_types_supported"], grantJWTBearer, path)
		require.Contains(t, doc["token_endpoint_auth_methods_supported"], "private_key_jwt", path)
	}
}
