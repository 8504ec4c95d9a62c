package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/stretchr/testify/require"
)

// TestPromptAndMaxAge covers OIDC Core §3.1.2.1's prompt and max_age.
// Each subtest has its own server: remembered consent is per user and
// client, and would leak from one subtest into another.
func TestPromptAndMaxAge(t *testing.T) {
	t.Parallel()

	t.Run("prompt=none without a session", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		q := flowCallback(t, ts.newBrowser(t).get(t, ts.authorizeURL("web-client", map[string]string{"prompt": "none"})))
		require.Equal(t, "login_required", q.Get("error"))
		require.Equal(t, "state-1234567890", q.Get("state"))
		require.Empty(t, q.Get("code"))
	})

	t.Run("prompt=none with a session but no consent", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		b := ts.newBrowser(t)
		b.authorize(t, ts.authorizeURL("web-client", nil)) // consent given, not remembered
		q := flowCallback(t, b.get(t, ts.authorizeURL("web-client", map[string]string{"prompt": "none", "state": "second-state"})))
		require.Equal(t, "consent_required", q.Get("error"))
		require.Equal(t, "second-state", q.Get("state"))
		require.Empty(t, q.Get("code"))
	})

	t.Run("prompt=none after remembered consent", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		b := ts.newBrowser(t)
		next := flowSignIn(t, b, ts.authorizeURL("web-client", nil))
		flowCallback(t, flowConsent(t, b, next, map[string]string{"decision": "allow", "remember": "true"}))
		q := flowCallback(t, b.get(t, ts.authorizeURL("web-client", map[string]string{"prompt": "none", "state": "silent-state"})))
		require.Empty(t, q.Get("error"), "%v", q)
		require.NotEmpty(t, q.Get("code"), "a code without any page")
		require.Equal(t, "silent-state", q.Get("state"))
		r := flowExchange(t, ts, "web-client", q.Get("code"), "")
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	})

	t.Run("prompt=none for a skip_consent client", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		b := ts.newBrowser(t)
		b.authorize(t, ts.authorizeURL("skip-client", nil))
		q := flowCallback(t, b.get(t, ts.authorizeURL("skip-client", map[string]string{"prompt": "none"})))
		require.NotEmpty(t, q.Get("code"), "%v", q)
	})

	t.Run("prompt=login with a session", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		b := ts.newBrowser(t)
		first := b.authorize(t, ts.authorizeURL("skip-client", nil))
		require.NotEmpty(t, first.Query().Get("code"))
		r := b.get(t, ts.authorizeURL("skip-client", map[string]string{"prompt": "login"}))
		loginURL := location(t, r)
		require.True(t, strings.HasPrefix(loginURL, "/login?challenge="), "signed in, yet the login page again: %s", loginURL)
		page := b.get(t, loginURL)
		require.Equal(t, http.StatusOK, page.Status)
		require.Contains(t, forms(t, page)[0].Inputs, "password")
		q := flowCallback(t, b.submit(t, page, map[string]string{"username": "alice", "password": "alice-password"}))
		require.Empty(t, q.Get("error"), "a new sign-in satisfies prompt=login: %v", q)
		require.NotEmpty(t, q.Get("code"))
	})

	t.Run("prompt=login cannot be skipped by going to the consent page", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		b := ts.newBrowser(t)
		b.authorize(t, ts.authorizeURL("web-client", nil))
		loginURL := location(t, b.get(t, ts.authorizeURL("web-client", map[string]string{"prompt": "login"})))
		require.True(t, strings.HasPrefix(loginURL, "/login?challenge="), "%s", loginURL)
		// The old session, straight to the consent page of the same request.
		r := b.get(t, "/consent?"+strings.TrimPrefix(loginURL, "/login?"))
		if r.Status == http.StatusOK {
			r = b.submit(t, r, map[string]string{"decision": "allow"})
		}
		if r.Status == http.StatusFound || r.Status == http.StatusSeeOther {
			if loc := location(t, r); strings.HasPrefix(loc, callback) {
				q := flowCallback(t, r)
				require.Empty(t, q.Get("code"), "no code without the new sign-in prompt=login asked for")
				require.Equal(t, "login_required", q.Get("error"))
				return
			}
			require.True(t, strings.HasPrefix(location(t, r), "/login?"), "%s", location(t, r))
			return
		}
		require.GreaterOrEqual(t, r.Status, 400, "%s", r.Body)
	})

	t.Run("max_age=0 is prompt=login", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		b := ts.newBrowser(t)
		b.authorize(t, ts.authorizeURL("skip-client", nil))
		loginURL := location(t, b.get(t, ts.authorizeURL("skip-client", map[string]string{"max_age": "0"})))
		require.True(t, strings.HasPrefix(loginURL, "/login?challenge="), "OIDC Core §3.1.2.1: %s", loginURL)
		q := flowCallback(t, b.submit(t, b.get(t, loginURL), map[string]string{"username": "alice", "password": "alice-password"}))
		require.NotEmpty(t, q.Get("code"), "%v", q)
	})

	t.Run("prompt=consent with remembered consent", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		b := ts.newBrowser(t)
		next := flowSignIn(t, b, ts.authorizeURL("web-client", nil))
		flowCallback(t, flowConsent(t, b, next, map[string]string{"decision": "allow", "remember": "true"}))
		// Remembered: no page.
		flowCallback(t, b.get(t, ts.authorizeURL("web-client", nil)))
		next = location(t, b.get(t, ts.authorizeURL("web-client", map[string]string{"prompt": "consent"})))
		q := flowCallback(t, flowConsent(t, b, next, map[string]string{"decision": "allow"}))
		require.NotEmpty(t, q.Get("code"))
	})

	t.Run("max_age exceeded", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		b := ts.newBrowser(t)
		verifier, challenge := pkcePair("max-age-verifier-01234567890123456789012345")
		b.authorize(t, ts.authorizeURL("skip-client", nil))
		// Within max_age: no page.
		q := flowCallback(t, b.get(t, ts.authorizeURL("skip-client", map[string]string{"max_age": "3600"})))
		require.NotEmpty(t, q.Get("code"))

		time.Sleep(1100 * time.Millisecond)
		before := time.Now().Truncate(time.Second)
		q = flowCallback(t, b.get(t, ts.authorizeURL("skip-client", map[string]string{"max_age": "1", "prompt": "none"})))
		require.Equal(t, "login_required", q.Get("error"), "prompt=none cannot sign in again: %v", q)
		require.Equal(t, "state-1234567890", q.Get("state"))
		r := b.get(t, ts.authorizeURL("skip-client", map[string]string{"max_age": "1",
			"code_challenge": challenge, "code_challenge_method": "S256"}))
		loginURL := location(t, r)
		require.True(t, strings.HasPrefix(loginURL, "/login?challenge="), "the session is older than max_age: %s", loginURL)
		page := b.get(t, loginURL)
		q = flowCallback(t, b.submit(t, page, map[string]string{"username": "alice", "password": "alice-password"}))
		require.NotEmpty(t, q.Get("code"), "%v", q)

		tok := flowExchange(t, ts, "skip-client", q.Get("code"), verifier)
		require.Equal(t, http.StatusOK, tok.Status, "%s", tok.Body)
		rawID, _ := tok.json(t)["id_token"].(string)
		ctx := oidc.ClientContext(t.Context(), ts.http)
		provider, err := oidc.NewProvider(ctx, ts.URL)
		require.NoError(t, err)
		idt, err := provider.Verifier(&oidc.Config{ClientID: "skip-client"}).Verify(ctx, rawID)
		require.NoError(t, err)
		var claims struct {
			AuthTime int64 `json:"auth_time"`
		}
		require.NoError(t, idt.Claims(&claims))
		require.GreaterOrEqual(t, claims.AuthTime, before.Unix(), "auth_time is the new sign-in (OIDC Core §3.1.2.1: required with max_age)")
	})
}

// TestConsentMemory: a remembered decision skips the consent page for the
// scopes it covered, and only for them; skip_consent clients never see it.
func TestConsentMemory(t *testing.T) {
	t.Parallel()

	t.Run("remembered", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		b := ts.newBrowser(t)
		next := flowSignIn(t, b, ts.authorizeURL("web-client", nil))
		flowCallback(t, flowConsent(t, b, next, map[string]string{"decision": "allow", "remember": "true"}))

		q := flowCallback(t, b.get(t, ts.authorizeURL("web-client", nil)))
		require.NotEmpty(t, q.Get("code"), "the same scopes: no consent page")
		q = flowCallback(t, b.get(t, ts.authorizeURL("web-client", map[string]string{"scope": "openid email"})))
		require.NotEmpty(t, q.Get("code"), "fewer scopes: no consent page")

		// Another browser of the same person: login, no consent.
		other := ts.newBrowser(t)
		q = flowCallback(t, other.signIn(t, ts.authorizeURL("web-client", nil), "alice", "alice-password"))
		require.NotEmpty(t, q.Get("code"))

		// A new scope asks again.
		next = location(t, b.get(t, ts.authorizeURL("web-client", map[string]string{"scope": "openid profile email offline_access groups"})))
		require.True(t, strings.HasPrefix(next, "/consent?challenge="), "a new scope needs consent: %s", next)
		page := b.get(t, next)
		require.Contains(t, string(page.Body), "groups")

		// Another person has not consented.
		bob := ts.newBrowser(t)
		next = location(t, bob.signIn(t, ts.authorizeURL("web-client", nil), "bob", "bob-password"))
		require.True(t, strings.HasPrefix(next, "/consent?challenge="), "bob's own consent: %s", next)
	})

	t.Run("not remembered", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		b := ts.newBrowser(t)
		next := flowSignIn(t, b, ts.authorizeURL("web-client", nil))
		flowCallback(t, flowConsent(t, b, next, map[string]string{"decision": "allow"}))
		next = location(t, b.get(t, ts.authorizeURL("web-client", nil)))
		require.True(t, strings.HasPrefix(next, "/consent?challenge="), "asked again: %s", next)
	})

	t.Run("remembered for one client only", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		b := ts.newBrowser(t)
		next := flowSignIn(t, b, ts.authorizeURL("web-client", nil))
		flowCallback(t, flowConsent(t, b, next, map[string]string{"decision": "allow", "remember": "true"}))
		_, challenge := pkcePair("one-client-verifier-012345678901234567890123")
		next = location(t, b.get(t, ts.authorizeURL("public-client", map[string]string{"code_challenge": challenge, "code_challenge_method": "S256"})))
		require.True(t, strings.HasPrefix(next, "/consent?challenge="), "another client asks: %s", next)
	})

	t.Run("skip_consent client", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		b := ts.newBrowser(t)
		q := flowCallback(t, b.signIn(t, ts.authorizeURL("skip-client", nil), "alice", "alice-password"))
		require.NotEmpty(t, q.Get("code"), "straight from login to the callback")
		require.Equal(t, "state-1234567890", q.Get("state"))
		q = flowCallback(t, b.get(t, ts.authorizeURL("skip-client", map[string]string{"scope": "openid"})))
		require.NotEmpty(t, q.Get("code"))
	})
}
