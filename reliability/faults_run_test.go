package reliability_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

// faultRequest is one request made while the storage fails: what it
// sends, and what must hold once the storage is back, given whether it
// succeeded during the fault.
type faultRequest struct {
	name  string
	page  bool // a browser page: its errors are HTML, its success a redirect
	do    func(ctx context.Context) (answer, error)
	after func(t *testing.T, succeeded bool, ans answer)
}

// runFault makes the grants the requests need, injects the fault, sends
// each request once, checks the reads still work, undoes the fault, then
// checks every request's effect and that service is back. strict means
// the fault stops every write, so no request may succeed.
func runFault(t *testing.T, n *node, path string, strict bool, inject, undo func()) {
	ctx := t.Context()
	rec := newRecorder()
	t.Cleanup(rec.close)
	a := newAPI(n.URL, rec)
	snap := openSnapshot(t, path)
	reqs, keep := faultRequests(t, a)

	inject()
	succeeded := make([]bool, len(reqs))
	answers := make([]answer, len(reqs))
	for i, r := range reqs {
		before := snap.take(t)
		ans, err := r.do(ctx)
		require.NoError(t, err, r.name)
		answers[i] = ans
		if ans.Status == http.StatusOK || (r.page && ans.Status/100 == 3 && !strings.Contains(ans.Header.Get("Location"), "error=")) {
			require.False(t, strict, "%s succeeded while the storage could not write: %s", r.name, ans)
			succeeded[i] = true
			t.Logf("%s: succeeded during the fault", r.name)
			continue
		}
		if r.page {
			requireUnavailablePage(t, r.name, ans)
		} else {
			requireUnavailable(t, r.name, ans, nil)
		}
		if changed := changedTables(before, snap.take(t)); len(changed) > 0 {
			t.Errorf("%s failed but changed these tables: %v", r.name, changed)
		}
	}
	// Reads do not need the write connection.
	active, ans, err := a.introspect(ctx, keep)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, ans.Status, "introspection during the fault: %s", ans)
	require.True(t, active, "an untouched token during the fault")
	if ready, err := a.hc.Get(n.URL + "/health/ready"); err == nil {
		_ = ready.Body.Close()
		t.Logf("/health/ready during the fault: %d", ready.StatusCode)
	}

	undo()
	for i, r := range reqs {
		t.Run("after/"+r.name, func(t *testing.T) {
			r.after(t, succeeded[i], answers[i])
		})
	}
	// Service is back: a new token, its revocation, a sign-in.
	fresh := mustCC(t, a)
	requireActive(t, a, fresh, true, "a token issued after the fault")
	requireRevoked(t, a, svc, fresh)
	_, err = a.newBrowser().authorize(ctx, web, "openid")
	require.NoError(t, err, "sign in after the fault")
	requireActive(t, a, keep, true, "a token no request touched")

	snap.integrity(t)
	requireCleanLogs(t, n)
	rec.locked.report(t, "answers naming SQLite's lock")
}

// faultRequests makes, before the fault, the grants each request works
// on, and returns the requests and a token none of them touches.
func faultRequests(t *testing.T, a *api) ([]faultRequest, string) {
	ctx := t.Context()
	keep, toRevoke := mustCC(t, a), mustCC(t, a)
	signedIn := a.newBrowser()
	refreshed := mustCodeFlow(t, signedIn, web)
	publicGrant := mustCodeFlow(t, signedIn, spa)
	pending, err := signedIn.authorize(ctx, web, "openid", "offline_access")
	require.NoError(t, err)
	spaAuth := a.codeConfig(spa, "openid").AuthCodeURL("state-of-the-fault-test",
		oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("nonce", "nonce-of-the-fault-test"))
	page := func(b *browser) func(ctx context.Context) (answer, error) {
		return func(ctx context.Context) (answer, error) {
			p, err := b.fetch(ctx, spaAuth, nil)
			return p.answer, err
		}
	}
	tokenForm := func(c creds, form url.Values) func(ctx context.Context) (answer, error) {
		return func(ctx context.Context) (answer, error) { return a.post(ctx, "/oauth2/token", c, form) }
	}
	exchangeForm := url.Values{"grant_type": {"authorization_code"}, "code": {pending.code},
		"code_verifier": {pending.verifier}, "redirect_uri": {redirectURI}}
	refreshForm := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshed.RefreshToken}}

	return []faultRequest{
		{name: "client_credentials", do: tokenForm(svc, url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}),
			after: func(t *testing.T, ok bool, ans answer) {
				if ok {
					requireActive(t, a, ans.json()["access_token"].(string), true, "a token issued during the fault")
				}
			}},
		{name: "refresh", do: tokenForm(web, refreshForm),
			after: func(t *testing.T, ok bool, ans answer) {
				if !ok {
					// The failed refresh rotated nothing: the old refresh
					// token is still the grant's, and works.
					requireActive(t, a, refreshed.AccessToken, true, "the access token of a failed refresh")
					var err error
					ans, err = a.post(t.Context(), "/oauth2/token", web, refreshForm)
					require.NoError(t, err)
					require.Equal(t, http.StatusOK, ans.Status, "the old refresh token after the fault: %s", ans)
				}
				requireActive(t, a, ans.json()["access_token"].(string), true, "the refreshed access token")
				requireActive(t, a, refreshed.AccessToken, false, "the access token the refresh replaced")
				requireActive(t, a, refreshed.RefreshToken, false, "the refresh token spent")
			}},
		{name: "code exchange", do: tokenForm(web, exchangeForm),
			after: func(t *testing.T, ok bool, ans answer) {
				if !ok {
					// The failed exchange spent nothing: the code still works.
					var err error
					ans, err = a.post(t.Context(), "/oauth2/token", web, exchangeForm)
					require.NoError(t, err)
					require.Equal(t, http.StatusOK, ans.Status, "the code after the fault: %s", ans)
				}
				requireActive(t, a, ans.json()["access_token"].(string), true, "the access token of the code")
				requireActive(t, a, ans.json()["refresh_token"].(string), true, "the refresh token of the code")
			}},
		{name: "revoke access token", do: func(ctx context.Context) (answer, error) { return a.revoke(ctx, svc, toRevoke, "") },
			after: func(t *testing.T, ok bool, _ answer) {
				if !ok {
					requireActive(t, a, toRevoke, true, "a token whose revocation failed")
					requireRevoked(t, a, svc, toRevoke)
				}
				requireActive(t, a, toRevoke, false, "a revoked token")
			}},
		{name: "revoke refresh token", do: func(ctx context.Context) (answer, error) {
			return a.revoke(ctx, spa, publicGrant.RefreshToken, "refresh_token")
		}, after: func(t *testing.T, ok bool, _ answer) {
			if !ok {
				requireActive(t, a, publicGrant.RefreshToken, true, "a refresh token whose revocation failed")
				requireActive(t, a, publicGrant.AccessToken, true, "the access token of that grant")
				requireRevoked(t, a, spa, publicGrant.RefreshToken)
			}
			requireActive(t, a, publicGrant.RefreshToken, false, "a revoked refresh token")
			requireActive(t, a, publicGrant.AccessToken, false, "the access token of a revoked grant")
		}},
		{name: "authorization request, signed in", page: true, do: page(signedIn),
			after: func(t *testing.T, _ bool, _ answer) {
				_, err := signedIn.authorize(t.Context(), spa, "openid")
				require.NoError(t, err, "the same browser signs in after the fault")
			}},
		{name: "authorization request, new browser", page: true, do: page(a.newBrowser()),
			after: func(t *testing.T, _ bool, _ answer) {}},
	}, keep
}

func mustCC(t *testing.T, a *api) string {
	t.Helper()
	tok, err := a.clientCredentials("read").Token(a.oauthCtx(t.Context()))
	require.NoError(t, err)
	return tok.AccessToken
}

func mustCodeFlow(t *testing.T, b *browser, c creds) *oauth2.Token {
	t.Helper()
	g, err := b.authorize(t.Context(), c, "openid", "offline_access")
	require.NoError(t, err)
	tok, err := b.exchange(t.Context(), c, g)
	require.NoError(t, err)
	require.NotEmpty(t, tok.RefreshToken)
	return tok
}

func requireActive(t *testing.T, a *api, token string, want bool, what string) {
	t.Helper()
	active, ans, err := a.introspect(t.Context(), token)
	require.NoError(t, err, what)
	require.Equal(t, http.StatusOK, ans.Status, "%s: introspection answered %s", what, ans)
	require.Equal(t, want, active, "%s (%s): active", what, fp(token))
}

// requireRevoked revokes token as c; it must answer 200 and hold.
func requireRevoked(t *testing.T, a *api, c creds, token string) {
	t.Helper()
	ans, err := a.revoke(t.Context(), c, token, "")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, ans.Status, "revocation: %s", ans)
	requireActive(t, a, token, false, "right after its revocation")
}
