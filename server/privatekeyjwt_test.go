package server_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/storage"
)

// RFC 7523 §2.2 and OIDC Core §9: private_key_jwt client authentication.

const (
	clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	pkjRSAClient        = "pkj-rsa-client" // RSA key with a kid
	pkjECClient         = "pkj-ec-client"  // P-256 key without kid
)

type privateKeyJWTFixture struct {
	*testServer
	rsa, ec testKey
}

// newPrivateKeyJWTFixture registers two private_key_jwt clients whose
// JWKS carry neither "alg" nor "use", as a client typically registers them.
func newPrivateKeyJWTFixture(t *testing.T, opts ...option) privateKeyJWTFixture {
	t.Helper()
	ts := newTestServer(t, opts...)
	f := privateKeyJWTFixture{testServer: ts, rsa: newTestKey(t, jose.RS256, "rsa-1"), ec: newTestKey(t, jose.ES256, "")}
	for id, k := range map[string]testKey{pkjRSAClient: f.rsa, pkjECClient: f.ec} {
		ts.addClient(t, &clients.Client{ID: id, TokenEndpointAuthMethod: clients.AuthMethodPrivateKey, JWKS: k.keySet(t),
			GrantTypes: []string{"client_credentials", grantJWTBearer}, Scopes: []string{"read", "deploy"}})
	}
	return f
}

// clientClaims are valid client assertion claims for clientID.
func (ts *testServer) clientClaims(clientID string) map[string]any {
	return ts.assertionClaims(clientID, clientID)
}

// assertionAuth adds client_assertion and its type to fields.
func assertionAuth(fields map[string]string, assertion string) map[string]string {
	out := map[string]string{"client_assertion_type": clientAssertionType, "client_assertion": assertion}
	for k, v := range fields {
		out[k] = v
	}
	return out
}

func (f privateKeyJWTFixture) token(t *testing.T, assertion string) response {
	t.Helper()
	return f.post(t, "/oauth2/token", "form", assertionAuth(map[string]string{"grant_type": "client_credentials", "scope": "read"}, assertion), noAuth)
}

func TestPrivateKeyJWT(t *testing.T) {
	f := newPrivateKeyJWTFixture(t)
	for _, tc := range []struct {
		client string
		key    testKey
	}{{pkjRSAClient, f.rsa}, {pkjECClient, f.ec}} {
		t.Run(tc.client, func(t *testing.T) {
			r := f.token(t, tc.key.sign(t, f.clientClaims(tc.client)))
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			tok, _ := r.json(t)["access_token"].(string)
			require.NotEmpty(t, tok)
			got := f.introspect(t, tok).json(t)
			require.Equal(t, true, got["active"])
			require.Equal(t, tc.client, got["client_id"])
			require.Equal(t, tc.client, got["sub"])
			require.Equal(t, "read", got["scope"])

			t.Run("introspection", func(t *testing.T) {
				r := f.post(t, "/oauth2/introspect", "form", assertionAuth(map[string]string{"token": tok}, tc.key.sign(t, f.clientClaims(tc.client))), noAuth)
				require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
				require.Equal(t, true, r.json(t)["active"])
				// The assertion names the client: client_id in the form too is fine.
				fields := assertionAuth(map[string]string{"token": tok, "client_id": tc.client}, tc.key.sign(t, f.clientClaims(tc.client)))
				r = f.post(t, "/oauth2/introspect", "form", fields, noAuth)
				require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			})
			t.Run("revocation", func(t *testing.T) {
				r := f.post(t, "/oauth2/revoke", "form", assertionAuth(map[string]string{"token": tok}, tc.key.sign(t, f.clientClaims(tc.client))), noAuth)
				require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
				require.Empty(t, r.Body)
				require.False(t, f.active(t, tok))
			})
			t.Run("revocation of another client's token", func(t *testing.T) {
				other := f.clientCredentials(t, "basic-client", "read")
				r := f.post(t, "/oauth2/revoke", "form", assertionAuth(map[string]string{"token": other}, tc.key.sign(t, f.clientClaims(tc.client))), noAuth)
				requireError(t, r, http.StatusBadRequest, "unauthorized_client")
				require.True(t, f.active(t, other))
			})
		})
	}
}

// TestPrivateKeyJWTRefused: every wrong client assertion is 401
// invalid_client, at the token, introspection and revocation endpoints.
func TestPrivateKeyJWTRefused(t *testing.T) {
	f := newPrivateKeyJWTFixture(t)
	now := time.Now()
	valid := func() map[string]any { return f.clientClaims(pkjRSAClient) }
	sameKid := newTestKey(t, jose.RS256, "rsa-1")
	tests := []struct {
		name      string
		assertion func() string
	}{
		{"wrong key with the registered kid", func() string { return sameKid.sign(t, valid()) }},
		{"wrong key with an unknown kid", func() string { return newTestKey(t, jose.RS256, "rsa-2").sign(t, valid()) }},
		{"wrong key without kid", func() string { return newTestKey(t, jose.RS256, "").sign(t, valid()) }},
		{"another client's key", func() string { return f.ec.sign(t, valid()) }},
		{"HS256", func() string { return hs256(t, []byte("0123456789abcdef0123456789abcdef"), valid()) }},
		{"expired", func() string {
			return f.rsa.sign(t, with(valid(), map[string]any{"iat": now.Add(-10 * time.Minute).Unix(), "exp": now.Add(-time.Minute).Unix()}))
		}},
		{"no exp", func() string { return f.rsa.sign(t, with(valid(), map[string]any{"exp": nil})) }},
		{"missing jti", func() string { return f.rsa.sign(t, with(valid(), map[string]any{"jti": nil})) }},
		{"wrong audience", func() string {
			return f.rsa.sign(t, with(valid(), map[string]any{"aud": "https://other.example.com/oauth2/token"}))
		}},
		{"iss is not the client", func() string { return f.rsa.sign(t, with(valid(), map[string]any{"iss": "someone"})) }},
		{"sub names another client", func() string { return f.rsa.sign(t, with(valid(), map[string]any{"sub": pkjECClient})) }},
		{"unknown client", func() string {
			return f.rsa.sign(t, with(valid(), map[string]any{"iss": "nobody", "sub": "nobody"}))
		}},
		{"a client_secret_basic client", func() string {
			return f.rsa.sign(t, f.clientClaims("basic-client"))
		}},
		{"a public client", func() string { return f.rsa.sign(t, f.clientClaims("public-client")) }},
		{"not a JWT", func() string { return "not-a-jwt" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			requireError(t, f.token(t, tc.assertion()), http.StatusUnauthorized, "invalid_client")
		})
	}

	t.Run("replayed jti", func(t *testing.T) {
		assertion := f.rsa.sign(t, valid())
		require.Equal(t, http.StatusOK, f.token(t, assertion).Status)
		requireError(t, f.token(t, assertion), http.StatusUnauthorized, "invalid_client")
		// Replayed at another endpoint too: the jti is spent everywhere.
		tok := f.clientCredentials(t, "basic-client", "read")
		r := f.post(t, "/oauth2/introspect", "form", assertionAuth(map[string]string{"token": tok}, assertion), noAuth)
		requireError(t, r, http.StatusUnauthorized, "invalid_client")
	})

	t.Run("client_id and the assertion disagree", func(t *testing.T) {
		for _, claims := range []map[string]any{
			with(valid(), map[string]any{"sub": "someone"}),
			with(valid(), map[string]any{"iss": "someone"}),
			f.clientClaims(pkjECClient),
		} {
			fields := assertionAuth(map[string]string{"grant_type": "client_credentials", "client_id": pkjRSAClient}, f.rsa.sign(t, claims))
			r := f.post(t, "/oauth2/token", "form", fields, noAuth)
			requireError(t, r, http.StatusUnauthorized, "invalid_client")
			require.Contains(t, r.json(t)["error_description"], "must match the 'client_id'")
		}
	})

	t.Run("an assertion and a secret", func(t *testing.T) {
		fields := assertionAuth(map[string]string{"grant_type": "client_credentials"}, f.rsa.sign(t, valid()))
		r := f.post(t, "/oauth2/token", "form", fields, basicAuth("basic-client", f.secrets["basic-client"]))
		requireError(t, r, http.StatusUnauthorized, "invalid_client")
		fields = assertionAuth(map[string]string{"grant_type": "client_credentials"}, f.rsa.sign(t, valid()))
		r = f.post(t, "/oauth2/token", "form", fields, postAuth(pkjRSAClient, "guess"))
		requireError(t, r, http.StatusUnauthorized, "invalid_client")
	})

	t.Run("the assertion type", func(t *testing.T) {
		assertion := f.rsa.sign(t, valid())
		r := f.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "client_credentials", "client_assertion": assertion}, noAuth)
		requireError(t, r, http.StatusUnauthorized, "invalid_client")
		r = f.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "client_credentials",
			"client_assertion_type": "urn:example:other", "client_assertion": assertion}, noAuth)
		requireError(t, r, http.StatusUnauthorized, "invalid_client")
		r = f.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "client_credentials",
			"client_assertion_type": clientAssertionType}, noAuth)
		requireError(t, r, http.StatusUnauthorized, "invalid_client")
	})

	t.Run("a private_key_jwt client trying a client secret", func(t *testing.T) {
		for _, a := range []auth{basicAuth(pkjRSAClient, "guess"), postAuth(pkjRSAClient, "guess"), basicAuth(pkjRSAClient, ""), idAuth(pkjRSAClient)} {
			r := f.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "client_credentials"}, a)
			requireError(t, r, http.StatusUnauthorized, "invalid_client")
			r = f.post(t, "/oauth2/introspect", "form", map[string]string{"token": "x"}, a)
			requireError(t, r, http.StatusUnauthorized, "invalid_client")
			r = f.post(t, "/oauth2/revoke", "form", map[string]string{"token": "x"}, a)
			requireError(t, r, http.StatusUnauthorized, "invalid_client")
		}
	})

	t.Run("introspection and revocation", func(t *testing.T) {
		tok := f.clientCredentials(t, "basic-client", "read")
		for _, path := range []string{"/oauth2/introspect", "/oauth2/revoke"} {
			for _, tc := range tests {
				r := f.post(t, path, "form", assertionAuth(map[string]string{"token": tok}, tc.assertion()), noAuth)
				requireError(t, r, http.StatusUnauthorized, "invalid_client")
			}
		}
		require.True(t, f.active(t, tok), "no refused revocation revoked the token")
	})
}

// TestPrivateKeyJWTWithJWTBearerGrant: a private_key_jwt client uses the
// JWT bearer grant, two assertions in one request.
func TestPrivateKeyJWTWithJWTBearerGrant(t *testing.T) {
	f := newPrivateKeyJWTFixture(t)
	ci := newTestKey(t, jose.ES256, "ci-1")
	f.trust(t, storage.TrustedIssuer{Issuer: ciIssuer, Subject: ciSubject, Scopes: []string{"deploy"}, JWKS: ci.jwks(t)})
	fields := assertionAuth(map[string]string{
		"grant_type": grantJWTBearer, "assertion": ci.sign(t, f.assertionClaims(ciIssuer, ciSubject)), "scope": "deploy",
	}, f.rsa.sign(t, f.clientClaims(pkjRSAClient)))
	r := f.post(t, "/oauth2/token", "form", fields, noAuth)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	got := f.introspect(t, r.json(t)["access_token"].(string)).json(t)
	require.Equal(t, ciSubject, got["sub"])
	require.Equal(t, pkjRSAClient, got["client_id"])
	require.Equal(t, "deploy", got["scope"])
}
