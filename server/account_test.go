package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// signInAccount signs b in on the account page's own form as username.
func (b *browser) signInAccount(t *testing.T, username, password string) response {
	t.Helper()
	page := b.get(t, "/account")
	require.Equal(t, http.StatusOK, page.Status, "account sign-in page: %s", page.Body)
	return b.submit(t, page, map[string]string{"username": username, "password": password})
}

// accountPage is b's account page, which must be the signed-in one.
func (b *browser) accountPage(t *testing.T) response {
	t.Helper()
	page := b.get(t, "/account")
	require.Equal(t, http.StatusOK, page.Status, "account page: %s", page.Body)
	require.Contains(t, string(page.Body), "Your account", "signed in")
	return page
}

// accountPost posts the form of page whose action is action and whose
// fields include every pair of pick (a form among several alike), with
// its fields changed by set.
func (b *browser) accountPost(t *testing.T, page response, action string, pick, set map[string]string) response {
	t.Helper()
	for _, f := range forms(t, page) {
		if f.Action != action || !fieldsInclude(f.Fields, pick) {
			continue
		}
		values := url.Values{}
		for k, v := range f.Fields {
			values[k] = v
		}
		for k, v := range set {
			values.Set(k, v)
		}
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, b.ts.URL+action, strings.NewReader(values.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", b.ts.URL)
		return b.do(t, req)
	}
	t.Fatalf("no form posting to %s with %v on the page: %s", action, pick, page.Body)
	return response{}
}

func fieldsInclude(fields url.Values, pick map[string]string) bool {
	for k, v := range pick {
		if fields.Get(k) != v {
			return false
		}
	}
	return true
}

// twoAlicesAndBob starts a server and signs alice in on two browsers and
// bob on a third, on the account page.
func twoAlicesAndBob(t *testing.T) (ts *testServer, a, other, bob *browser) {
	t.Helper()
	ts = newTestServer(t)
	a, other, bob = ts.newBrowser(t), ts.newBrowser(t), ts.newBrowser(t)
	require.Equal(t, http.StatusSeeOther, a.signInAccount(t, "alice", "alice-password").Status)
	require.Equal(t, http.StatusSeeOther, other.signInAccount(t, "alice", "alice-password").Status)
	require.Equal(t, http.StatusSeeOther, bob.signInAccount(t, "bob", "bob-password").Status)
	return ts, a, other, bob
}

// sessionHandles are the session handles the account page lists: this
// browser's (marked on the page) and the others.
func sessionHandles(t *testing.T, page response) (mine string, others []string) {
	t.Helper()
	for _, item := range strings.Split(string(page.Body), "<li>")[1:] {
		_, rest, ok := strings.Cut(item, `name="session" value="`)
		if !ok {
			continue
		}
		handle, _, _ := strings.Cut(rest, `"`)
		if strings.Contains(item, "this browser") {
			require.Empty(t, mine, "one session is this browser's")
			mine = handle
		} else {
			others = append(others, handle)
		}
	}
	return mine, others
}

func TestAccountPageSignsInWithoutAnAuthorizationRequest(t *testing.T) {
	ts := newTestServer(t)
	b := ts.newBrowser(t)

	page := b.get(t, "/account")
	require.Equal(t, http.StatusOK, page.Status)
	require.Contains(t, page.Header.Get("Content-Security-Policy"), "default-src 'none'")
	fs := forms(t, page)
	require.Len(t, fs, 1)
	require.Equal(t, "/account/login", fs[0].Action)
	require.NotEmpty(t, fs[0].Fields.Get("csrf_token"), "the form carries a CSRF token")

	r := b.signInAccount(t, "alice", "wrong-password")
	require.Equal(t, http.StatusUnauthorized, r.Status)
	require.Contains(t, string(r.Body), "Wrong username or password.")

	r = b.signInAccount(t, "alice", "alice-password")
	require.Equal(t, "/account", location(t, r))
	page = b.accountPage(t)
	require.Contains(t, string(page.Body), "Alice Example")
}

func TestAccountFormsRefuseAPostWithoutCSRFToken(t *testing.T) {
	ts := newTestServer(t)
	b := ts.newBrowser(t)
	require.Equal(t, http.StatusSeeOther, b.signInAccount(t, "alice", "alice-password").Status)
	page := b.accountPage(t)
	for _, action := range []string{"/account/password", "/account/sessions/end"} {
		r := b.accountPost(t, page, action, nil, map[string]string{"csrf_token": "forged"})
		require.Equal(t, http.StatusForbidden, r.Status, "%s without a valid CSRF token", action)
	}
}

func TestAccountPasswordChangeNeedsCurrentPasswordAndEndsOtherSessions(t *testing.T) {
	ts, a, other, bob := twoAlicesAndBob(t)

	change := func(current, next, confirm string) response {
		return a.accountPost(t, a.accountPage(t), "/account/password", nil, map[string]string{
			"current_password": current, "new_password": next, "confirm_password": confirm})
	}
	r := change("not-alices-password", "a-new-password", "a-new-password")
	require.Equal(t, http.StatusUnauthorized, r.Status)
	require.Contains(t, string(r.Body), "The current password is wrong.")
	r = change("alice-password", "short", "short")
	require.Equal(t, http.StatusBadRequest, r.Status)
	require.Contains(t, string(r.Body), "at least 8 characters")
	r = change("alice-password", "a-new-password", "another-password")
	require.Equal(t, http.StatusBadRequest, r.Status)
	require.Contains(t, string(r.Body), "do not match")
	r = change("alice-password", strings.Repeat("x", 257), strings.Repeat("x", 257))
	require.Equal(t, http.StatusBadRequest, r.Status, "an overlong password is refused before it is hashed")
	other.accountPage(t) // nothing changed yet: the other session lives

	r = change("alice-password", "a-new-password", "a-new-password")
	require.Equal(t, "/account?done=password", location(t, r))
	require.Contains(t, string(a.get(t, "/account?done=password").Body), "Password changed.", "this browser stays signed in")
	require.Contains(t, string(other.get(t, "/account").Body), `action="/account/login"`, "the other session ended")
	bob.accountPage(t) // another person's session is untouched

	fresh := ts.newBrowser(t)
	require.Equal(t, http.StatusUnauthorized, fresh.signInAccount(t, "alice", "alice-password").Status, "the old password no longer works")
	require.Equal(t, http.StatusSeeOther, fresh.signInAccount(t, "alice", "a-new-password").Status, "the new one does")
}

func TestAccountSessionsListedAndEachSignedOut(t *testing.T) {
	_, a, other, bob := twoAlicesAndBob(t)

	page := a.accountPage(t)
	require.Contains(t, string(page.Body), "127.0.0.1", "the address of each session is shown")
	require.Contains(t, string(page.Body), "Unknown browser", "Go's client names no browser")
	mine, others := sessionHandles(t, page)
	require.NotEmpty(t, mine)
	require.Len(t, others, 1, "alice's other session, and not bob's")
	_, bobs := sessionHandles(t, bob.accountPage(t))
	require.Empty(t, bobs)
	bobMine, _ := sessionHandles(t, bob.accountPage(t))

	// Alice cannot end Bob's session by posting its handle.
	r := a.accountPost(t, page, "/account/sessions/end", map[string]string{"session": others[0]}, map[string]string{"session": bobMine})
	require.Equal(t, http.StatusBadRequest, r.Status)
	bob.accountPage(t)

	r = a.accountPost(t, page, "/account/sessions/end", map[string]string{"session": others[0]}, nil)
	require.Equal(t, "/account?done=session", location(t, r))
	require.Contains(t, string(other.get(t, "/account").Body), `action="/account/login"`, "the other browser is signed out")
	page = a.accountPage(t)
	_, others = sessionHandles(t, page)
	require.Empty(t, others)

	// Signing out this browser from the list clears its cookie too.
	r = a.accountPost(t, page, "/account/sessions/end", map[string]string{"session": mine}, nil)
	require.Equal(t, "/account", location(t, r))
	require.Contains(t, string(a.get(t, "/account").Body), `action="/account/login"`)
}

func TestAccountRevokeApplicationEndsItsTokensAndConsent(t *testing.T) {
	ts := newTestServer(t)
	b := ts.newBrowser(t)
	// Alice allows two applications, remembering the first.
	web := codeFlow(t, b, "web-client", nil)
	r := b.get(t, ts.authorizeURL("web-client", nil))
	consent := b.get(t, location(t, r))
	r = b.submit(t, consent, map[string]string{"decision": "allow", "remember": "true"})
	require.Contains(t, location(t, r), callback, "remembered consent")
	other := codeFlow(t, b, "public-client", nil)
	require.True(t, ts.active(t, web.Access))
	require.True(t, ts.active(t, web.Refresh))

	page := b.accountPage(t)
	require.Contains(t, string(page.Body), "Web App")
	require.Contains(t, string(page.Body), "Public App")
	require.Contains(t, string(page.Body), "decision remembered")

	r = b.accountPost(t, page, "/account/applications/revoke", map[string]string{"client_id": "web-client"}, nil)
	require.Equal(t, "/account?done=revoked", location(t, r))
	require.False(t, ts.active(t, web.Access), "the access token is inactive at introspection")
	require.False(t, ts.active(t, web.Refresh), "so is the refresh token")
	require.True(t, ts.active(t, other.Access), "another application keeps its tokens")
	page = b.accountPage(t)
	require.NotContains(t, string(page.Body), "Web App")

	// The remembered consent is gone: the application asks again.
	r = b.get(t, ts.authorizeURL("web-client", nil))
	require.True(t, strings.HasPrefix(location(t, r), "/consent?"), "asked for consent again")

	// Revoking again, or an application never allowed, says so.
	r = b.accountPost(t, page, "/account/applications/revoke", map[string]string{"client_id": "public-client"}, map[string]string{"client_id": "web-client"})
	require.Equal(t, http.StatusBadRequest, r.Status)
}
