package server_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v3"
	josejwt "github.com/go-jose/go-jose/v3/jwt"
	"github.com/stretchr/testify/require"
)

const (
	byeURI  = "http://127.0.0.1:5555/bye"
	evilBye = "https://evil.example/bye"
)

// signedIn is a browser where alice signed in through web-client, and the
// ID token web-client received.
func signedIn(t *testing.T, ts *testServer) (*browser, string) {
	t.Helper()
	b := ts.newBrowser(t)
	tk := codeFlow(t, b, "web-client", nil)
	require.NotEmpty(t, tk.ID)
	return b, tk.ID
}

func logoutURL(params map[string]string) string {
	q := url.Values{}
	for k, v := range params {
		q.Set(k, v)
	}
	return "/oauth2/sessions/logout?" + q.Encode()
}

// requireSignedIn checks that b's login session holds: prompt=none passes.
func requireSignedIn(t *testing.T, b *browser) {
	t.Helper()
	u, err := url.Parse(location(t, b.get(t, b.ts.authorizeURL("skip-client", map[string]string{"prompt": "none"}))))
	require.NoError(t, err)
	require.NotEmpty(t, u.Query().Get("code"), "still signed in: %s", u)
}

// requireSignedOut checks that b's login session is over: the login page
// again, and login_required for prompt=none.
func requireSignedOut(t *testing.T, b *browser) {
	t.Helper()
	loc := location(t, b.get(t, b.ts.authorizeURL("web-client", nil)))
	require.True(t, strings.HasPrefix(loc, "/login?"), "the login page again, not %s", loc)
	u, err := url.Parse(location(t, b.get(t, b.ts.authorizeURL("skip-client", map[string]string{"prompt": "none"}))))
	require.NoError(t, err)
	require.Equal(t, "login_required", u.Query().Get("error"), "%s", u)
}

// requireConfirmation checks r is the logout confirmation page: one form
// with one button, decision=allow, and no redirect.
func requireConfirmation(t *testing.T, r response) {
	t.Helper()
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Empty(t, r.Header.Get("Location"))
	require.Contains(t, r.Header.Get("Content-Type"), "text/html")
	fs := forms(t, r)
	require.Len(t, fs, 1)
	require.Equal(t, []string{"decision=allow"}, fs[0].Buttons)
	require.NotEmpty(t, fs[0].Fields.Get("csrf_token"))
}

// requireSignedOutPage checks r is the page after a confirmed logout, and
// that it leads nowhere, or only to registered: a URI the client
// registered (a server may follow it once the person confirmed).
func requireSignedOutPage(t *testing.T, r response, registered string) {
	t.Helper()
	if loc := r.Header.Get("Location"); loc != "" && registered != "" {
		require.Equal(t, http.StatusFound, r.Status)
		require.True(t, loc == registered || strings.HasPrefix(loc, registered+"?"), "only ever to the registered URI: %s", loc)
		return
	}
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Empty(t, r.Header.Get("Location"), "never redirected")
	body := strings.ToLower(string(r.Body))
	require.NotContains(t, body, "evil.example")
	require.NotContains(t, body, "http-equiv")
}

func TestLogoutRedirect(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	b, idToken := signedIn(t, ts)
	// The session cookie as it was, to replay after the logout.
	stolen := b.client.Jar.Cookies(mustURL(t, ts.URL))
	requireSignedIn(t, b)

	r := b.get(t, logoutURL(map[string]string{"id_token_hint": idToken, "post_logout_redirect_uri": byeURI, "state": "s123"}))
	require.Equal(t, http.StatusFound, r.Status, "%s", r.Body)
	require.Equal(t, byeURI+"?state=s123", r.Header.Get("Location"))
	requireSignedOut(t, b)

	replay := ts.newBrowser(t)
	replay.client.Jar.SetCookies(mustURL(t, ts.URL), stolen)
	requireSignedOut(t, replay)

	// Nobody is signed in any more; the same request still goes back.
	r = b.get(t, logoutURL(map[string]string{"id_token_hint": idToken, "post_logout_redirect_uri": byeURI}))
	require.Equal(t, byeURI, location(t, r))
}

func TestLogoutRPPost(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	b, idToken := signedIn(t, ts)
	// The RP's own auto-submitting form: no CSRF token of ours, no decision.
	form := url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {byeURI}, "state": {"s123"}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.URL+"/oauth2/sessions/logout", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://127.0.0.1:5555")
	r := b.do(t, req)
	require.Equal(t, http.StatusFound, r.Status, "%s", r.Body)
	require.Equal(t, byeURI+"?state=s123", r.Header.Get("Location"))
	requireSignedOut(t, b)
}

func TestLogoutUnregisteredURI(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	b, idToken := signedIn(t, ts)
	page := b.get(t, logoutURL(map[string]string{"id_token_hint": idToken, "post_logout_redirect_uri": evilBye, "state": "s123"}))
	requireConfirmation(t, page)
	requireSignedIn(t, b)

	r := b.submit(t, page, map[string]string{"decision": "allow"})
	requireSignedOutPage(t, r, "")
	requireSignedOut(t, b)
}

// TestLogoutConfirmation: whenever the request cannot be trusted, the
// person confirms, and then stays on Latch.
func TestLogoutConfirmation(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	_, realHint := signedIn(t, ts)
	skipHint := codeFlow(t, ts.newBrowser(t), "skip-client", nil).ID
	kid, _ := jwtHeader(t, realHint)["kid"].(string)

	for _, tc := range []struct {
		name   string
		params map[string]string
	}{
		{"no id_token_hint", map[string]string{"post_logout_redirect_uri": byeURI, "state": "s123"}},
		{"no id_token_hint, client_id given", map[string]string{"post_logout_redirect_uri": byeURI, "client_id": "web-client"}},
		{"garbage id_token_hint", map[string]string{"id_token_hint": "garbage", "post_logout_redirect_uri": byeURI}},
		{"hint signed by another key under our kid", map[string]string{"id_token_hint": forgedIDToken(t, ts, kid), "post_logout_redirect_uri": byeURI}},
		{"unsigned hint (alg none)", map[string]string{"id_token_hint": unsignedIDToken(t, ts, kid), "post_logout_redirect_uri": byeURI}},
		{"hint with a tampered payload", map[string]string{"id_token_hint": tamper(t, skipHint), "post_logout_redirect_uri": byeURI}},
		{"hint of a client that did not register the URI", map[string]string{"id_token_hint": skipHint, "post_logout_redirect_uri": byeURI}},
		{"client_id not in the hint's audience", map[string]string{"id_token_hint": realHint, "post_logout_redirect_uri": byeURI, "client_id": "public-client"}},
		{"nothing at all", map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Not parallel: browsers on one server take turns (codeFlow).
			b, _ := signedIn(t, ts)
			page := b.get(t, logoutURL(tc.params))
			requireConfirmation(t, page)
			requireSignedIn(t, b)
			requireSignedOutPage(t, b.submit(t, page, map[string]string{"decision": "allow"}), byeURI)
			requireSignedOut(t, b)
		})
	}

	t.Run("someone else's hint", func(t *testing.T) {
		b := ts.newBrowser(t)
		loc := location(t, b.signIn(t, ts.authorizeURL("skip-client", nil), "bob", "bob-password"))
		require.True(t, strings.HasPrefix(loc, callback+"?"), "bob signed in: %s", loc)
		page := b.get(t, logoutURL(map[string]string{"id_token_hint": realHint, "post_logout_redirect_uri": byeURI}))
		requireConfirmation(t, page)
		requireSignedIn(t, b)
	})
}

func TestLogoutCSRF(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	b, idToken := signedIn(t, ts)
	page := b.get(t, logoutURL(map[string]string{"post_logout_redirect_uri": byeURI}))
	requireConfirmation(t, page)

	t.Run("the confirmation without its CSRF token", func(t *testing.T) {
		r := b.submit(t, page, map[string]string{"decision": "allow", "csrf_token": ""})
		require.Equal(t, http.StatusForbidden, r.Status, "%s", r.Body)
		require.Empty(t, r.Header.Get("Location"))
		requireSignedIn(t, b)
	})
	t.Run("the confirmation with a wrong CSRF token", func(t *testing.T) {
		r := b.submit(t, page, map[string]string{"decision": "allow", "csrf_token": "AAAA" + page.csrf(t)[4:]})
		require.Equal(t, http.StatusForbidden, r.Status, "%s", r.Body)
		requireSignedIn(t, b)
	})
	t.Run("a cross-site confirmation", func(t *testing.T) {
		// Another site posting decision=allow: no token, so no logout, even
		// with a valid hint and a registered URI.
		form := url.Values{"decision": {"allow"}, "id_token_hint": {idToken}, "post_logout_redirect_uri": {byeURI}}
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.URL+"/oauth2/sessions/logout", strings.NewReader(form.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://evil.example")
		r := b.do(t, req)
		require.Equal(t, http.StatusForbidden, r.Status, "%s", r.Body)
		require.Empty(t, r.Header.Get("Location"))
		requireSignedIn(t, b)
	})
	t.Run("with the token", func(t *testing.T) {
		requireSignedOutPage(t, b.submit(t, page, map[string]string{"decision": "allow"}), byeURI)
		requireSignedOut(t, b)
	})
}

func (r response) csrf(t *testing.T) string {
	t.Helper()
	fs := forms(t, r)
	require.NotEmpty(t, fs)
	tok := fs[0].Fields.Get("csrf_token")
	require.Greater(t, len(tok), 8)
	return tok
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u
}

// hintClaims are the claims of a genuine-looking ID token of alice for
// web-client.
func hintClaims(ts *testServer) map[string]any {
	now := time.Now()
	return map[string]any{"iss": ts.URL, "sub": "alice", "aud": []string{"web-client"},
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
}

// forgedIDToken is signed with a fresh key, under the kid of the server's.
func forgedIDToken(t *testing.T, ts *testServer, kid string) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	require.NoError(t, err)
	raw, err := josejwt.Signed(sig).Claims(hintClaims(ts)).CompactSerialize()
	require.NoError(t, err)
	return raw
}

func unsignedIDToken(t *testing.T, ts *testServer, kid string) string {
	t.Helper()
	payload, err := json.Marshal(hintClaims(ts))
	require.NoError(t, err)
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none","kid":"`+kid+`","typ":"JWT"}`)) + "." + enc(payload) + "."
}

// tamper turns a genuine ID token of skip-client into one for web-client,
// keeping its signature.
func tamper(t *testing.T, raw string) string {
	t.Helper()
	parts := strings.Split(raw, ".")
	require.Len(t, parts, 3)
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	changed := strings.ReplaceAll(string(payload), `"skip-client"`, `"web-client"`)
	require.NotEqual(t, string(payload), changed)
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(changed))
	return strings.Join(parts, ".")
}
