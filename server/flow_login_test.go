package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/users"
)

// TestLoginAndConsentForms covers the forms themselves: CSRF, wrong
// passwords and their rate limit, used challenges, the session cookie.
func TestLoginAndConsentForms(t *testing.T) {
	t.Parallel()

	// loginPage opens the login page of a new authorization request.
	loginPage := func(t *testing.T, b *browser) response {
		ts := b.ts
		t.Helper()
		loginURL := location(t, b.get(t, ts.authorizeURL("web-client", nil)))
		require.True(t, strings.HasPrefix(loginURL, "/login?challenge="), "%s", loginURL)
		page := b.get(t, loginURL)
		require.Equal(t, http.StatusOK, page.Status, "%s", page.Body)
		return page
	}
	// consentPage signs in and opens the consent page.
	consentPage := func(t *testing.T, b *browser) response {
		ts := b.ts
		t.Helper()
		next := flowSignIn(t, b, ts.authorizeURL("web-client", nil))
		require.True(t, strings.HasPrefix(next, "/consent?challenge="), "%s", next)
		page := b.get(t, next)
		require.Equal(t, http.StatusOK, page.Status, "%s", page.Body)
		return page
	}
	right := map[string]string{"username": "alice", "password": "alice-password"}
	refused := func(t *testing.T, r response) {
		t.Helper()
		flowRequirePage(t, r, http.StatusForbidden)
		require.Contains(t, string(r.Body), "did not come from this site")
		require.Empty(t, r.Header.Values("Set-Cookie"), "no session cookie on a refused form")
	}

	t.Run("login without CSRF token", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		b := ts.newBrowser(t)
		page := loginPage(t, b)
		refused(t, b.submit(t, page, map[string]string{"username": "alice", "password": "alice-password", "csrf_token": ""}))
		// The same form with its token still works: nothing was spent.
		flowCallback(t, flowConsent(t, b, location(t, b.submit(t, page, right)), map[string]string{"decision": "allow"}))
	})

	t.Run("login with a forged CSRF token", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		b := ts.newBrowser(t)
		page := loginPage(t, b)
		other := loginPage(t, ts.newBrowser(t)) // a token of another browser
		forged := forms(t, other)[0].Fields.Get("csrf_token")
		refused(t, b.submit(t, page, map[string]string{"username": "alice", "password": "alice-password", "csrf_token": forged}))
	})

	t.Run("login from a foreign Origin", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		b := ts.newBrowser(t)
		page := loginPage(t, b)
		refused(t, flowPost(t, b, page, right, "https://evil.example"))
		// Without any Origin (older browsers) the token alone decides.
		next := location(t, flowPost(t, b, page, right, ""))
		require.True(t, strings.HasPrefix(next, "/consent?challenge="), "signed in: %s", next)
	})

	t.Run("consent without CSRF token", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		b := ts.newBrowser(t)
		page := consentPage(t, b)
		refused(t, b.submit(t, page, map[string]string{"decision": "allow", "csrf_token": ""}))
		refused(t, flowPost(t, b, page, map[string]string{"decision": "allow"}, "https://evil.example"))
		// A deny is a form too.
		refused(t, b.submit(t, page, map[string]string{"decision": "deny", "csrf_token": ""}))
		flowCallback(t, b.submit(t, page, map[string]string{"decision": "allow"}))
	})

	t.Run("consent without a decision", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		b := ts.newBrowser(t)
		page := consentPage(t, b)
		flowRequirePage(t, b.submit(t, page, nil), http.StatusBadRequest)
		flowRequirePage(t, b.submit(t, page, map[string]string{"decision": "maybe"}), http.StatusBadRequest)
	})

	t.Run("challenge used after completion", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		b := ts.newBrowser(t)
		r := b.get(t, ts.authorizeURL("web-client", nil))
		loginURL := location(t, r)
		consentURL := location(t, b.submit(t, b.get(t, loginURL), right))
		flowCallback(t, flowConsent(t, b, consentURL, map[string]string{"decision": "allow"}))
		for _, used := range []string{loginURL, consentURL} {
			page := b.get(t, used)
			flowRequirePage(t, page, http.StatusBadRequest)
			require.Contains(t, string(page.Body), "was already completed")
			require.Empty(t, forms(t, page), "no form to fill in")
		}
		// Nor can a denied challenge be allowed afterwards.
		page := b.get(t, location(t, b.get(t, ts.authorizeURL("web-client", nil))))
		flowCallback(t, b.submit(t, page, map[string]string{"decision": "deny"}))
		flowRequirePage(t, b.submit(t, page, map[string]string{"decision": "allow"}), http.StatusBadRequest)
	})

	t.Run("no or unknown challenge", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		b := ts.newBrowser(t)
		for _, target := range []string{"/login", "/consent", "/login?challenge=", "/login?challenge=nope", "/consent?challenge=nope"} {
			page := b.get(t, target)
			flowRequirePage(t, page, http.StatusBadRequest)
			require.Empty(t, forms(t, page), "%s: no form to fill in", target)
		}
		require.Contains(t, string(b.get(t, "/login").Body), "no sign-in in progress")
		require.Contains(t, string(b.get(t, "/login?challenge=nope").Body), "was already completed")
	})

	t.Run("session cookie", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		b := ts.newBrowser(t)
		page := loginPage(t, b)
		csrfCookie := flowCookie(t, page, "latch_csrf")
		require.NotNil(t, csrfCookie, "the login page sets the CSRF cookie: %v", page.Header.Values("Set-Cookie"))
		r := b.submit(t, page, right)
		location(t, r)
		c := flowCookie(t, r, "latch_session")
		require.NotNil(t, c, "the login sets the session cookie: %v", r.Header.Values("Set-Cookie"))
		for _, c := range []*http.Cookie{c, csrfCookie} {
			require.True(t, c.HttpOnly, "%s: HttpOnly", c.Name)
			require.Equal(t, http.SameSiteLaxMode, c.SameSite, "%s: SameSite=Lax", c.Name)
			require.False(t, c.Secure, "%s: not Secure on a plain-http loopback issuer", c.Name)
			require.Equal(t, "/", c.Path, "%s", c.Name)
			require.NotContains(t, c.Value, "alice", "%s: the cookie does not carry the username", c.Name)
		}
		require.Contains(t, c.Raw, "HttpOnly")
		require.Contains(t, c.Raw, "SameSite=Lax")
		require.NotContains(t, c.Raw, "Secure")
	})
}

// TestWrongPassword: the same answer for a wrong password and an unknown
// user, and a rate limit per username that does not lock out others.
// Its own server: failures from 127.0.0.1 spend the per-address budget.
func TestWrongPassword(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	b := ts.newBrowser(t)
	loginURL := location(t, b.get(t, ts.authorizeURL("web-client", nil)))
	page := b.get(t, loginURL)

	wrong := b.submit(t, page, map[string]string{"username": "alice", "password": "not-her-password"})
	flowRequirePage(t, wrong, http.StatusUnauthorized)
	require.Empty(t, wrong.Header.Values("Set-Cookie"), "no session on a failure")
	fs := forms(t, wrong)
	require.Len(t, fs, 1, "the form again")
	require.Subset(t, fs[0].Inputs, []string{"username", "password", "challenge", "csrf_token"})
	require.Equal(t, "alice", fs[0].Fields.Get("username"), "the username is kept")
	require.Empty(t, fs[0].Fields.Get("password"), "the password is not sent back")
	msg := flowAlert(t, wrong)
	require.NotEmpty(t, msg, "an error message: %s", wrong.Body)

	unknown := b.submit(t, wrong, map[string]string{"username": "mallory", "password": "whatever-password"})
	flowRequirePage(t, unknown, http.StatusUnauthorized)
	require.Equal(t, msg, flowAlert(t, unknown), "the message does not tell whether the user exists")

	// alice has failed once; four more exhaust her budget of five.
	last := wrong
	for i := 0; i < 4; i++ {
		last = b.submit(t, last, map[string]string{"username": "alice", "password": "still-not-her-password"})
		flowRequirePage(t, last, http.StatusUnauthorized)
	}
	limited := b.submit(t, last, map[string]string{"username": "alice", "password": "alice-password"})
	flowRequirePage(t, limited, http.StatusTooManyRequests)
	require.Contains(t, flowAlert(t, limited), "Too many failed attempts")
	require.Empty(t, limited.Header.Values("Set-Cookie"), "no session while limited, even with the right password")
	require.Len(t, forms(t, limited), 1, "the form stays, to try again later")

	// An unknown username is limited the same way: the limit does not
	// tell who exists either.
	last = unknown
	for i := 0; i < 5; i++ {
		last = b.submit(t, last, map[string]string{"username": "trudy", "password": "whatever-password"})
		flowRequirePage(t, last, http.StatusUnauthorized)
	}
	last = b.submit(t, last, map[string]string{"username": "trudy", "password": "whatever-password"})
	flowRequirePage(t, last, http.StatusTooManyRequests)
	require.Equal(t, flowAlert(t, limited), flowAlert(t, last))

	// bob, from the same address, is not locked out by alice's failures.
	bob := ts.newBrowser(t)
	next := location(t, bob.signIn(t, ts.authorizeURL("web-client", nil), "bob", "bob-password"))
	require.True(t, strings.HasPrefix(next, "/consent?challenge="), "bob signs in: %s", next)
}

// flowCookie is the cookie name set by r, or nil.
func flowCookie(t *testing.T, r response, name string) *http.Cookie {
	t.Helper()
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// TestWrongPasswordPerAddress: failures from one address across many
// usernames exhaust that address's budget, whoever signs in next. The
// budget is lowered so the test needs a few attempts, not 20.
func TestWrongPasswordPerAddress(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(o *serverOptions) {
		// An hour's wait: nothing expires during the test, however slow
		// the machine.
		o.cfg.LoginRules = users.LoginRules{Addr: users.Rule{Free: 3, Base: time.Hour, Max: time.Hour, Forget: time.Hour}}
	})
	b := ts.newBrowser(t)
	page := b.get(t, location(t, b.get(t, ts.authorizeURL("web-client", nil))))
	for _, name := range []string{"carol", "dave", "erin"} {
		page = b.submit(t, page, map[string]string{"username": name, "password": "guessed-password"})
		flowRequirePage(t, page, http.StatusUnauthorized)
	}
	bob := ts.newBrowser(t)
	limited := bob.signIn(t, ts.authorizeURL("web-client", nil), "bob", "bob-password")
	flowRequirePage(t, limited, http.StatusTooManyRequests)
	require.Contains(t, flowAlert(t, limited), "Too many failed attempts")
	require.Nil(t, flowCookie(t, limited, "latch_session"))
}
