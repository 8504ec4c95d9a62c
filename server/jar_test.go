package server_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"crypto/rand"

	"github.com/go-jose/go-jose/v3"
	"github.com/go-jose/go-jose/v3/jwt"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/latchauth/latch/clients"
)

// RFC 9101: signed request objects at the authorization endpoint and at
// PAR (RFC 9126).

const (
	jarClient       = "jar-client"        // keys registered, signing optional
	jarStrictClient = "jar-strict-client" // require_signed_request_object
)

type jarFixture struct {
	*testServer
	key, other testKey
}

func newJARFixture(t *testing.T) jarFixture {
	t.Helper()
	ts := newTestServer(t)
	f := jarFixture{testServer: ts, key: newTestKey(t, jose.RS256, "jar-1"), other: newTestKey(t, jose.ES256, "")}
	for _, id := range []string{jarClient, jarStrictClient} {
		ts.addClient(t, &clients.Client{ID: id, TokenEndpointAuthMethod: clients.AuthMethodBasic, JWKS: f.key.keySet(t),
			RequireSignedRequestObject: id == jarStrictClient,
			GrantTypes:                 []string{"authorization_code"}, ResponseTypes: []string{"code"},
			RedirectURIs: []string{callback}, Scopes: []string{"openid", "profile"}})
	}
	return f
}

// requestClaims are valid request object claims for clientID.
func (f jarFixture) requestClaims(clientID, challenge string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": clientID, "aud": f.URL, "jti": rand.Text(), "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"client_id": clientID, "response_type": "code", "redirect_uri": callback, "scope": "openid profile",
		"state": "signed-state-1234567890", "nonce": "signed-nonce-1234567890", "max_age": 3600,
		"code_challenge": challenge, "code_challenge_method": "S256",
	}
}

// signTyped signs claims with k under the typ header RFC 9101 §10.8 asks for.
func signTyped(t *testing.T, k testKey, claims map[string]any) string {
	t.Helper()
	return signWithType(t, k, "oauth-authz-req+jwt", claims)
}

func signWithType(t *testing.T, k testKey, typ jose.ContentType, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.private}, (&jose.SignerOptions{}).WithType(typ))
	require.NoError(t, err)
	raw, err := jwt.Signed(signer).Claims(claims).CompactSerialize()
	require.NoError(t, err)
	return raw
}

func (f jarFixture) authorizeWith(fields url.Values) string {
	return f.URL + "/oauth2/auth?" + fields.Encode()
}

func TestSignedRequestObjectAtAuthorizationEndpoint(t *testing.T) {
	t.Parallel()
	f := newJARFixture(t)
	verifier, challenge := pkcePair(oauth2.GenerateVerifier())

	t.Run("only the parameters inside count", func(t *testing.T) {
		req := signTyped(t, f.key, f.requestClaims(jarStrictClient, challenge))
		b := f.newBrowser(t)
		cb := b.authorize(t, f.authorizeWith(url.Values{"client_id": {jarStrictClient}, "response_type": {"code"}, "request": {req},
			"state": {"outer-state"}, "scope": {"openid"}, "prompt": {"none"}}))
		require.Equal(t, "signed-state-1234567890", cb.Query().Get("state"), "the signed state, not the outer one")
		require.Equal(t, f.URL, cb.Query().Get("iss"))
		tk := f.exchange(t, jarStrictClient, cb.Query().Get("code"), verifier)
		require.Equal(t, "openid profile", tk.Scope, "the signed scopes")
		idt, _ := f.verifyIDToken(t, tk.ID, jarStrictClient)
		require.Equal(t, "signed-nonce-1234567890", idt.Nonce)

		// The same request object again: its jti is spent.
		r := b.get(t, f.authorizeWith(url.Values{"client_id": {jarStrictClient}, "request": {req}}))
		cb2, err := url.Parse(location(t, r))
		require.NoError(t, err)
		require.Equal(t, "invalid_request_object", cb2.Query().Get("error"), "%s", cb2)
	})
	t.Run("a client that must sign is refused an unsigned request", func(t *testing.T) {
		r := f.newBrowser(t).get(t, f.authorizeURL(jarStrictClient, map[string]string{"scope": "openid", "code_challenge": challenge, "code_challenge_method": "S256"}))
		cb, err := url.Parse(location(t, r))
		require.NoError(t, err)
		require.Equal(t, "invalid_request", cb.Query().Get("error"))
	})
	t.Run("request_uri other than a pushed one", func(t *testing.T) {
		r := f.newBrowser(t).get(t, f.authorizeWith(url.Values{"client_id": {jarClient}, "response_type": {"code"}, "request_uri": {"https://attacker.example/ro.jwt"}}))
		requireNoCode(t, r)
		require.Equal(t, http.StatusBadRequest, r.Status)
	})
	t.Run("a bad request object is an error page, not a redirect", func(t *testing.T) {
		c := with(f.requestClaims(jarClient, challenge), map[string]any{"redirect_uri": "https://attacker.example/cb"})
		r := f.newBrowser(t).get(t, f.authorizeWith(url.Values{"client_id": {jarClient}, "request": {signTyped(t, f.other, c)}}))
		require.Equal(t, http.StatusBadRequest, r.Status, "%s", r.Body)
		require.Empty(t, r.Header.Get("Location"))
	})
	t.Run("client_id outside must match", func(t *testing.T) {
		req := signTyped(t, f.key, f.requestClaims(jarClient, challenge))
		r := f.newBrowser(t).get(t, f.authorizeWith(url.Values{"client_id": {jarStrictClient}, "request": {req}}))
		requireNoCode(t, r)
	})
	t.Run("concurrent uses: one wins", func(t *testing.T) {
		req := signTyped(t, f.key, f.requestClaims(jarClient, challenge))
		b := f.newBrowser(t)
		var wg sync.WaitGroup
		results := make([]response, 4)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = b.get(t, f.authorizeWith(url.Values{"client_id": {jarClient}, "request": {req}}))
			}()
		}
		wg.Wait()
		started := 0
		for _, r := range results {
			if loc := r.Header.Get("Location"); len(loc) > 7 && loc[:7] == "/login?" {
				started++
			}
		}
		require.Equal(t, 1, started, "exactly one use of a request object starts a sign-in")
	})
}

// TestSignedRequestObjectRefused: each check of RFC 9101 §6 (and the JWT
// claims of RFC 7519 §4.1), through PAR, which answers the error code.
func TestSignedRequestObjectRefused(t *testing.T) {
	t.Parallel()
	f := newJARFixture(t)
	_, challenge := pkcePair(oauth2.GenerateVerifier())
	good := func() map[string]any { return f.requestClaims(jarClient, challenge) }
	now := time.Now()
	none := func(claims map[string]any) string {
		payload, err := json.Marshal(claims)
		require.NoError(t, err)
		enc := base64.RawURLEncoding.EncodeToString
		return enc([]byte(`{"alg":"none","typ":"oauth-authz-req+jwt"}`)) + "." + enc(payload) + "."
	}
	for _, tt := range []struct {
		name    string
		request string
		outer   map[string]string
		code    string
	}{
		{"alg none", none(good()), nil, "invalid_request_object"},
		{"HMAC with the client secret", hs256(t, []byte(f.secrets[jarClient]), good()), nil, "invalid_request_object"},
		{"signed by a key the client did not register", signTyped(t, f.other, good()), nil, "invalid_request_object"},
		{"not a JWT", "not.a.jwt", nil, "invalid_request_object"},
		{"wrong typ", signWithType(t, f.key, "at+jwt", good()), nil, "invalid_request_object"},
		{"iss is not the client", signTyped(t, f.key, with(good(), map[string]any{"iss": jarStrictClient})), nil, "invalid_request_object"},
		{"no iss", signTyped(t, f.key, with(good(), map[string]any{"iss": nil})), nil, "invalid_request_object"},
		{"aud is the token endpoint", signTyped(t, f.key, with(good(), map[string]any{"aud": f.URL + "/oauth2/token"})), nil, "invalid_request_object"},
		{"no aud", signTyped(t, f.key, with(good(), map[string]any{"aud": nil})), nil, "invalid_request_object"},
		{"expired", signTyped(t, f.key, with(good(), map[string]any{"exp": now.Add(-10 * time.Minute).Unix()})), nil, "invalid_request_object"},
		{"no exp", signTyped(t, f.key, with(good(), map[string]any{"exp": nil})), nil, "invalid_request_object"},
		{"exp too far ahead", signTyped(t, f.key, with(good(), map[string]any{"exp": now.Add(48 * time.Hour).Unix()})), nil, "invalid_request_object"},
		{"nbf ahead", signTyped(t, f.key, with(good(), map[string]any{"nbf": now.Add(10 * time.Minute).Unix()})), nil, "invalid_request_object"},
		{"no jti", signTyped(t, f.key, with(good(), map[string]any{"jti": nil})), nil, "invalid_request_object"},
		{"request_uri inside", signTyped(t, f.key, with(good(), map[string]any{"request_uri": "urn:x"})), nil, "invalid_request_object"},
		{"client_id inside differs", signTyped(t, f.key, with(good(), map[string]any{"client_id": jarStrictClient})), nil, "invalid_request"},
		{"response_type inside differs", signTyped(t, f.key, good()), map[string]string{"response_type": "token"}, "invalid_request"},
		{"both request and request_uri", signTyped(t, f.key, good()), map[string]string{"request_uri": "urn:x"}, "invalid_request"},
		{"too long", string(make([]byte, 17<<10)), nil, "invalid_request_object"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fields := map[string]string{"client_id": jarClient, "request": tt.request}
			for k, v := range tt.outer {
				fields[k] = v
			}
			r := f.post(t, "/oauth2/par", "form", fields, basicAuth(jarClient, f.secrets[jarClient]))
			requireError(t, r, http.StatusBadRequest, tt.code)
		})
	}
	t.Run("unsigned push by a client that must sign", func(t *testing.T) {
		r := f.post(t, "/oauth2/par", "form", pushedRequest(challenge, map[string]string{"scope": "openid profile"}), basicAuth(jarStrictClient, f.secrets[jarStrictClient]))
		requireError(t, r, http.StatusBadRequest, "invalid_request")
	})
	t.Run("signed for another client than the one authenticated", func(t *testing.T) {
		req := signTyped(t, f.key, f.requestClaims(jarClient, challenge))
		r := f.post(t, "/oauth2/par", "form", map[string]string{"request": req}, basicAuth(jarStrictClient, f.secrets[jarStrictClient]))
		require.NotEqual(t, http.StatusCreated, r.Status, "%s", r.Body)
	})
}

// TestSignedRequestObjectThroughPAR: a pushed signed request object is used
// once, and a client that must sign may then use its request_uri.
func TestSignedRequestObjectThroughPAR(t *testing.T) {
	t.Parallel()
	f := newJARFixture(t)
	verifier, challenge := pkcePair(oauth2.GenerateVerifier())
	req := signTyped(t, f.key, f.requestClaims(jarStrictClient, challenge))
	fields := map[string]string{"client_id": jarStrictClient, "request": req, "state": "outer-state"}
	uri := f.push(t, jarStrictClient, fields)
	cb := f.newBrowser(t).authorize(t, f.parAuthorizeURL(jarStrictClient, uri))
	require.Equal(t, "signed-state-1234567890", cb.Query().Get("state"))
	require.Equal(t, f.URL, cb.Query().Get("iss"))
	tk := f.exchange(t, jarStrictClient, cb.Query().Get("code"), verifier)
	require.Equal(t, "openid profile", tk.Scope)

	// The same request object pushed again: its jti is spent.
	r := f.post(t, "/oauth2/par", "form", fields, f.as(jarStrictClient))
	requireError(t, r, http.StatusBadRequest, "invalid_request_object")
}
