package server_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// devSignIn follows authURL to the login page and signs in with dev
// mode's second form as subject with claims (JSON), allowing consent when
// asked; it returns the callback URL.
func (b *browser) devSignIn(t *testing.T, authURL, subject, claims string) *url.URL {
	t.Helper()
	page := b.loginPage(t, authURL)
	fs := forms(t, page)
	require.Len(t, fs, 2, "dev mode's login page has a second form")
	require.Equal(t, []string{"=" /* one unnamed submit button */}, fs[1].Buttons)
	require.Equal(t, fs[0].Fields.Get("challenge"), fs[1].Fields.Get("challenge"), "the hidden fields are kept")
	r := b.submitForm(t, page, 1, map[string]string{"subject": subject, "claims": claims})
	loc := location(t, r)
	if strings.HasPrefix(loc, "/consent?") {
		r = b.submit(t, b.get(t, loc), map[string]string{"decision": "allow"})
		loc = location(t, r)
	}
	u, err := url.Parse(loc)
	require.NoError(t, err)
	return u
}

// TestDevModeUnregisteredClientsWithOAuth2: in dev mode golang.org/x/oauth2
// works with client ids nobody registered: a public client with PKCE, a
// confidential one whose first secret sticks (the authorization request
// without code_challenge could only be a confidential client's), and a
// client_credentials client that brings its secret at once; each on any
// loopback redirect URI.
func TestDevModeUnregisteredClientsWithOAuth2(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withDevMode())
	ctx := oidc.ClientContext(t.Context(), ts.http)
	provider, err := oidc.NewProvider(ctx, ts.URL)
	require.NoError(t, err)

	t.Run("public, PKCE", func(t *testing.T) {
		endpoint := provider.Endpoint()
		endpoint.AuthStyle = oauth2.AuthStyleInParams
		conf := oauth2.Config{ClientID: "never-registered-spa", Endpoint: endpoint, RedirectURL: "http://localhost:3000/callback",
			Scopes: []string{oidc.ScopeOpenID, "profile", oidc.ScopeOfflineAccess, "api:read"}}
		verifier := oauth2.GenerateVerifier()
		cb := ts.newBrowser(t).devSignIn(t, conf.AuthCodeURL("state-spa-123", oauth2.S256ChallengeOption(verifier)), "dev-user", "")
		require.Equal(t, "http://localhost:3000/callback", cb.Scheme+"://"+cb.Host+cb.Path, "callback %s", cb)
		tok, err := conf.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(verifier))
		require.NoError(t, err)
		require.NotEmpty(t, tok.RefreshToken)
		require.Equal(t, "api:read offline_access openid profile", sortedScope(tok.Extra("scope")))
		_, claims := ts.verifyIDToken(t, tok.Extra("id_token").(string), "never-registered-spa")
		require.Equal(t, "dev-user", claims["sub"])
		// Refreshing works too, as a public client.
		_, err = conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		require.NoError(t, err, "refresh")
	})

	t.Run("confidential, first secret sticks", func(t *testing.T) {
		conf := oauth2.Config{ClientID: "never-registered-web", ClientSecret: "web-secret-1", Endpoint: provider.Endpoint(),
			RedirectURL: "http://127.0.0.1:8123/cb", Scopes: []string{oidc.ScopeOpenID}}
		b := ts.newBrowser(t)
		cb := b.devSignIn(t, conf.AuthCodeURL("state-web-123"), "dev-user", "")
		tok, err := conf.Exchange(ctx, cb.Query().Get("code"))
		require.NoError(t, err)
		ts.verifyIDToken(t, tok.Extra("id_token").(string), "never-registered-web")

		// Another loopback redirect URI is accepted for it as well...
		conf.RedirectURL = "http://127.0.0.1:9999/other"
		cb = b.authorize(t, conf.AuthCodeURL("state-web-456"))
		require.Equal(t, "http://127.0.0.1:9999/other", cb.Scheme+"://"+cb.Host+cb.Path, "callback %s", cb)
		// ...but now the secret is the one it brought first.
		conf.ClientSecret = "another-secret"
		_, err = conf.Exchange(ctx, cb.Query().Get("code"))
		var re *oauth2.RetrieveError
		require.ErrorAs(t, err, &re)
		require.Equal(t, "invalid_client", re.ErrorCode)
	})

	t.Run("client_credentials", func(t *testing.T) {
		cc := clientcredentials.Config{ClientID: "never-registered-service", ClientSecret: "service-secret",
			TokenURL: provider.Endpoint().TokenURL, Scopes: []string{"orders:write"}}
		tok, err := cc.Token(ctx)
		require.NoError(t, err)
		require.True(t, ts.active(t, tok.AccessToken))
		cc.ClientSecret = "wrong"
		_, err = cc.Token(ctx)
		require.Error(t, err, "the secret it was created with is checked")
	})

	t.Run("concurrent first uses: one secret wins", func(t *testing.T) {
		const n = 6
		results := make(chan int, n)
		for i := range n {
			go func() {
				cc := clientcredentials.Config{ClientID: "never-registered-race", ClientSecret: fmt.Sprintf("race-secret-%d", i), TokenURL: provider.Endpoint().TokenURL,
					AuthStyle: oauth2.AuthStyleInHeader}
				if _, err := cc.Token(ctx); err == nil {
					results <- 1
				} else {
					results <- 0
				}
			}()
		}
		won := 0
		for range n {
			won += <-results
		}
		require.Equal(t, 1, won, "exactly one of the concurrent first secrets is the client's")
	})

	t.Run("device authorization", func(t *testing.T) {
		r := ts.post(t, "/oauth2/device/auth", "form", map[string]string{"scope": "openid profile"}, idAuth("never-registered-tv"))
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		require.NotEmpty(t, r.json(t)["device_code"])
	})

	t.Run("no foreign redirect URI", func(t *testing.T) {
		r := ts.newBrowser(t).get(t, ts.authorizeURL("never-registered-evil", map[string]string{
			"redirect_uri": "https://evil.example/cb", "code_challenge": strings.Repeat("A", 43), "code_challenge_method": "S256"}))
		flowRequirePage(t, r, http.StatusBadRequest)
		require.Equal(t, "Unregistered return address", parsePage(t, r.Body).text("h1"))
	})
}

// sortedScope is a token response's scope, its words sorted.
func sortedScope(v any) string {
	s, _ := v.(string)
	words := strings.Fields(s)
	for i := range words {
		for j := i + 1; j < len(words); j++ {
			if words[j] < words[i] {
				words[i], words[j] = words[j], words[i]
			}
		}
	}
	return strings.Join(words, " ")
}

// TestDevModeIsOffWithoutDev: without dev mode an unknown client id is
// refused everywhere, nothing is created, and the login page has one form.
func TestDevModeIsOffWithoutDev(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	_, challenge := pkcePair("off-verifier-0123456789012345678901234567890")
	r := ts.newBrowser(t).get(t, ts.authorizeURL("never-registered-spa", map[string]string{
		"code_challenge": challenge, "code_challenge_method": "S256"}))
	flowRequirePage(t, r, http.StatusBadRequest)
	require.Equal(t, "Unknown application", parsePage(t, r.Body).text("h1"))
	requireError(t, ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "client_credentials"},
		basicAuth("never-registered-service", "service-secret")), http.StatusUnauthorized, "invalid_client")
	requireError(t, ts.post(t, "/oauth2/device/auth", "form", nil, idAuth("never-registered-device")), http.StatusUnauthorized, "invalid_client")
	_, err := ts.Store.GetClient(t.Context(), "never-registered-service")
	require.Error(t, err, "nothing was created")

	b := ts.newBrowser(t)
	page := b.loginPage(t, ts.authorizeURL("web-client", nil))
	require.Len(t, forms(t, page), 1, "no dev form on the login page")
	require.NotContains(t, string(page.Body), `name="subject"`)
	// A posted subject is no way in either.
	r = b.submit(t, page, map[string]string{"username": "", "password": "", "subject": "mallory", "claims": "{}"})
	require.Equal(t, http.StatusUnauthorized, r.Status, "the normal login form refuses it: %s", r.Body)
}

// TestDevLoginClaimsInTokens: dev mode's second login form signs in any
// subject, and its typed claims reach the ID token (verified by go-oidc),
// userinfo and JWT access tokens.
func TestDevLoginClaimsInTokens(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withDevMode(), withAccessTokenFormat("jwt"))
	ctx := oidc.ClientContext(t.Context(), ts.http)
	provider, err := oidc.NewProvider(ctx, ts.URL)
	require.NoError(t, err)
	conf := oauth2.Config{ClientID: "web-client", ClientSecret: ts.secrets["web-client"], Endpoint: provider.Endpoint(),
		RedirectURL: callback, Scopes: []string{oidc.ScopeOpenID, "profile", "email"}}
	claims := `{"email": "qa@example.com", "email_verified": true, "name": "QA Tester", "department": "qa", "roles": ["reader", "writer"], "level": 3}`
	cb := ts.newBrowser(t).devSignIn(t, conf.AuthCodeURL("state-claims-1", oidc.Nonce("nonce-claims-1")), "qa-tester", claims)
	tok, err := conf.Exchange(ctx, cb.Query().Get("code"))
	require.NoError(t, err)

	want := map[string]any{"sub": "qa-tester", "email": "qa@example.com", "email_verified": true, "name": "QA Tester",
		"preferred_username": "qa-tester", "department": "qa", "roles": []any{"reader", "writer"}, "level": float64(3)}
	_, id := ts.verifyIDToken(t, tok.Extra("id_token").(string), "web-client")
	info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	require.NoError(t, err)
	var ui map[string]any
	require.NoError(t, info.Claims(&ui))
	at, err := provider.Verifier(&oidc.Config{ClientID: "web-client"}).Verify(ctx, tok.AccessToken)
	require.NoError(t, err, "the JWT access token verifies with the published keys")
	var atClaims map[string]any
	require.NoError(t, at.Claims(&atClaims))
	for name, got := range map[string]map[string]any{"ID token": id, "userinfo": ui, "JWT access token": atClaims} {
		for k, v := range want {
			require.Equal(t, v, got[k], "%s claim %s: %v", name, k, got)
		}
	}
	require.Equal(t, "web-client", atClaims["client_id"], "protocol claims stay the server's")
}

// TestDevLoginRefusals: what the dev form refuses, it says on the form,
// which keeps what was typed.
func TestDevLoginRefusals(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withDevMode())
	for _, tt := range []struct{ name, subject, claims, says string }{
		{"blank subject", " ", `{}`, "subject must not be empty"},
		{"not an object", "dev", `["a"]`, "one JSON object"},
		{"two values", "dev", `{} {}`, "one JSON object"},
		{"broken JSON", "dev", `{"a":`, "one JSON object"},
		{"reserved claim", "dev", `{"sub": "admin"}`, `"sub" is set by the server`},
		{"reserved audience", "dev", `{"aud": "x"}`, `"aud" is set by the server`},
		{"wrong type", "dev", `{"email": 5}`, `"email" has the wrong type`},
		{"too long", "dev", `{"a":"` + strings.Repeat("x", 9000) + `"}`, "at most 8192 bytes"},
		{"control character", "de\x01v", `{}`, "control characters"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := ts.newBrowser(t)
			page := b.loginPage(t, ts.authorizeURL("web-client", nil))
			r := b.submitForm(t, page, 1, map[string]string{"subject": tt.subject, "claims": tt.claims})
			flowRequirePage(t, r, http.StatusBadRequest)
			p := parsePage(t, r.Body)
			require.Contains(t, p.byID("dev-error"), tt.says)
			if len(tt.claims) < 8192 {
				require.Equal(t, tt.claims, p.text("#claims"), "what was typed is kept")
			}
			_, err := ts.Store.GetUser(t.Context(), tt.subject)
			require.Error(t, err, "no user was made")
		})
	}
}
