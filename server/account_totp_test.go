package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/storage"
)

// totpAt is the code of secret at now+offset.
func totpAt(t *testing.T, secret string, offset time.Duration) string {
	t.Helper()
	code, err := totp.GenerateCode(secret, time.Now().Add(offset))
	require.NoError(t, err)
	return code
}

// recoveryCodes are the recovery codes a page shows.
func recoveryCodes(t *testing.T, page response) []string {
	t.Helper()
	var codes []string
	for _, m := range recoveryCodeRE.FindAllStringSubmatch(string(page.Body), -1) {
		codes = append(codes, m[1])
	}
	require.Len(t, codes, 10, "ten recovery codes: %s", page.Body)
	return codes
}

// secondFactorAsked signs alice in with her password on a new browser and
// reports whether she is then asked for a second factor.
func secondFactorAsked(t *testing.T, ts *testServer) bool {
	t.Helper()
	b := ts.newBrowser(t)
	loc := location(t, passwordStep(t, b, ts.authorizeURL("web-client", nil)))
	return strings.HasPrefix(loc, "/login/mfa?")
}

// TestAccountTOTPEnrolRenewAndRemove: from the account page alice sets up
// an authenticator app (QR code drawn by the server, her password and the
// app's first code), gets new recovery codes with a current code (the old
// ones stop working), and turns the app off with her password; each step
// refuses a wrong password or a replayed code, and a post without the
// CSRF token. (Few failures: more than five for one user are throttled.)
func TestAccountTOTPEnrolRenewAndRemove(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	b := ts.newBrowser(t)
	require.Equal(t, http.StatusSeeOther, b.signInAccount(t, "alice", "alice-password").Status)
	page := b.accountPage(t)
	require.Contains(t, string(page.Body), `href="/account/totp"`, "a link to set one up")

	enrol := b.get(t, "/account/totp")
	require.Equal(t, http.StatusOK, enrol.Status)
	require.Contains(t, string(enrol.Body), `src="data:image/png;base64,`, "the QR code is an inline PNG")
	require.Contains(t, string(enrol.Body), `href="/account"`, "a way back")
	m := totpSecretRE.FindStringSubmatch(string(enrol.Body))
	require.NotNil(t, m, "the secret in text: %s", enrol.Body)
	secret := m[1]
	fs := forms(t, enrol)
	require.Len(t, fs, 1)
	require.Equal(t, "/account/totp", fs[0].Action)
	require.Subset(t, fs[0].Inputs, []string{"csrf_token", "current_password", "code", "enrolment"})

	r := b.submit(t, enrol, map[string]string{"current_password": "not-alices", "code": totpAt(t, secret, 0)})
	require.Equal(t, http.StatusUnauthorized, r.Status, "a session alone does not add a factor")
	require.Contains(t, flowAlert(t, r), "The current password is wrong.")
	require.Equal(t, secret, totpSecretRE.FindStringSubmatch(string(r.Body))[1], "the same seed again: the app has it")
	require.False(t, secondFactorAsked(t, ts), "nothing is on yet")
	r = b.submit(t, r, map[string]string{"current_password": "alice-password", "code": totpAt(t, secret, 0)})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	first := recoveryCodes(t, r)
	require.Contains(t, string(r.Body), `href="/account?done=totp-added"`)
	require.True(t, secondFactorAsked(t, ts), "signing in asks for a code now")
	require.Equal(t, http.StatusSeeOther, b.get(t, "/account/totp").Status, "no second enrolment while one is on")

	page = b.accountPage(t)
	require.Contains(t, string(page.Body), "10 unused recovery codes")
	edit := func(set map[string]string) response {
		return b.accountPost(t, b.accountPage(t), "/account/totp/edit", nil, set)
	}
	stored, err := ts.Store.GetTOTP(t.Context(), "alice")
	require.NoError(t, err)
	used, err := totp.GenerateCode(secret, time.Unix(stored.LastStep*30, 0))
	require.NoError(t, err)
	r = edit(map[string]string{"action": "codes", "current_code": used})
	require.Equal(t, http.StatusUnauthorized, r.Status, "the enrolment's code again is a replay")
	next := totpAt(t, secret, 30*time.Second)
	r = edit(map[string]string{"action": "codes", "current_code": next})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	renewed := recoveryCodes(t, r)
	require.NotContains(t, renewed, first[0])
	require.Contains(t, string(r.Body), `href="/account?done=codes"`)
	// The old codes are void, the new ones work, at the second-factor step.
	other := ts.newBrowser(t)
	mfa := mfaPage(t, other, passwordStep(t, other, ts.authorizeURL("web-client", nil)))
	require.Equal(t, http.StatusUnauthorized, other.submit(t, mfa, map[string]string{"code": first[1]}).Status, "an old recovery code")
	ok := other.submit(t, mfa, map[string]string{"code": renewed[1]})
	require.True(t, strings.HasPrefix(location(t, ok), "/consent?"), "a new recovery code signs in")

	r = edit(map[string]string{"action": "remove", "current_password": "not-alices"})
	require.Equal(t, http.StatusUnauthorized, r.Status)
	require.True(t, secondFactorAsked(t, ts), "still on")
	stale := b.accountPage(t)
	r = edit(map[string]string{"action": "remove", "current_password": "alice-password"})
	require.Equal(t, "/account?done=totp-removed", location(t, r))
	_, err = ts.Store.GetTOTP(t.Context(), "alice")
	require.ErrorIs(t, err, storage.ErrNotFound)
	n, err := ts.Store.UnusedRecoveryCodes(t.Context(), "alice")
	require.NoError(t, err)
	require.Zero(t, n, "the recovery codes went with it")
	require.False(t, secondFactorAsked(t, ts), "the password alone again")
	require.Contains(t, string(b.get(t, "/account?done=totp-removed").Body), "Authenticator app turned off")
	r = b.accountPost(t, stale, "/account/totp/edit", nil, map[string]string{"action": "remove", "current_password": "alice-password"})
	require.Equal(t, http.StatusBadRequest, r.Status, "nothing left to turn off (a page opened before)")

	for _, action := range []string{"/account/totp", "/account/totp/edit"} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.URL+action,
			strings.NewReader("action=remove&current_password=alice-password&code=123456"))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", ts.URL)
		require.Equal(t, http.StatusForbidden, b.do(t, req).Status, "%s without a CSRF token", action)
	}
}

// TestAccountTOTPNeedsASession: the enrolment and its changes are for a
// signed-in person only; without a session they go back to the sign-in.
func TestAccountTOTPNeedsASession(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	b := ts.newBrowser(t)
	r := b.get(t, "/account/totp")
	require.Equal(t, "/account", location(t, r))
	page := b.get(t, "/account")
	// The sign-in form's CSRF token lets a post through gorilla/csrf, and
	// the handler still finds no session.
	token := forms(t, page)[0].Fields.Get("csrf_token")
	for _, action := range []string{"/account/totp", "/account/totp/edit"} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.URL+action,
			strings.NewReader("action=remove&current_password=alice-password&csrf_token="+url.QueryEscape(token)))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", ts.URL)
		require.Equal(t, "/account", location(t, b.do(t, req)), action)
	}
}
