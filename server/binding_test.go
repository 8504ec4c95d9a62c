package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// requireChallengeGone checks r is the error page of a challenge this
// browser may not use: no redirect, nothing issued.
func requireChallengeGone(t *testing.T, r response) {
	t.Helper()
	flowRequirePage(t, r, http.StatusBadRequest)
	require.Contains(t, string(r.Body), "started in another browser")
}

// pageOf is the login or consent page of the authorization request authURL
// in b: its URL and the page.
func pageOf(t *testing.T, b *browser, authURL, want string) (string, response) {
	t.Helper()
	loc := location(t, b.get(t, authURL))
	require.True(t, strings.HasPrefix(loc, want+"?challenge="), "sent to %s, not %s", want, loc)
	page := b.get(t, loc)
	require.Equal(t, http.StatusOK, page.Status, "%s", page.Body)
	return loc, page
}

func challengeOf(t *testing.T, pageURL string) string {
	t.Helper()
	u, err := url.Parse(pageURL)
	require.NoError(t, err)
	return u.Query().Get("challenge")
}

// TestLeakedConsentChallengeCannotBeCompletedInAnotherBrowser is the
// session swap: alice's challenge, leaked, is finished by bob's browser,
// which would send alice's application a code for bob.
func TestLeakedConsentChallengeCannotBeCompletedInAnotherBrowser(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	victim := ts.newBrowser(t)
	loginURL, page := pageOf(t, victim, ts.authorizeURL("web-client", nil), "/login")
	consentURL := location(t, victim.submit(t, page, map[string]string{"username": "alice", "password": "alice-password"}))
	require.Equal(t, challengeOf(t, loginURL), challengeOf(t, consentURL))

	attacker := signedInAs(t, ts, "bob", "bob-password")
	requireChallengeGone(t, attacker.get(t, consentURL))
	// A form of the attacker's own (a valid CSRF token) with the leaked
	// challenge in it.
	_, own := pageOf(t, attacker, ts.authorizeURL("web-client", map[string]string{"state": "attacker-state-123"}), "/consent")
	requireChallengeGone(t, attacker.submit(t, own, map[string]string{"challenge": challengeOf(t, consentURL), "decision": "allow"}))

	// alice's browser still finishes its own request, as alice.
	consent := victim.get(t, consentURL)
	require.Equal(t, http.StatusOK, consent.Status, "%s", consent.Body)
	q := flowCallback(t, victim.submit(t, consent, map[string]string{"decision": "allow"}))
	require.NotEmpty(t, q.Get("code"))
	require.Equal(t, "state-1234567890", q.Get("state"))
}

// TestLeakedLoginChallengeCannotBeUsedInAnotherBrowser: a login page URL
// sent to someone else (login CSRF) shows them the error page, and their
// sign-in on it does not go through.
func TestLeakedLoginChallengeCannotBeUsedInAnotherBrowser(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	loginURL, _ := pageOf(t, ts.newBrowser(t), ts.authorizeURL("web-client", nil), "/login")

	other := ts.newBrowser(t)
	requireChallengeGone(t, other.get(t, loginURL))
	_, own := pageOf(t, other, ts.authorizeURL("web-client", nil), "/login")
	r := other.submit(t, own, map[string]string{"challenge": challengeOf(t, loginURL), "username": "bob", "password": "bob-password"})
	requireChallengeGone(t, r)
	require.Nil(t, flowCookie(t, r, "latch_session"), "no session from a challenge of another browser")
}

// TestChallengeNeedsTheBrowserCookie: the same browser without its
// binding cookie (cleared, or blocked) cannot use its challenge.
func TestChallengeNeedsTheBrowserCookie(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	b := ts.newBrowser(t)
	loginURL, _ := pageOf(t, b, ts.authorizeURL("web-client", nil), "/login")
	u, err := url.Parse(ts.URL)
	require.NoError(t, err)
	var binding *http.Cookie
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == "latch_browser" {
			binding = c
		}
	}
	require.NotNil(t, binding, "the authorization request set the binding cookie")
	b.client.Jar.SetCookies(u, []*http.Cookie{{Name: "latch_browser", Value: strings.Repeat("A", 43), Path: "/"}})
	requireChallengeGone(t, b.get(t, loginURL))
	b.client.Jar.SetCookies(u, []*http.Cookie{binding})
	require.Equal(t, http.StatusOK, b.get(t, loginURL).Status, "with its cookie back the browser goes on")
}

// TestOneBrowserSignsInToTwoRequestsAtOnce: the binding is per browser, so
// two tabs' requests both finish.
func TestOneBrowserSignsInToTwoRequestsAtOnce(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	b := ts.newBrowser(t)
	_, first := pageOf(t, b, ts.authorizeURL("skip-client", map[string]string{"state": "first-state-123"}), "/login")
	_, second := pageOf(t, b, ts.authorizeURL("skip-client", map[string]string{"state": "second-state-12"}), "/login")
	q := flowCallback(t, b.submit(t, second, map[string]string{"username": "alice", "password": "alice-password"}))
	require.Equal(t, "second-state-12", q.Get("state"))
	require.NotEmpty(t, q.Get("code"))
	q = flowCallback(t, b.submit(t, first, map[string]string{"username": "alice", "password": "alice-password"}))
	require.Equal(t, "first-state-123", q.Get("state"))
	require.NotEmpty(t, q.Get("code"))
}
