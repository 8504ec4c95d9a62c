package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/latchauth/latch/server"
)

// tokens is a token endpoint answer.
type tokens struct {
	Access, Refresh, ID, Scope string
}

func tokensOf(t *testing.T, r response) tokens {
	t.Helper()
	require.Equal(t, http.StatusOK, r.Status, "token endpoint: %s", r.Body)
	m := r.json(t)
	var tk tokens
	tk.Access, _ = m["access_token"].(string)
	tk.Refresh, _ = m["refresh_token"].(string)
	tk.ID, _ = m["id_token"].(string)
	tk.Scope, _ = m["scope"].(string)
	require.NotEmpty(t, tk.Access, "an access token: %s", r.Body)
	return tk
}

// codeFlow signs alice in through b, lets clientID have what extra asks
// (by default authorizeURL's "openid profile email offline_access"), and
// exchanges the code, with PKCE, as the client authenticates.
//
// A browser swaps ts.http while it sends (browser.do), so nothing else may
// use the same testServer meanwhile: subtests that share one server and
// use a browser do not run in parallel.
func codeFlow(t *testing.T, b *browser, clientID string, extra map[string]string) tokens {
	t.Helper()
	verifier, challenge := pkcePair(oauth2.GenerateVerifier())
	params := map[string]string{"code_challenge": challenge, "code_challenge_method": "S256"}
	maps.Copy(params, extra)
	cb := b.authorize(t, b.ts.authorizeURL(clientID, params))
	code := cb.Query().Get("code")
	require.NotEmpty(t, code, "a code at the callback: %s", cb)
	return b.ts.exchange(t, clientID, code, verifier)
}

// exchange redeems code at the token endpoint for clientID.
func (ts *testServer) exchange(t *testing.T, clientID, code, verifier string) tokens {
	t.Helper()
	form := map[string]string{"grant_type": "authorization_code", "code": code, "redirect_uri": callback}
	if verifier != "" {
		form["code_verifier"] = verifier
	}
	return tokensOf(t, ts.post(t, "/oauth2/token", "form", form, ts.as(clientID)))
}

// provider discovers ts with go-oidc. ctx must outlive every verification
// (the key set fetches with it).
func (ts *testServer) provider(t *testing.T, ctx context.Context) *oidc.Provider {
	t.Helper()
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, ts.http), ts.URL)
	require.NoError(t, err, "go-oidc discovery")
	return p
}

// verifyIDToken checks raw with go-oidc for clientID and returns its claims.
func (ts *testServer) verifyIDToken(t *testing.T, raw, clientID string) (*oidc.IDToken, map[string]any) {
	t.Helper()
	require.NotEmpty(t, raw, "an ID token")
	idt, err := ts.provider(t, t.Context()).Verifier(&oidc.Config{ClientID: clientID}).Verify(t.Context(), raw)
	require.NoError(t, err, "go-oidc verifies the ID token")
	var claims map[string]any
	require.NoError(t, idt.Claims(&claims))
	return idt, claims
}

// jwtHeader is the decoded header of a compact JWT.
func jwtHeader(t *testing.T, raw string) map[string]any {
	t.Helper()
	part, _, ok := strings.Cut(raw, ".")
	require.True(t, ok, "a compact JWT")
	b, err := base64.RawURLEncoding.DecodeString(part)
	require.NoError(t, err)
	var h map[string]any
	require.NoError(t, json.Unmarshal(b, &h))
	return h
}

// publishedKIDs is the kid of every key of the JWKS, which must hold public
// signing keys only.
func (ts *testServer) publishedKIDs(t *testing.T) []string {
	t.Helper()
	r := ts.get(t, "/.well-known/jwks.json")
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Contains(t, r.Header.Get("Content-Type"), "application/json")
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(r.Body, &set))
	require.NotEmpty(t, set.Keys)
	var kids []string
	for _, k := range set.Keys {
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
			require.NotContains(t, k, private, "the JWKS never holds private member %q", private)
		}
		require.NotEmpty(t, k["kid"], "every key has a kid")
		require.NotEmpty(t, k["alg"], "every key has an alg")
		require.Equal(t, "sig", k["use"])
		require.NotEmpty(t, k["kty"])
		kids = append(kids, k["kid"].(string))
	}
	return kids
}

func TestOIDCDiscovery(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	p := ts.provider(t, t.Context())
	require.Equal(t, ts.URL+"/oauth2/auth", p.Endpoint().AuthURL)
	require.Equal(t, ts.URL+"/oauth2/token", p.Endpoint().TokenURL)
	require.Equal(t, ts.URL+"/userinfo", p.UserInfoEndpoint())

	var doc map[string]any
	require.NoError(t, p.Claims(&doc))
	endpoints := map[string]struct{ path, method string }{
		"authorization_endpoint":                {"/oauth2/auth", http.MethodGet},
		"token_endpoint":                        {"/oauth2/token", http.MethodPost},
		"userinfo_endpoint":                     {"/userinfo", http.MethodGet},
		"jwks_uri":                              {"/.well-known/jwks.json", http.MethodGet},
		"end_session_endpoint":                  {"/oauth2/sessions/logout", http.MethodGet},
		"pushed_authorization_request_endpoint": {"/oauth2/par", http.MethodPost},
		"introspection_endpoint":                {"/oauth2/introspect", http.MethodPost},
		"revocation_endpoint":                   {"/oauth2/revoke", http.MethodPost},
	}
	for key, e := range endpoints {
		require.Equal(t, ts.URL+e.path, doc[key], key)
		r := ts.raw(t, e.method, e.path, "application/x-www-form-urlencoded", "", noAuth)
		require.NotContains(t, []int{http.StatusNotFound, http.StatusMethodNotAllowed}, r.Status, "%s %s is listed but not served", e.method, key)
		require.Less(t, r.Status, 500, "%s answers without a server error", key)
	}

	list := func(key string) []string {
		raw, ok := doc[key].([]any)
		require.True(t, ok, "%s is a list: %v", key, doc[key])
		out := make([]string, 0, len(raw))
		for _, v := range raw {
			out = append(out, v.(string))
		}
		return out
	}
	require.Equal(t, []string{"code"}, list("response_types_supported"))
	require.Equal(t, []string{"S256"}, list("code_challenge_methods_supported"))
	require.Subset(t, list("scopes_supported"), []string{"openid", "profile", "email", "groups", "offline_access"})
	require.Subset(t, list("claims_supported"), []string{"sub", "iss", "aud", "exp", "iat", "name", "preferred_username", "email", "email_verified", "groups"})
	require.Contains(t, list("response_modes_supported"), "query")
	require.Subset(t, list("grant_types_supported"), []string{"authorization_code", "refresh_token", "client_credentials"})
	require.Contains(t, list("id_token_signing_alg_values_supported"), "RS256")
	require.Contains(t, list("subject_types_supported"), "public")
	for _, key := range []string{"token_endpoint_auth_methods_supported", "introspection_endpoint_auth_methods_supported", "revocation_endpoint_auth_methods_supported"} {
		require.Subset(t, list(key), []string{"client_secret_basic", "client_secret_post"}, key)
	}
	require.Contains(t, list("token_endpoint_auth_methods_supported"), "none", "public clients exist")
}

// TestFormPostResponseMode: response_modes_supported lists form_post, so
// the code comes back as an auto-submitting form to the redirect URI.
func TestFormPostResponseMode(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	b := ts.newBrowser(t)
	r := b.signIn(t, ts.authorizeURL("skip-client", map[string]string{"response_mode": "form_post"}), "alice", "alice-password")
	require.Equal(t, http.StatusOK, r.Status, "form_post answers a page: %s", r.Body)
	fs := forms(t, r)
	require.Len(t, fs, 1)
	require.Equal(t, callback, fs[0].Action)
	require.NotEmpty(t, fs[0].Fields.Get("code"))
	require.Equal(t, "state-1234567890", fs[0].Fields.Get("state"))
}

func TestIDTokenClaimsByScope(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	p := ts.provider(t, t.Context())
	verifier := p.Verifier(&oidc.Config{ClientID: "web-client"})
	scoped := []string{"name", "preferred_username", "email", "email_verified", "groups"}
	for _, tc := range []struct {
		scope string
		want  map[string]any
	}{
		{"openid", map[string]any{}},
		{"openid profile", map[string]any{"name": "Alice Example", "preferred_username": "alice"}},
		{"openid email", map[string]any{"email": "alice@example.com", "email_verified": true}},
		{"openid groups", map[string]any{"groups": []any{"admins", "dev"}}},
		{"openid profile email groups", map[string]any{"name": "Alice Example", "preferred_username": "alice",
			"email": "alice@example.com", "email_verified": true, "groups": []any{"admins", "dev"}}},
	} {
		t.Run(tc.scope, func(t *testing.T) {
			tk := codeFlow(t, ts.newBrowser(t), "web-client", map[string]string{"scope": tc.scope})
			idt, err := verifier.Verify(t.Context(), tk.ID)
			require.NoError(t, err, "go-oidc verifies the ID token")
			require.Equal(t, "alice", idt.Subject)
			require.Equal(t, []string{"web-client"}, idt.Audience)
			require.Equal(t, "nonce-1234567890", idt.Nonce)
			require.NoError(t, idt.VerifyAccessToken(tk.Access), "at_hash matches the access token")
			var idClaims map[string]any
			require.NoError(t, idt.Claims(&idClaims))

			r := ts.raw(t, http.MethodGet, "/userinfo", "", "", bearerAuth(tk.Access))
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			info := r.json(t)
			require.Equal(t, "alice", info["sub"])
			for name, claims := range map[string]map[string]any{"ID token": idClaims, "userinfo": info} {
				for _, k := range scoped {
					if want, ok := tc.want[k]; ok {
						require.Equal(t, want, claims[k], "%s claim %s", name, k)
					} else {
						require.NotContains(t, claims, k, "%s: %s without its scope", name, k)
					}
				}
				require.Equal(t, "engineering", claims["department"], "%s carries alice's custom claim", name)
			}
		})
	}
}

func TestUserinfo(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	tk := codeFlow(t, ts.newBrowser(t), "web-client", nil)

	t.Run("GET with a bearer header", func(t *testing.T) {
		r := ts.raw(t, http.MethodGet, "/userinfo", "", "", bearerAuth(tk.Access))
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		require.Contains(t, r.Header.Get("Content-Type"), "application/json")
		require.Equal(t, "alice", r.json(t)["sub"])
		require.Equal(t, "alice@example.com", r.json(t)["email"])
	})
	t.Run("POST with the access_token field", func(t *testing.T) {
		r := ts.post(t, "/userinfo", "form", map[string]string{"access_token": tk.Access}, noAuth)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		require.Equal(t, "alice", r.json(t)["sub"])
	})
	t.Run("go-oidc UserInfo", func(t *testing.T) {
		p := ts.provider(t, t.Context())
		info, err := p.UserInfo(oidc.ClientContext(t.Context(), ts.http), oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tk.Access}))
		require.NoError(t, err)
		require.Equal(t, "alice", info.Subject)
		require.Equal(t, "alice@example.com", info.Email)
		require.True(t, info.EmailVerified)
	})
	t.Run("no token", func(t *testing.T) {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			r := ts.raw(t, method, "/userinfo", "", "", noAuth)
			require.Equal(t, http.StatusUnauthorized, r.Status, "%s: %s", method, r.Body)
			// RFC 6750 §3.1: no error code when no credentials were sent.
			requireChallenge(t, r, `Bearer realm="latch"`)
		}
	})
	t.Run("unknown token", func(t *testing.T) {
		r := ts.raw(t, http.MethodGet, "/userinfo", "", "", bearerAuth("not-a-token"))
		require.Equal(t, http.StatusUnauthorized, r.Status, "%s", r.Body)
		requireChallenge(t, r, challengeBearer)
	})
	t.Run("a refresh token is not an access token", func(t *testing.T) {
		r := ts.raw(t, http.MethodGet, "/userinfo", "", "", bearerAuth(tk.Refresh))
		require.Equal(t, http.StatusUnauthorized, r.Status, "%s", r.Body)
		requireChallenge(t, r, challengeBearer)
	})
	t.Run("a client_credentials token has no openid scope", func(t *testing.T) {
		r := ts.raw(t, http.MethodGet, "/userinfo", "", "", bearerAuth(ts.clientCredentials(t, "basic-client", "read")))
		require.Equal(t, http.StatusForbidden, r.Status, "%s", r.Body)
		requireChallenge(t, r, `Bearer realm="latch", error="insufficient_scope"`)
		require.Equal(t, "insufficient_scope", r.json(t)["error"])
	})
	t.Run("revoked token", func(t *testing.T) {
		other := codeFlow(t, ts.newBrowser(t), "web-client", nil)
		r := ts.post(t, "/oauth2/revoke", "form", map[string]string{"token": other.Access}, ts.as("web-client"))
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		r = ts.raw(t, http.MethodGet, "/userinfo", "", "", bearerAuth(other.Access))
		require.Equal(t, http.StatusUnauthorized, r.Status, "%s", r.Body)
		requireChallenge(t, r, challengeBearer)
		require.Equal(t, "invalid_token", r.json(t)["error"])
	})
}

func TestUserinfoExpiredToken(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withLifespans(time.Second, time.Hour))
	tk := codeFlow(t, ts.newBrowser(t), "web-client", nil)
	got := ts.introspect(t, tk.Access).json(t)
	exp, ok := got["exp"].(float64)
	require.True(t, ok, "introspection has exp: %v", got)
	// fosite rounds expiries to the second: wait for exp itself, once.
	time.Sleep(time.Until(time.Unix(int64(exp), 0)) + 100*time.Millisecond)
	r := ts.raw(t, http.MethodGet, "/userinfo", "", "", bearerAuth(tk.Access))
	require.Equal(t, http.StatusUnauthorized, r.Status, "%s", r.Body)
	requireChallenge(t, r, challengeBearer)
}

// serverOf is the *server.Server behind ts.
func serverOf(t *testing.T, ts *testServer) *server.Server {
	t.Helper()
	srv, ok := ts.httpSrv.Config.Handler.(*server.Server)
	require.True(t, ok, "the handler is a *server.Server")
	return srv
}

// verifyWith checks raw's signature against the JWKS of ts, for a token
// issued by issuer (a restarted test server listens elsewhere).
func verifyWith(t *testing.T, ts *testServer, issuer, raw string) error {
	t.Helper()
	ctx := oidc.ClientContext(t.Context(), ts.http)
	keySet := oidc.NewRemoteKeySet(ctx, ts.URL+"/.well-known/jwks.json")
	_, err := oidc.NewVerifier(issuer, keySet, &oidc.Config{ClientID: "web-client"}).Verify(ctx, raw)
	return err
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	issuer := ts.URL
	before := codeFlow(t, ts.newBrowser(t), "web-client", nil)
	oldKID, _ := jwtHeader(t, before.ID)["kid"].(string)
	require.NotEmpty(t, oldKID)
	require.Equal(t, []string{oldKID}, ts.publishedKIDs(t))
	// A verifier that has already cached the old key must find the new one.
	cached := ts.provider(t, t.Context()).Verifier(&oidc.Config{ClientID: "web-client"})
	_, err := cached.Verify(t.Context(), before.ID)
	require.NoError(t, err)

	require.NoError(t, serverOf(t, ts).Keys().Rotate(context.Background(), time.Hour))

	after := codeFlow(t, ts.newBrowser(t), "web-client", nil)
	newKID, _ := jwtHeader(t, after.ID)["kid"].(string)
	require.NotEqual(t, oldKID, newKID, "new ID tokens are signed with the new key at once")
	kids := ts.publishedKIDs(t)
	require.Equal(t, newKID, kids[0], "the signing key comes first")
	require.ElementsMatch(t, []string{oldKID, newKID}, kids, "the retired key stays published")
	_, err = cached.Verify(t.Context(), after.ID)
	require.NoError(t, err, "a relying party with the old JWKS cached refetches it")
	require.NoError(t, verifyWith(t, ts, issuer, before.ID), "an ID token of the retired key still verifies")

	// Another server on the same database: same keys, same signing key.
	ts2 := ts.restart(t)
	require.ElementsMatch(t, []string{oldKID, newKID}, ts2.publishedKIDs(t))
	require.NoError(t, verifyWith(t, ts2, issuer, before.ID))
	require.NoError(t, verifyWith(t, ts2, issuer, after.ID))
	again := codeFlow(t, ts2.newBrowser(t), "web-client", nil)
	require.Equal(t, newKID, jwtHeader(t, again.ID)["kid"], "the restarted server signs with the rotated key")
	ts2.verifyIDToken(t, again.ID, "web-client")
}

// TestKeyRotationUnpublish: a key rotated out with publishFor 0 (a
// compromised key) leaves the JWKS at once, and its tokens stop verifying.
func TestKeyRotationUnpublish(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	before := codeFlow(t, ts.newBrowser(t), "web-client", nil)
	oldKID := jwtHeader(t, before.ID)["kid"].(string)
	require.NoError(t, serverOf(t, ts).Keys().Rotate(context.Background(), 0))
	kids := ts.publishedKIDs(t)
	require.Len(t, kids, 1)
	require.NotEqual(t, oldKID, kids[0])
	require.Error(t, verifyWith(t, ts, ts.URL, before.ID), "a token of an unpublished key does not verify")
	after := codeFlow(t, ts.newBrowser(t), "web-client", nil)
	require.Equal(t, kids[0], jwtHeader(t, after.ID)["kid"])
	ts.verifyIDToken(t, after.ID, "web-client")
}

// TestKeysSurviveRestart: a restart loads the stored key; it neither makes
// a new one nor forgets the old one.
func TestKeysSurviveRestart(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	issuer := ts.URL
	before := codeFlow(t, ts.newBrowser(t), "web-client", nil)
	kid := jwtHeader(t, before.ID)["kid"]

	ts2 := ts.restart(t)
	require.Equal(t, []string{kid.(string)}, ts2.publishedKIDs(t))
	require.NoError(t, verifyWith(t, ts2, issuer, before.ID), "an ID token from before the restart verifies")
	after := codeFlow(t, ts2.newBrowser(t), "web-client", nil)
	require.Equal(t, kid, jwtHeader(t, after.ID)["kid"])
	require.True(t, slices.Contains(ts2.publishedKIDs(t), kid.(string)))
}
