package server_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v3"
	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/server"
	"github.com/latchauth/latch/storage"
)

// accessJWT is a JWT access token checked against the server's JWKS.
type accessJWT struct {
	raw    string
	header map[string]any
	claims map[string]any
}

// verifyAccessJWT verifies raw with the published JWKS, as a resource
// server would (go-oidc's RemoteKeySet, then go-jose with the key the kid
// names), and checks the RFC 9068 header: typ at+jwt, the kid of a
// published key, and that key's alg.
func verifyAccessJWT(t *testing.T, ts *testServer, raw string) accessJWT {
	t.Helper()
	require.Equal(t, 2, strings.Count(raw, "."), "a compact JWT: %s", raw)
	require.False(t, strings.HasPrefix(raw, "ory_"), "not an opaque token")
	ctx := oidc.ClientContext(t.Context(), ts.http)
	payload, err := oidc.NewRemoteKeySet(ctx, ts.URL+"/.well-known/jwks.json").VerifySignature(ctx, raw)
	require.NoError(t, err, "the JWKS verifies the access token")
	var claims map[string]any
	require.NoError(t, json.Unmarshal(payload, &claims))

	header := jwtHeader(t, raw)
	require.Equal(t, "at+jwt", header["typ"], "RFC 9068 §2.1 typ")
	kid, _ := header["kid"].(string)
	require.NotEmpty(t, kid, "a kid")
	set := jwks(t, ts)
	keys := set.Key(kid)
	require.Len(t, keys, 1, "the kid names one published key")
	require.Equal(t, keys[0].Algorithm, header["alg"], "alg is the key's")
	require.Equal(t, "RS256", header["alg"])
	jws, err := jose.ParseSigned(raw)
	require.NoError(t, err)
	_, err = jws.Verify(keys[0].Key)
	require.NoError(t, err, "go-jose verifies with the key of the kid")
	return accessJWT{raw: raw, header: header, claims: claims}
}

func jwks(t *testing.T, ts *testServer) jose.JSONWebKeySet {
	t.Helper()
	r := ts.get(t, "/.well-known/jwks.json")
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	var set jose.JSONWebKeySet
	require.NoError(t, json.Unmarshal(r.Body, &set))
	return set
}

func isOpaque(tok string) bool {
	return strings.HasPrefix(tok, "ory_at_") && strings.Count(tok, ".") == 1
}

// requireTime checks that a NumericDate claim lies within [from, to]
// (whole seconds) and returns it.
func requireTime(t *testing.T, claims map[string]any, name string, from, to time.Time) int64 {
	t.Helper()
	v, ok := claims[name].(float64)
	require.True(t, ok, "claim %s is a number: %v", name, claims)
	got := int64(v)
	require.GreaterOrEqual(t, got, from.Unix()-1, "%s not before %s", name, from)
	require.LessOrEqual(t, got, to.Unix()+1, "%s not after %s", name, to)
	return got
}

// addClient registers c on ts, with a generated secret that ts.as uses.
// Call it before any parallel use of ts.
func addClient(t *testing.T, ts *testServer, c *clients.Client) {
	t.Helper()
	m := &clients.Manager{Store: ts.Store, Hasher: clients.NewHasher(10)}
	secret, err := m.Create(context.Background(), c, "")
	require.NoError(t, err, "create client %s", c.ID)
	ts.secrets[c.ID] = secret
}

func ccClient(id, format string, audience ...string) *clients.Client {
	return &clients.Client{ID: id, TokenEndpointAuthMethod: clients.AuthMethodBasic, AccessTokenFormat: format,
		GrantTypes: []string{"client_credentials"}, Scopes: []string{"read", "write"}, Audience: audience}
}

func revokeOK(t *testing.T, ts *testServer, clientID, token, hint string) {
	t.Helper()
	fields := map[string]string{"token": token}
	if hint != "" {
		fields["token_type_hint"] = hint
	}
	r := ts.post(t, "/oauth2/revoke", "form", fields, ts.as(clientID))
	require.Equal(t, http.StatusOK, r.Status, "revoke: %s", r.Body)
}

func requireInactive(t *testing.T, ts *testServer, token string) {
	t.Helper()
	r := ts.introspect(t, token)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	requireJSONEqual(t, `{"active":false}`, r.Body)
}

func userinfo(t *testing.T, ts *testServer, token string) response {
	t.Helper()
	return ts.raw(t, http.MethodGet, "/userinfo", "", "", bearerAuth(token))
}

// TestJWTAccessTokenClientCredentials: with tokens.access_token_format jwt,
// client_credentials answers an RFC 9068 JWT, which the JWKS verifies,
// introspection describes like an opaque token, and revocation turns
// inactive (while its signature, necessarily, still verifies).
func TestJWTAccessTokenClientCredentials(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withAccessTokenFormat("jwt"), withLifespans(30*time.Minute, time.Hour))

	before := time.Now()
	r := ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "client_credentials", "scope": "read write"}, ts.as("basic-client"))
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	after := time.Now()
	answer := r.json(t)
	require.Equal(t, "bearer", strings.ToLower(answer["token_type"].(string)))
	require.InDelta(t, 1800, answer["expires_in"], 2)
	require.NotContains(t, answer, "refresh_token")

	at := verifyAccessJWT(t, ts, answer["access_token"].(string))
	c := at.claims
	require.Equal(t, ts.URL, c["iss"])
	require.Equal(t, "basic-client", c["sub"], "the client acts for itself")
	require.Equal(t, []any{"basic-client"}, c["aud"], "no audience granted: the client is the audience")
	require.Equal(t, "basic-client", c["client_id"])
	require.Equal(t, "read write", c["scope"], "RFC 9068 §2.2.3: a space-separated string")
	require.NotContains(t, c, "scp")
	require.NotEmpty(t, c["jti"])
	iat := requireTime(t, c, "iat", before, after)
	exp := requireTime(t, c, "exp", before.Add(30*time.Minute), after.Add(30*time.Minute))
	require.InDelta(t, 1800, exp-iat, 2)
	require.NotContains(t, c, "auth_time", "no user signed in")

	// Another token is another JWT, with another jti.
	other := verifyAccessJWT(t, ts, ts.clientCredentials(t, "basic-client", "read"))
	require.NotEqual(t, c["jti"], other.claims["jti"])
	require.Equal(t, "read", other.claims["scope"])

	// Introspection: active, with the token's own fields.
	in := ts.introspect(t, at.raw)
	require.Equal(t, http.StatusOK, in.Status, "%s", in.Body)
	got := in.json(t)
	require.Equal(t, true, got["active"])
	require.Equal(t, "basic-client", got["client_id"])
	require.Equal(t, "basic-client", got["sub"])
	require.Equal(t, "read write", got["scope"])
	require.Equal(t, "access_token", got["token_use"])
	require.Equal(t, "Bearer", got["token_type"])
	require.Equal(t, ts.URL, got["iss"])
	require.InDelta(t, float64(exp), got["exp"], 1, "introspection and the JWT agree on exp")
	require.InDelta(t, float64(iat), got["iat"], 1, "introspection and the JWT agree on iat")
	// With the access_token hint, and with the refresh_token hint (fosite
	// falls back to access tokens).
	for _, hint := range []string{"access_token", "refresh_token"} {
		in = ts.post(t, "/oauth2/introspect", "form", map[string]string{"token": at.raw, "token_type_hint": hint}, ts.as("other-client"))
		require.Equal(t, true, in.json(t)["active"], "hint %s: %s", hint, in.Body)
	}

	// A JWT access token also authenticates an introspection caller.
	in = ts.post(t, "/oauth2/introspect", "form", map[string]string{"token": other.raw}, bearerAuth(at.raw))
	require.Equal(t, http.StatusOK, in.Status, "%s", in.Body)
	require.Equal(t, true, in.json(t)["active"])

	// Another client may not revoke it; its owner may.
	r = ts.post(t, "/oauth2/revoke", "form", map[string]string{"token": at.raw}, ts.as("post-client"))
	require.Equal(t, http.StatusBadRequest, r.Status, "%s", r.Body)
	require.True(t, ts.active(t, at.raw))
	revokeOK(t, ts, "basic-client", at.raw, "access_token")
	requireInactive(t, ts, at.raw)
	// The signature cannot know: a resource server that only checks it
	// accepts the token until exp. Introspection is how to see revocation.
	verifyAccessJWT(t, ts, at.raw)
	// A revoked JWT no longer authenticates an introspection caller.
	in = ts.post(t, "/oauth2/introspect", "form", map[string]string{"token": other.raw}, bearerAuth(at.raw))
	require.Equal(t, http.StatusUnauthorized, in.Status, "%s", in.Body)
	require.True(t, ts.active(t, other.raw), "revoking one token leaves the other")
	// Revoking again is a no-op (RFC 7009 §2.2), also with no hint.
	revokeOK(t, ts, "basic-client", at.raw, "")
	revokeOK(t, ts, "basic-client", other.raw, "")
	requireInactive(t, ts, other.raw)
}

// TestJWTAccessTokenCodeFlow: a user's JWT access token names the user and
// when they signed in; the refresh token stays opaque and refreshes to a
// new JWT; userinfo takes it while it is active; revoking the refresh
// token revokes it too.
func TestJWTAccessTokenCodeFlow(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withAccessTokenFormat("jwt"))
	b := ts.newBrowser(t)
	signIn := time.Now()
	tk := codeFlow(t, b, "web-client", nil)
	exchanged := time.Now()

	at := verifyAccessJWT(t, ts, tk.Access)
	c := at.claims
	require.Equal(t, ts.URL, c["iss"])
	require.Equal(t, "alice", c["sub"])
	require.Equal(t, "web-client", c["client_id"])
	require.Equal(t, []any{"web-client"}, c["aud"])
	require.Equal(t, "openid profile email offline_access", c["scope"])
	require.NotEmpty(t, c["jti"])
	authTime := requireTime(t, c, "auth_time", signIn, exchanged)
	iat := requireTime(t, c, "iat", signIn, exchanged)
	exp := requireTime(t, c, "exp", signIn.Add(time.Hour), exchanged.Add(time.Hour))
	require.InDelta(t, 3600, exp-iat, 2)
	require.NotContains(t, c, "email", "user claims are for userinfo and the ID token")

	require.True(t, strings.HasPrefix(tk.Refresh, "ory_rt_"), "the refresh token is opaque: %s", tk.Refresh)
	idt, idClaims := ts.verifyIDToken(t, tk.ID, "web-client")
	require.InDelta(t, idClaims["auth_time"], float64(authTime), 0, "the ID token and the access token agree on auth_time")
	if idt.AccessTokenHash != "" {
		require.NoError(t, idt.VerifyAccessToken(tk.Access), "at_hash covers the JWT")
	}

	r := userinfo(t, ts, tk.Access)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, "alice", r.json(t)["sub"])
	got := ts.introspect(t, tk.Access).json(t)
	require.Equal(t, true, got["active"])
	require.Equal(t, "alice", got["sub"])
	require.Equal(t, "alice", got["username"])
	require.Equal(t, "web-client", got["client_id"])

	// The refresh token refreshes to a new JWT; the old one is retired.
	g := ts.refreshOK(t, "web-client", tk.Refresh)
	require.True(t, strings.HasPrefix(g.Refresh, "ory_rt_"))
	next := verifyAccessJWT(t, ts, g.Access)
	require.NotEqual(t, c["jti"], next.claims["jti"])
	require.Equal(t, "alice", next.claims["sub"])
	require.Equal(t, c["scope"], next.claims["scope"])
	require.Equal(t, float64(authTime), next.claims["auth_time"], "auth_time is the sign-in's, not the refresh's")
	requireInactive(t, ts, tk.Access)
	require.Equal(t, http.StatusUnauthorized, userinfo(t, ts, tk.Access).Status, "the retired JWT is refused")
	require.Equal(t, http.StatusOK, userinfo(t, ts, g.Access).Status)

	// A narrowing refresh narrows the JWT's scope.
	r = ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "refresh_token", "refresh_token": g.Refresh, "scope": "openid"}, ts.as("web-client"))
	narrowed := tokensOf(t, r)
	require.Equal(t, "openid", verifyAccessJWT(t, ts, narrowed.Access).claims["scope"])
	require.True(t, ts.active(t, narrowed.Access))

	// Revoking the refresh token revokes the grant's access token too.
	revokeOK(t, ts, "web-client", narrowed.Refresh, "refresh_token")
	requireInactive(t, ts, narrowed.Access)
	requireInactive(t, ts, narrowed.Refresh)
	r = userinfo(t, ts, narrowed.Access)
	require.Equal(t, http.StatusUnauthorized, r.Status, "%s", r.Body)
	requireChallenge(t, r, challengeBearer)

	// Revoking a JWT access token revokes the grant's refresh token.
	tk = codeFlow(t, b, "web-client", nil)
	verifyAccessJWT(t, ts, tk.Access)
	revokeOK(t, ts, "web-client", tk.Access, "")
	requireInactive(t, ts, tk.Access)
	requireInactive(t, ts, tk.Refresh)
	r = ts.refresh(t, "web-client", tk.Refresh)
	require.Equal(t, http.StatusBadRequest, r.Status, "%s", r.Body)
}

// TestJWTAccessTokenPerClient: a client's access_token_format overrides
// the server's, either way; an empty one follows the server's.
func TestJWTAccessTokenPerClient(t *testing.T) {
	t.Parallel()
	t.Run("global opaque, one client jwt", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t) // the default: opaque
		addClient(t, ts, ccClient("jwt-client", "jwt", "https://api.example.com"))
		addClient(t, ts, ccClient("default-client", ""))

		for _, id := range []string{"basic-client", "default-client"} {
			tok := ts.clientCredentials(t, id, "read")
			require.True(t, isOpaque(tok), "%s gets an opaque token: %s", id, tok)
			require.True(t, ts.active(t, tok))
		}
		tok := ts.clientCredentials(t, "jwt-client", "read")
		at := verifyAccessJWT(t, ts, tok)
		require.Equal(t, "jwt-client", at.claims["client_id"])
		require.Equal(t, []any{"jwt-client"}, at.claims["aud"])
		require.True(t, ts.active(t, tok))

		// A granted audience is the aud claim.
		r := ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "client_credentials", "scope": "read", "audience": "https://api.example.com"}, ts.as("jwt-client"))
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		withAud := verifyAccessJWT(t, ts, r.json(t)["access_token"].(string))
		require.Equal(t, []any{"https://api.example.com"}, withAud.claims["aud"])
		require.Equal(t, []any{"https://api.example.com"}, ts.introspect(t, withAud.raw).json(t)["aud"])

		revokeOK(t, ts, "jwt-client", tok, "")
		requireInactive(t, ts, tok)
		require.True(t, ts.active(t, withAud.raw))
	})
	t.Run("global jwt, one client opaque", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t, withAccessTokenFormat("jwt"))
		addClient(t, ts, ccClient("opaque-client", "opaque"))
		addClient(t, ts, ccClient("default-client", ""))

		tok := ts.clientCredentials(t, "opaque-client", "read")
		require.True(t, isOpaque(tok), "opaque-client gets an opaque token: %s", tok)
		require.True(t, ts.active(t, tok))
		for _, id := range []string{"basic-client", "default-client"} {
			jwtTok := ts.clientCredentials(t, id, "read")
			require.Equal(t, id, verifyAccessJWT(t, ts, jwtTok).claims["client_id"])
			require.True(t, ts.active(t, jwtTok))
			revokeOK(t, ts, id, jwtTok, "access_token")
			requireInactive(t, ts, jwtTok)
		}
		revokeOK(t, ts, "opaque-client", tok, "access_token")
		requireInactive(t, ts, tok)
	})
}

// TestJWTAccessTokenForgery: a JWT access token that is not exactly one the
// server issued is inactive at introspection and refused by userinfo —
// whatever its signature, its alg, or its claims.
func TestJWTAccessTokenForgery(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withAccessTokenFormat("jwt"))
	tk := codeFlow(t, ts.newBrowser(t), "web-client", nil)
	genuine := verifyAccessJWT(t, ts, tk.Access)
	parts := strings.Split(genuine.raw, ".")
	kid := genuine.header["kid"].(string)

	enc := func(v any) string {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	tampered := map[string]any{}
	for k, v := range genuine.claims {
		tampered[k] = v
	}
	tampered["sub"] = "bob"
	tampered["scope"] = "openid profile email offline_access admin"
	noneHeader := enc(map[string]any{"alg": "none", "typ": "at+jwt", "kid": kid})

	// Signed with another RSA key under the genuine kid.
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	sign := func(alg jose.SignatureAlgorithm, key any) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key},
			(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", kid))
		require.NoError(t, err)
		claims, err := json.Marshal(genuine.claims)
		require.NoError(t, err)
		obj, err := s.Sign(claims)
		require.NoError(t, err)
		out, err := obj.CompactSerialize()
		require.NoError(t, err)
		return out
	}
	// HS256 keyed with the published public key, the classic confusion.
	set := jwks(t, ts)
	pub, err := json.Marshal(set.Key(kid)[0])
	require.NoError(t, err)
	randomSig := make([]byte, 256)
	_, err = rand.Read(randomSig)
	require.NoError(t, err)

	forged := map[string]string{
		"random signature":                    parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(randomSig),
		"signature of another token":          parts[0] + "." + parts[1] + "." + strings.Split(verifyAccessJWT(t, ts, codeFlow(t, ts.newBrowser(t), "web-client", nil).Access).raw, ".")[2],
		"tampered claims, genuine signature":  parts[0] + "." + enc(tampered) + "." + parts[2],
		"alg none, no signature":              noneHeader + "." + parts[1] + ".",
		"alg none, genuine signature":         noneHeader + "." + parts[1] + "." + parts[2],
		"alg none, tampered claims":           noneHeader + "." + enc(tampered) + ".",
		"another key under the genuine kid":   sign(jose.RS256, otherKey),
		"HS256 keyed with the public key":     sign(jose.HS256, pub),
		"genuine header and claims, no sig":   parts[0] + "." + parts[1] + ".",
		"two parts":                           parts[0] + "." + parts[1],
		"genuine with a trailing part":        genuine.raw + ".x",
		"genuine behind an opaque prefix":     "ory_at_" + genuine.raw,
		"tampered header (typ JWT), same sig": enc(map[string]any{"alg": "RS256", "typ": "JWT", "kid": kid}) + "." + parts[1] + "." + parts[2],
	}
	for name, tok := range forged {
		t.Run(name, func(t *testing.T) {
			require.NotEqual(t, genuine.raw, tok)
			requireInactive(t, ts, tok)
			r := userinfo(t, ts, tok)
			require.Equal(t, http.StatusUnauthorized, r.Status, "%s", r.Body)
			requireChallenge(t, r, challengeBearer)
			// Nor may it authenticate an introspection caller.
			r = ts.post(t, "/oauth2/introspect", "form", map[string]string{"token": genuine.raw}, bearerAuth(tok))
			require.Equal(t, http.StatusUnauthorized, r.Status, "%s", r.Body)
		})
	}
	// None of that disturbed the genuine token.
	require.True(t, ts.active(t, genuine.raw))
	require.Equal(t, http.StatusOK, userinfo(t, ts, genuine.raw).Status)
}

// TestJWTAccessTokenKeyRotation: a JWT access token is verified with the
// published key its kid names, so it survives a rotation while the retired
// key stays published, and dies with a key unpublished at once.
func TestJWTAccessTokenKeyRotation(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withAccessTokenFormat("jwt"))
	keys := serverOf(t, ts).Keys()
	first := verifyAccessJWT(t, ts, ts.clientCredentials(t, "basic-client", "read"))

	require.NoError(t, keys.Rotate(context.Background(), time.Hour))
	second := verifyAccessJWT(t, ts, ts.clientCredentials(t, "basic-client", "read"))
	require.NotEqual(t, first.header["kid"], second.header["kid"], "signed with the new key at once")
	require.True(t, ts.active(t, first.raw), "the retired key is still published")
	verifyAccessJWT(t, ts, first.raw)

	// A compromised key: unpublished at once, its tokens die with it.
	require.NoError(t, keys.Rotate(context.Background(), 0))
	require.Eventually(t, func() bool { return !ts.active(t, second.raw) }, 5*time.Second, 50*time.Millisecond)
	require.True(t, ts.active(t, first.raw), "the first key stays published for its hour")
	third := verifyAccessJWT(t, ts, ts.clientCredentials(t, "basic-client", "read"))
	require.True(t, ts.active(t, third.raw))
}

// TestAccessTokenFormatConfig: server.New takes "", opaque and jwt only.
func TestAccessTokenFormatConfig(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := storage.Open(ctx, storage.Options{Driver: "sqlite", DSN: filepath.Join(t.TempDir(), "latch.db")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	require.NoError(t, st.Migrate(ctx))
	for _, format := range []string{"", "opaque", "jwt"} {
		_, err := server.New(ctx, server.Config{Issuer: "http://127.0.0.1:1", Store: st, SystemSecret: testSystemSecret, AccessTokenFormat: format})
		require.NoError(t, err, "format %q", format)
	}
	for _, format := range []string{"JWT", "paseto", "opaque "} {
		_, err := server.New(ctx, server.Config{Issuer: "http://127.0.0.1:1", Store: st, SystemSecret: testSystemSecret, AccessTokenFormat: format})
		require.Error(t, err, "format %q", format)
	}
}
