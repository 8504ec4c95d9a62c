package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/go-jose/go-jose/v3/jwt"
	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/clients"
)

// RFC 7523 §2.2 and OIDC Core §9: client_secret_jwt client authentication,
// assertions MACed with go-jose as a client library makes them.

const csjClient = "csj-client"

type secretJWTFixture struct {
	*testServer
	secret string
}

func newSecretJWTFixture(t *testing.T) secretJWTFixture {
	t.Helper()
	ts := newTestServer(t)
	ts.addClient(t, &clients.Client{ID: csjClient, TokenEndpointAuthMethod: clients.AuthMethodSecretJWT,
		GrantTypes: []string{"client_credentials", "authorization_code", grantDevice}, Scopes: []string{"openid", "read"},
		RedirectURIs: []string{"http://127.0.0.1:5555/cb"}})
	return secretJWTFixture{testServer: ts, secret: ts.secrets[csjClient]}
}

// mac makes a client assertion with alg and key.
func mac(t *testing.T, alg jose.SignatureAlgorithm, key string, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: []byte(key)}, nil)
	require.NoError(t, err)
	raw, err := jwt.Signed(signer).Claims(claims).CompactSerialize()
	require.NoError(t, err)
	return raw
}

// unsigned is claims as a JWT with alg none.
func unsigned(t *testing.T, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	require.NoError(t, err)
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc(payload) + "."
}

func (f secretJWTFixture) token(t *testing.T, assertion string) response {
	t.Helper()
	return f.post(t, "/oauth2/token", "form", assertionAuth(map[string]string{"grant_type": "client_credentials", "scope": "read"}, assertion), noAuth)
}

func TestClientSecretJWT(t *testing.T) {
	f := newSecretJWTFixture(t)
	require.Len(t, f.secret, 64, "a generated client_secret_jwt secret is a key for HS512")
	for _, tc := range []struct {
		name string
		alg  jose.SignatureAlgorithm
		aud  string
	}{
		{"HS256 to the token endpoint", jose.HS256, f.URL + "/oauth2/token"},
		{"HS256 to the issuer", jose.HS256, f.URL},
		{"HS384", jose.HS384, f.URL + "/oauth2/token"},
		{"HS512", jose.HS512, f.URL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert := func() string {
				return mac(t, tc.alg, f.secret, with(f.clientClaims(csjClient), map[string]any{"aud": tc.aud}))
			}
			r := f.token(t, assert())
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			tok, _ := r.json(t)["access_token"].(string)
			got := f.introspect(t, tok).json(t)
			require.Equal(t, true, got["active"])
			require.Equal(t, csjClient, got["client_id"])

			r = f.post(t, "/oauth2/introspect", "form", assertionAuth(map[string]string{"token": tok}, assert()), noAuth)
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			require.Equal(t, true, r.json(t)["active"])
			r = f.post(t, "/oauth2/revoke", "form", assertionAuth(map[string]string{"token": tok}, assert()), noAuth)
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			require.False(t, f.active(t, tok))
		})
	}

	t.Run("PAR", func(t *testing.T) {
		fields := assertionAuth(map[string]string{"response_type": "code", "redirect_uri": "http://127.0.0.1:5555/cb", "scope": "openid",
			"state": "state-1234", "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256"},
			mac(t, jose.HS256, f.secret, with(f.clientClaims(csjClient), map[string]any{"aud": f.URL + "/oauth2/par"})))
		r := f.post(t, "/oauth2/par", "form", fields, noAuth)
		require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
		require.NotEmpty(t, r.json(t)["request_uri"])
	})

	t.Run("device authorization", func(t *testing.T) {
		fields := assertionAuth(map[string]string{"scope": "read"}, mac(t, jose.HS256, f.secret, f.clientClaims(csjClient)))
		r := f.post(t, "/oauth2/device/auth", "form", fields, noAuth)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		require.NotEmpty(t, r.json(t)["device_code"])
		fields = assertionAuth(map[string]string{"scope": "read"}, mac(t, jose.HS256, "a-wrong-secret-of-at-least-thirty-two-bytes!", f.clientClaims(csjClient)))
		requireError(t, f.post(t, "/oauth2/device/auth", "form", fields, noAuth), http.StatusUnauthorized, "invalid_client")
	})
}

// TestClientSecretJWTRefused: every wrong client_secret_jwt assertion is
// 401 invalid_client, at the token, introspection, revocation and PAR
// endpoints.
func TestClientSecretJWTRefused(t *testing.T) {
	f := newSecretJWTFixture(t)
	now := time.Now()
	valid := func() map[string]any { return f.clientClaims(csjClient) }
	tests := []struct {
		name      string
		assertion func() string
	}{
		{"wrong secret", func() string { return mac(t, jose.HS256, "a-wrong-secret-of-at-least-thirty-two-bytes!", valid()) }},
		{"alg none", func() string { return unsigned(t, valid()) }},
		{"expired", func() string {
			return mac(t, jose.HS256, f.secret, with(valid(), map[string]any{"iat": now.Add(-10 * time.Minute).Unix(), "exp": now.Add(-time.Minute).Unix()}))
		}},
		{"exp too far ahead", func() string {
			return mac(t, jose.HS256, f.secret, with(valid(), map[string]any{"exp": now.Add(time.Hour).Unix()}))
		}},
		{"no exp", func() string { return mac(t, jose.HS256, f.secret, with(valid(), map[string]any{"exp": nil})) }},
		{"no jti", func() string { return mac(t, jose.HS256, f.secret, with(valid(), map[string]any{"jti": nil})) }},
		{"wrong audience", func() string {
			return mac(t, jose.HS256, f.secret, with(valid(), map[string]any{"aud": "https://other.example.com/oauth2/token"}))
		}},
		{"iss is not the client", func() string { return mac(t, jose.HS256, f.secret, with(valid(), map[string]any{"iss": "someone"})) }},
		{"not valid yet", func() string {
			return mac(t, jose.HS256, f.secret, with(valid(), map[string]any{"nbf": now.Add(5 * time.Minute).Unix()}))
		}},
		{"unknown client", func() string {
			return mac(t, jose.HS256, f.secret, with(valid(), map[string]any{"iss": "nobody", "sub": "nobody"}))
		}},
		// Method mismatch: a client_secret_basic client MACing with its own secret.
		{"a client_secret_basic client", func() string {
			return mac(t, jose.HS256, f.secrets["basic-client"], f.clientClaims("basic-client"))
		}},
		{"a private_key_jwt client", func() string { return mac(t, jose.HS256, f.secret, f.clientClaims(pkjRSAClient)) }},
	}
	f.addClient(t, &clients.Client{ID: pkjRSAClient, TokenEndpointAuthMethod: clients.AuthMethodPrivateKey,
		JWKS: newTestKey(t, jose.RS256, "rsa-1").keySet(t), GrantTypes: []string{"client_credentials"}, Scopes: []string{"read"}})
	tok := f.clientCredentials(t, "basic-client", "read")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := f.token(t, tc.assertion())
			requireError(t, r, http.StatusUnauthorized, "invalid_client")
			require.NotContains(t, r.json(t)["error_description"], "authentication method '", "the client's method is not told to an unauthenticated caller")
			for _, path := range []string{"/oauth2/introspect", "/oauth2/revoke"} {
				r := f.post(t, path, "form", assertionAuth(map[string]string{"token": tok}, tc.assertion()), noAuth)
				requireError(t, r, http.StatusUnauthorized, "invalid_client")
			}
			r = f.post(t, "/oauth2/par", "form", assertionAuth(map[string]string{"response_type": "code",
				"redirect_uri": "http://127.0.0.1:5555/cb", "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
				"code_challenge_method": "S256"}, tc.assertion()), noAuth)
			requireError(t, r, http.StatusUnauthorized, "invalid_client")
		})
	}
	require.True(t, f.active(t, tok), "no refused revocation revoked the token")

	t.Run("replayed jti", func(t *testing.T) {
		assertion := mac(t, jose.HS256, f.secret, valid())
		require.Equal(t, http.StatusOK, f.token(t, assertion).Status)
		requireError(t, f.token(t, assertion), http.StatusUnauthorized, "invalid_client")
		r := f.post(t, "/oauth2/introspect", "form", assertionAuth(map[string]string{"token": tok}, assertion), noAuth)
		requireError(t, r, http.StatusUnauthorized, "invalid_client")
	})

	t.Run("one assertion used at once: exactly one succeeds", func(t *testing.T) {
		assertion := mac(t, jose.HS256, f.secret, valid())
		const n = 8
		statuses := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { statuses[i] = f.token(t, assertion).Status })
		}
		wg.Wait()
		ok := 0
		for _, s := range statuses {
			require.Contains(t, []int{http.StatusOK, http.StatusUnauthorized}, s)
			if s == http.StatusOK {
				ok++
			}
		}
		require.Equal(t, 1, ok, "statuses %v", statuses)
	})

	t.Run("the client_secret_jwt client sending its secret", func(t *testing.T) {
		for _, a := range []auth{basicAuth(csjClient, f.secret), postAuth(csjClient, f.secret)} {
			r := f.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "client_credentials"}, a)
			requireError(t, r, http.StatusUnauthorized, "invalid_client")
		}
	})

	t.Run("an assertion and a secret", func(t *testing.T) {
		fields := assertionAuth(map[string]string{"grant_type": "client_credentials"}, mac(t, jose.HS256, f.secret, valid()))
		r := f.post(t, "/oauth2/token", "form", fields, basicAuth(csjClient, f.secret))
		requireError(t, r, http.StatusUnauthorized, "invalid_client")
	})

	t.Run("a short secret is no key for HS512", func(t *testing.T) {
		const short = "a-chosen-secret-of-exactly-40-bytes-long"
		m := &clients.Manager{Store: f.Store, Hasher: clients.NewHasher(10)}
		_, err := m.Create(context.Background(), &clients.Client{ID: "csj-short", TokenEndpointAuthMethod: clients.AuthMethodSecretJWT,
			GrantTypes: []string{"client_credentials"}, Scopes: []string{"read"}}, short)
		require.NoError(t, err)
		requireError(t, f.token(t, mac(t, jose.HS512, short, f.clientClaims("csj-short"))), http.StatusUnauthorized, "invalid_client")
		require.Equal(t, http.StatusOK, f.token(t, mac(t, jose.HS256, short, f.clientClaims("csj-short"))).Status)
	})
}

// TestClientSecretJWTRotation: after rotate-secret, assertions MACed with
// the old secret are refused and the new secret works at once.
func TestClientSecretJWTRotation(t *testing.T) {
	f := newSecretJWTFixture(t)
	require.Equal(t, http.StatusOK, f.token(t, mac(t, jose.HS256, f.secret, f.clientClaims(csjClient))).Status)
	m := &clients.Manager{Store: f.Store, Hasher: clients.NewHasher(10)}
	rotated, err := m.RotateSecret(context.Background(), csjClient)
	require.NoError(t, err)
	requireError(t, f.token(t, mac(t, jose.HS256, f.secret, f.clientClaims(csjClient))), http.StatusUnauthorized, "invalid_client")
	r := f.token(t, mac(t, jose.HS256, rotated, f.clientClaims(csjClient)))
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
}

func TestDiscoveryListsClientSecretJWT(t *testing.T) {
	ts := newTestServer(t)
	r := ts.get(t, "/.well-known/openid-configuration")
	doc := r.json(t)
	for _, key := range []string{"token_endpoint_auth_methods_supported", "introspection_endpoint_auth_methods_supported", "revocation_endpoint_auth_methods_supported"} {
		require.Contains(t, doc[key], "client_secret_jwt", key)
	}
	for _, key := range []string{"token_endpoint_auth_signing_alg_values_supported", "introspection_endpoint_auth_signing_alg_values_supported", "revocation_endpoint_auth_signing_alg_values_supported"} {
		require.Contains(t, doc[key], "HS256", key)
		require.NotContains(t, doc[key], "none", key)
	}
}

// TestRegistrationClientSecretJWT: a client registers for
// client_secret_jwt (RFC 7591 §2) and authenticates with the secret it is
// answered; moved to client_secret_basic and back (RFC 7592), it is given
// a new secret, since only a hash of the old one is left.
func TestRegistrationClientSecretJWT(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withRegistration("initial-access-token"), withRegistrationPolicy(servicePolicy))
	meta := `{"grant_types":["client_credentials"],"scope":"read","token_endpoint_auth_method":"%s","client_id":"%s"}`
	reg := ts.registerOK(t, fmt.Sprintf(meta, "client_secret_jwt", ""))
	require.Len(t, reg.ClientSecret, 64)
	hmacToken := func(key string) response {
		claims := with(ts.clientClaims(reg.ClientID), map[string]any{"aud": ts.URL})
		return ts.post(t, "/oauth2/token", "form", assertionAuth(map[string]string{"grant_type": "client_credentials", "scope": "read"}, mac(t, jose.HS256, key, claims)), noAuth)
	}
	require.Equal(t, http.StatusOK, hmacToken(reg.ClientSecret).Status)

	r := ts.configure(t, http.MethodPut, reg.ClientID, reg.RegistrationAccessToken, fmt.Sprintf(meta, "client_secret_basic", reg.ClientID))
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.NotContains(t, r.json(t), "client_secret", "the secret stays")
	r = ts.configure(t, http.MethodPut, reg.ClientID, reg.RegistrationAccessToken, fmt.Sprintf(meta, "client_secret_jwt", reg.ClientID))
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	fresh, _ := r.json(t)["client_secret"].(string)
	require.Len(t, fresh, 64, "a new secret, the old one being only a hash")
	requireError(t, hmacToken(reg.ClientSecret), http.StatusUnauthorized, "invalid_client")
	require.Equal(t, http.StatusOK, hmacToken(fresh).Status)
}
