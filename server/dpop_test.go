package server_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v3"
	"github.com/stretchr/testify/require"
)

// dpopClient is a client's DPoP key, and the proofs it makes (RFC 9449 §4).
type dpopClient struct {
	key *ecdsa.PrivateKey
}

func newDPoPClient(t *testing.T) *dpopClient {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return &dpopClient{key: key}
}

// jkt is the RFC 7638 thumbprint of the client's public key.
func (c *dpopClient) jkt(t *testing.T) string {
	t.Helper()
	sum, err := (&jose.JSONWebKey{Key: &c.key.PublicKey}).Thumbprint(crypto.SHA256)
	require.NoError(t, err)
	return base64.RawURLEncoding.EncodeToString(sum)
}

// proofOpts changes one thing of a well-formed proof.
type proofOpts struct {
	typ      string            // typ header; "" is dpop+jwt
	jwk      *jose.JSONWebKey  // the jwk header; nil is the client's public key
	signWith *ecdsa.PrivateKey // nil is the client's key
	claims   map[string]any    // claims set over the defaults; a nil value removes one
}

// proof is a DPoP proof for method and htu.
func (c *dpopClient) proof(t *testing.T, method, htu string, o proofOpts) string {
	t.Helper()
	claims := map[string]any{"jti": randomJTI(t), "htm": method, "htu": htu, "iat": time.Now().Unix()}
	for k, v := range o.claims {
		if v == nil {
			delete(claims, k)
		} else {
			claims[k] = v
		}
	}
	typ := o.typ
	if typ == "" {
		typ = "dpop+jwt"
	}
	jwk := jose.JSONWebKey{Key: &c.key.PublicKey}
	if o.jwk != nil {
		jwk = *o.jwk
	}
	signer := c.key
	if o.signWith != nil {
		signer = o.signWith
	}
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader("jwk", jwk)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: signer}, opts)
	require.NoError(t, err)
	payload, err := json.Marshal(claims)
	require.NoError(t, err)
	jws, err := s.Sign(payload)
	require.NoError(t, err)
	out, err := jws.CompactSerialize()
	require.NoError(t, err)
	return out
}

func randomJTI(t *testing.T) string {
	b := make([]byte, 12)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return base64.RawURLEncoding.EncodeToString(b)
}

// unsignedJWT is a JWT with alg none (or any header) and no signature.
func unsignedJWT(header, claims map[string]any) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "."
}

// tokenWithProofs posts fields to the token endpoint as a, with one DPoP
// header per proof.
func (ts *testServer) tokenWithProofs(t *testing.T, fields map[string]string, a auth, proofs ...string) response {
	t.Helper()
	req := ts.formRequest(t, "/oauth2/token", fields, a)
	for _, p := range proofs {
		req.Header.Add("DPoP", p)
	}
	return ts.do(t, req)
}

var ccRead = map[string]string{"grant_type": "client_credentials", "scope": "read"}

func TestDPoPProofBindsClientCredentialsToken(t *testing.T) {
	ts := newTestServer(t)
	c := newDPoPClient(t)
	r := ts.tokenWithProofs(t, ccRead, ts.as("basic-client"), c.proof(t, "POST", ts.URL+"/oauth2/token", proofOpts{}))
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	body := r.json(t)
	require.Equal(t, "DPoP", body["token_type"])

	in := ts.introspect(t, body["access_token"].(string)).json(t)
	require.Equal(t, true, in["active"])
	require.Equal(t, "DPoP", in["token_type"])
	require.Equal(t, map[string]any{"jkt": c.jkt(t)}, in["cnf"])
}

func TestTokenWithoutProofStaysBearer(t *testing.T) {
	ts := newTestServer(t)
	r := ts.post(t, "/oauth2/token", "form", ccRead, ts.as("basic-client"))
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, "bearer", strings.ToLower(r.json(t)["token_type"].(string)))
	in := ts.introspect(t, r.json(t)["access_token"].(string)).json(t)
	require.Equal(t, "Bearer", in["token_type"])
	require.NotContains(t, in, "cnf")
}

func TestDPoPJWTAccessTokenCarriesCnfJKT(t *testing.T) {
	ts := newTestServer(t, withAccessTokenFormat("jwt"))
	c := newDPoPClient(t)
	r := ts.tokenWithProofs(t, ccRead, ts.as("basic-client"), c.proof(t, "POST", ts.URL+"/oauth2/token", proofOpts{}))
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	parts := strings.Split(r.json(t)["access_token"].(string), ".")
	require.Len(t, parts, 3)
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var claims map[string]any
	require.NoError(t, json.Unmarshal(raw, &claims))
	require.Equal(t, map[string]any{"jkt": c.jkt(t)}, claims["cnf"])
}

func TestDPoPRefreshOfConfidentialClientBindsEachAccessTokenToItsOwnProof(t *testing.T) {
	ts := newTestServer(t)
	c := newDPoPClient(t)
	g := issueGrant(t, ts, "web-client", "read", "offline_access")
	fields := map[string]string{"grant_type": "refresh_token", "refresh_token": g.Refresh}
	r := ts.tokenWithProofs(t, fields, ts.as("web-client"), c.proof(t, "POST", ts.URL+"/oauth2/token", proofOpts{}))
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	body := r.json(t)
	require.Equal(t, "DPoP", body["token_type"])
	in := ts.introspect(t, body["access_token"].(string)).json(t)
	require.Equal(t, map[string]any{"jkt": c.jkt(t)}, in["cnf"])

	// A confidential client's refresh token is not bound (RFC 9449 §5):
	// refreshed without a proof, the new access token is a Bearer token,
	// not one inheriting the earlier binding.
	next := ts.refreshOK(t, "web-client", body["refresh_token"].(string))
	in = ts.introspect(t, next.Access).json(t)
	require.Equal(t, "Bearer", in["token_type"])
	require.NotContains(t, in, "cnf")
}

func TestDPoPInvalidProofsAreRefused(t *testing.T) {
	ts := newTestServer(t)
	c := newDPoPClient(t)
	htu := ts.URL + "/oauth2/token"
	other := newDPoPClient(t)
	hmacJWK := jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef")}
	privateJWK := jose.JSONWebKey{Key: c.key}
	old := time.Now().Add(-10 * time.Minute).Unix()
	future := time.Now().Add(10 * time.Minute).Unix()
	cases := []struct {
		name   string
		proofs []string
	}{
		{"two DPoP headers", []string{c.proof(t, "POST", htu, proofOpts{}), c.proof(t, "POST", htu, proofOpts{})}},
		{"not a JWT", []string{"not-a-jwt"}},
		{"JSON serialization", []string{`{"payload":"e30","signatures":[]}`}},
		{"typ is JWT", []string{c.proof(t, "POST", htu, proofOpts{typ: "JWT"})}},
		{"alg none", []string{unsignedJWT(map[string]any{"alg": "none", "typ": "dpop+jwt"}, map[string]any{"jti": "x", "htm": "POST", "htu": htu, "iat": time.Now().Unix()})}},
		{"symmetric jwk", []string{c.proof(t, "POST", htu, proofOpts{jwk: &hmacJWK})}},
		{"private key in jwk", []string{c.proof(t, "POST", htu, proofOpts{jwk: &privateJWK})}},
		{"signed by another key than the jwk", []string{c.proof(t, "POST", htu, proofOpts{signWith: other.key})}},
		{"no jti", []string{c.proof(t, "POST", htu, proofOpts{claims: map[string]any{"jti": nil}})}},
		{"no htm", []string{c.proof(t, "POST", htu, proofOpts{claims: map[string]any{"htm": nil}})}},
		{"no htu", []string{c.proof(t, "POST", htu, proofOpts{claims: map[string]any{"htu": nil}})}},
		{"no iat", []string{c.proof(t, "POST", htu, proofOpts{claims: map[string]any{"iat": nil}})}},
		{"iat a string", []string{c.proof(t, "POST", htu, proofOpts{claims: map[string]any{"iat": "now"}})}},
		{"htm GET", []string{c.proof(t, "GET", htu, proofOpts{})}},
		{"htu of another endpoint", []string{c.proof(t, "POST", ts.URL+"/userinfo", proofOpts{})}},
		{"htu of another host", []string{c.proof(t, "POST", "https://elsewhere.example/oauth2/token", proofOpts{})}},
		{"htu relative", []string{c.proof(t, "POST", "/oauth2/token", proofOpts{})}},
		{"iat too old", []string{c.proof(t, "POST", htu, proofOpts{claims: map[string]any{"iat": old}})}},
		{"iat in the future", []string{c.proof(t, "POST", htu, proofOpts{claims: map[string]any{"iat": future}})}},
		{"jti too long", []string{c.proof(t, "POST", htu, proofOpts{claims: map[string]any{"jti": strings.Repeat("j", 300)}})}},
		{"proof too long", []string{c.proof(t, "POST", htu, proofOpts{claims: map[string]any{"pad": strings.Repeat("p", 9000)}})}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.tokenWithProofs(t, ccRead, ts.as("basic-client"), tc.proofs...)
			requireError(t, r, http.StatusBadRequest, "invalid_dpop_proof")
		})
	}
}

func TestDPoPHTUIgnoresQueryAndFragmentAndDefaultPort(t *testing.T) {
	ts := newTestServer(t)
	c := newDPoPClient(t)
	u, err := url.Parse(ts.URL)
	require.NoError(t, err)
	for _, htu := range []string{
		ts.URL + "/oauth2/token?x=1",
		ts.URL + "/oauth2/token#frag",
		"HTTP://" + strings.ToUpper(u.Hostname()) + ":" + u.Port() + "/oauth2/token",
	} {
		r := ts.tokenWithProofs(t, ccRead, ts.as("basic-client"), c.proof(t, "POST", htu, proofOpts{}))
		require.Equal(t, http.StatusOK, r.Status, "htu %s: %s", htu, r.Body)
	}
}

func TestDPoPReplayedProofIsRefused(t *testing.T) {
	ts := newTestServer(t)
	c := newDPoPClient(t)
	p := c.proof(t, "POST", ts.URL+"/oauth2/token", proofOpts{})
	require.Equal(t, http.StatusOK, ts.tokenWithProofs(t, ccRead, ts.as("basic-client"), p).Status)
	requireError(t, ts.tokenWithProofs(t, ccRead, ts.as("basic-client"), p), http.StatusBadRequest, "invalid_dpop_proof")
}

func TestDPoPReplayedProofOnlyOneConcurrentUseWins(t *testing.T) {
	ts := newTestServer(t)
	c := newDPoPClient(t)
	p := c.proof(t, "POST", ts.URL+"/oauth2/token", proofOpts{})
	const n = 6
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = ts.tokenWithProofs(t, ccRead, ts.as("basic-client"), p).Status
		}()
	}
	wg.Wait()
	ok := 0
	for _, s := range statuses {
		if s == http.StatusOK {
			ok++
		} else {
			require.Equal(t, http.StatusBadRequest, s)
		}
	}
	require.Equal(t, 1, ok, "statuses %v", statuses)
}

func TestDPoPRefusedProofLeavesNoReplayRecord(t *testing.T) {
	// A proof sent with a failing client authentication is not spent: an
	// unauthenticated caller cannot make the server store its jti.
	ts := newTestServer(t)
	c := newDPoPClient(t)
	p := c.proof(t, "POST", ts.URL+"/oauth2/token", proofOpts{})
	r := ts.tokenWithProofs(t, ccRead, basicAuth("basic-client", "wrong"), p)
	requireError(t, r, http.StatusUnauthorized, "invalid_client")
	require.Equal(t, http.StatusOK, ts.tokenWithProofs(t, ccRead, ts.as("basic-client"), p).Status)
}

func TestDiscoveryListsDPoPSigningAlgs(t *testing.T) {
	ts := newTestServer(t)
	m := ts.get(t, "/.well-known/openid-configuration").json(t)
	algs, ok := m["dpop_signing_alg_values_supported"].([]any)
	require.True(t, ok, "%v", m["dpop_signing_alg_values_supported"])
	require.Contains(t, algs, "ES256")
	require.Contains(t, algs, "RS256")
	require.NotContains(t, algs, "HS256")
	require.NotContains(t, algs, "none")
}

// athOf is ath for token (RFC 9449 §4.2).
func athOf(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
