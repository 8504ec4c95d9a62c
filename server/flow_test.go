package server_test

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"
	"golang.org/x/oauth2"
)

// Every parallel subtest of these files starts its own server: remembered
// consents, login rate limits and challenges then never leak from one
// subtest into another, whatever order they run in.

// TestOIDCCodeFlow drives the whole authorization code flow the way a
// relying party does: discovery, PKCE and the token exchange with
// golang.org/x/oauth2, the ID token and userinfo with go-oidc, and a
// person signing in and consenting through the real HTML forms.
func TestOIDCCodeFlow(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		client string
		style  oauth2.AuthStyle
	}{
		{"web-client", oauth2.AuthStyleInHeader},    // confidential: client_secret_basic
		{"public-client", oauth2.AuthStyleInParams}, // public: client_id alone, PKCE
	} {
		t.Run(tt.client, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t)
			ctx := oidc.ClientContext(t.Context(), ts.http)
			provider, err := oidc.NewProvider(ctx, ts.URL)
			require.NoError(t, err, "discovery")
			endpoint := provider.Endpoint()
			endpoint.AuthStyle = tt.style
			conf := oauth2.Config{
				ClientID: tt.client, ClientSecret: ts.secrets[tt.client], Endpoint: endpoint, RedirectURL: callback,
				Scopes: []string{oidc.ScopeOpenID, "profile", "email", "groups", oidc.ScopeOfflineAccess},
			}
			verifier, state, nonce := oauth2.GenerateVerifier(), flowRandom(t), flowRandom(t)
			before := time.Now().Add(-2 * time.Second)

			b := ts.newBrowser(t)
			cb := b.authorize(t, conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)))
			require.Equal(t, callback, cb.Scheme+"://"+cb.Host+cb.Path)
			require.Equal(t, state, cb.Query().Get("state"), "state round-trips")
			require.Empty(t, cb.Query().Get("error"), "callback: %s", cb)

			tok, err := conf.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(verifier))
			require.NoError(t, err, "token exchange")
			require.Equal(t, "Bearer", tok.Type())
			require.NotEmpty(t, tok.AccessToken)
			require.NotEmpty(t, tok.RefreshToken, "offline_access was granted")
			rawID, _ := tok.Extra("id_token").(string)
			require.NotEmpty(t, rawID, "an ID token for the openid scope")

			idt, err := provider.Verifier(&oidc.Config{ClientID: tt.client}).Verify(ctx, rawID)
			require.NoError(t, err, "the ID token verifies with the published keys")
			require.Equal(t, nonce, idt.Nonce, "the nonce of the request")
			require.Equal(t, ts.URL, idt.Issuer)
			require.Equal(t, "alice", idt.Subject)
			require.Equal(t, []string{tt.client}, idt.Audience)
			require.NoError(t, idt.VerifyAccessToken(tok.AccessToken), "at_hash matches the access token")

			var claims map[string]any
			require.NoError(t, idt.Claims(&claims))
			for _, name := range []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash"} {
				require.Contains(t, claims, name, "ID token claims: %v", claims)
			}
			authTime := time.Unix(int64(claims["auth_time"].(float64)), 0)
			require.True(t, authTime.After(before) && !authTime.After(time.Now()), "auth_time %v is the sign-in just done", authTime)
			require.True(t, idt.Expiry.After(time.Now()), "exp in the future")
			require.False(t, idt.IssuedAt.Before(before), "iat is now")
			require.Equal(t, "Alice Example", claims["name"])
			require.Equal(t, "alice@example.com", claims["email"])
			require.Equal(t, true, claims["email_verified"])
			require.ElementsMatch(t, []any{"admins", "dev"}, claims["groups"])
			require.Equal(t, "engineering", claims["department"], "the user's custom claim")

			info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
			require.NoError(t, err, "userinfo")
			require.Equal(t, "alice", info.Subject)
			require.Equal(t, "alice@example.com", info.Email)
			require.True(t, info.EmailVerified)
			var ui map[string]any
			require.NoError(t, info.Claims(&ui))
			require.Equal(t, "Alice Example", ui["name"])
			require.ElementsMatch(t, []any{"admins", "dev"}, ui["groups"])
			require.Equal(t, "engineering", ui["department"])
		})
	}

	t.Run("without the email scope", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		ctx := oidc.ClientContext(t.Context(), ts.http)
		provider, err := oidc.NewProvider(ctx, ts.URL)
		require.NoError(t, err)
		conf := oauth2.Config{ClientID: "web-client", ClientSecret: ts.secrets["web-client"], Endpoint: provider.Endpoint(),
			RedirectURL: callback, Scopes: []string{oidc.ScopeOpenID, "profile"}}
		verifier, nonce := oauth2.GenerateVerifier(), flowRandom(t)
		cb := ts.newBrowser(t).authorize(t, conf.AuthCodeURL("state-no-email", oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)))
		tok, err := conf.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(verifier))
		require.NoError(t, err)
		require.Empty(t, tok.RefreshToken, "no offline_access, no refresh token")
		rawID, _ := tok.Extra("id_token").(string)
		idt, err := provider.Verifier(&oidc.Config{ClientID: "web-client"}).Verify(ctx, rawID)
		require.NoError(t, err)
		require.Equal(t, nonce, idt.Nonce)
		var claims map[string]any
		require.NoError(t, idt.Claims(&claims))
		require.Equal(t, "Alice Example", claims["name"], "profile was granted")
		for _, name := range []string{"email", "email_verified", "groups"} {
			require.NotContains(t, claims, name, "ID token claims without its scope: %v", claims)
		}
		info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		require.NoError(t, err)
		require.Empty(t, info.Email)
		var ui map[string]any
		require.NoError(t, info.Claims(&ui))
		require.NotContains(t, ui, "email")
		require.NotContains(t, ui, "groups")
	})
}

// flowRandom is a random URL-safe string (a state or a nonce).
func flowRandom(t *testing.T) string {
	t.Helper()
	raw := make([]byte, 16)
	_, err := rand.Read(raw)
	require.NoError(t, err)
	return base64.RawURLEncoding.EncodeToString(raw)
}

// flowRequirePage checks r is an HTML page with status, never a redirect.
func flowRequirePage(t *testing.T, r response, status int) {
	t.Helper()
	require.Equal(t, status, r.Status, "status; body %s", r.Body)
	require.Empty(t, r.Header.Get("Location"), "a page, not a redirect")
	require.Contains(t, r.Header.Get("Content-Type"), "text/html")
}

// flowCallback is the callback URL r redirects to; it must be callback.
func flowCallback(t *testing.T, r response) url.Values {
	t.Helper()
	u, err := url.Parse(location(t, r))
	require.NoError(t, err)
	require.Equal(t, callback, u.Scheme+"://"+u.Host+u.Path, "redirected to the client's callback")
	return u.Query()
}

// flowSignIn signs in as alice from authURL and returns where the login
// form sent the browser.
func flowSignIn(t *testing.T, b *browser, authURL string) string {
	t.Helper()
	return location(t, b.signIn(t, authURL, "alice", "alice-password"))
}

// flowConsent opens the consent page at target and submits set.
func flowConsent(t *testing.T, b *browser, target string, set map[string]string) response {
	t.Helper()
	require.True(t, strings.HasPrefix(target, "/consent?challenge="), "sent to the consent page, not %s", target)
	page := b.get(t, target)
	require.Equal(t, http.StatusOK, page.Status, "consent page: %s", page.Body)
	return b.submit(t, page, set)
}

// flowExchange redeems code at the token endpoint as clientID.
func flowExchange(t *testing.T, ts *testServer, clientID, code, verifier string) response {
	t.Helper()
	fields := map[string]string{"grant_type": "authorization_code", "code": code, "redirect_uri": callback}
	if verifier != "" {
		fields["code_verifier"] = verifier
	}
	return ts.post(t, "/oauth2/token", "form", fields, ts.as(clientID))
}

// flowPost submits the only form of page with set applied (an empty value
// removes a field) and the given Origin header ("" sends none).
func flowPost(t *testing.T, b *browser, page response, set map[string]string, origin string) response {
	t.Helper()
	fs := forms(t, page)
	require.Len(t, fs, 1, "the page has one form: %s", page.Body)
	values := url.Values{}
	for k, v := range fs[0].Fields {
		values[k] = v
	}
	for k, v := range set {
		if v == "" {
			values.Del(k)
		} else {
			values.Set(k, v)
		}
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, b.ts.URL+fs[0].Action, strings.NewReader(values.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	return b.do(t, req)
}

// flowAlert is the text of the page's role="alert" element ("" if none).
func flowAlert(t *testing.T, r response) string {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(string(r.Body)))
	require.NoError(t, err)
	var text string
	var walk func(n *html.Node, in bool)
	walk = func(n *html.Node, in bool) {
		if n.Type == html.ElementNode {
			for _, a := range n.Attr {
				if a.Key == "role" && a.Val == "alert" {
					in = true
				}
			}
		}
		if in && n.Type == html.TextNode {
			text += n.Data
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, in)
		}
	}
	walk(doc, false)
	return strings.TrimSpace(text)
}
