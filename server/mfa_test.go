package server_test

import (
	"html"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/latchauth/latch/storage"
)

var (
	totpSecretRE   = regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`)
	recoveryCodeRE = regexp.MustCompile(`<li><code>([a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4})</code></li>`)
	continueRE     = regexp.MustCompile(`href="(/login/mfa\?[^"]*)"`)
)

// giveTOTP gives username a confirmed TOTP with secret, straight in st.
func giveTOTP(t *testing.T, st storage.MFAStore, username, secret string) {
	t.Helper()
	require.NoError(t, st.SaveTOTPEnrolment(t.Context(), username, secret))
	pending, err := st.GetTOTP(t.Context(), username)
	require.NoError(t, err)
	require.NoError(t, st.UseTOTPStep(t.Context(), pending, 1, true))
}

// mfaRequired sets mfa.required.
func mfaRequired(o *serverOptions) { o.cfg.MFARequired = true }

// passwordStep opens authURL in b and signs in as alice with her password;
// it returns the answer to the login form.
func passwordStep(t *testing.T, b *browser, authURL string) response {
	t.Helper()
	return b.signIn(t, authURL, "alice", "alice-password")
}

// mfaPage follows r, the answer to the login form, to the second-factor
// page and returns it.
func mfaPage(t *testing.T, b *browser, r response) response {
	t.Helper()
	loc := location(t, r)
	require.True(t, strings.HasPrefix(loc, "/login/mfa?challenge="), "sent to the second-factor step, not %s", loc)
	page := b.get(t, loc)
	require.Equal(t, http.StatusOK, page.Status, "%s", page.Body)
	return page
}

// enrolAlice runs a sign-in that asks alice for a second factor she does
// not have yet: it enrols a TOTP through the page and returns its secret,
// the recovery codes shown, and the ID token of the flow.
func enrolAlice(t *testing.T, b *browser, extra map[string]string) (secret string, codes []string, idToken string) {
	t.Helper()
	verifier, challenge := pkcePair(oauth2.GenerateVerifier())
	params := map[string]string{"code_challenge": challenge, "code_challenge_method": "S256"}
	for k, v := range extra {
		params[k] = v
	}
	page := mfaPage(t, b, passwordStep(t, b, b.ts.authorizeURL("web-client", params)))
	body := string(page.Body)
	require.Contains(t, body, `src="data:image/png;base64,`, "the QR code is an inline PNG")
	m := totpSecretRE.FindStringSubmatch(body)
	require.NotNil(t, m, "the secret in text: %s", body)
	secret = m[1]

	wrong := b.submit(t, page, map[string]string{"code": "000000"})
	require.Equal(t, http.StatusUnauthorized, wrong.Status, "a wrong code does not enrol")
	code, err := totp.GenerateCode(secret, time.Now())
	require.NoError(t, err)
	done := b.submit(t, page, map[string]string{"code": code})
	require.Equal(t, http.StatusOK, done.Status, "%s", done.Body)
	for _, c := range recoveryCodeRE.FindAllStringSubmatch(string(done.Body), -1) {
		codes = append(codes, c[1])
	}
	require.Len(t, codes, 10, "ten recovery codes: %s", done.Body)
	next := continueRE.FindStringSubmatch(string(done.Body))
	require.NotNil(t, next, "a Continue link: %s", done.Body)
	r := b.get(t, html.UnescapeString(next[1]))
	cb := flowCallback(t, flowConsent(t, b, location(t, r), map[string]string{"decision": "allow"}))
	tk := b.ts.exchange(t, "web-client", cb.Get("code"), verifier)
	return secret, codes, tk.ID
}

// TestTOTPEnrolmentAndSecondFactor: acr_values asks for a second factor,
// alice enrols a TOTP on the way, and from then on every sign-in asks for
// a code; each code and each recovery code works once, also when two
// browsers send the same code at once.
func TestTOTPEnrolmentAndSecondFactor(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	secret, codes, raw := enrolAlice(t, ts.newBrowser(t), map[string]string{"acr_values": "urn:latch:acr:mfa"})
	_, claims := ts.verifyIDToken(t, raw, "web-client")
	require.ElementsMatch(t, []any{"pwd", "otp", "mfa"}, claims["amr"], "RFC 8176 amr")
	require.Equal(t, "urn:latch:acr:mfa", claims["acr"])

	stored, err := ts.Store.GetTOTP(t.Context(), "alice")
	require.NoError(t, err)
	require.True(t, stored.Confirmed)

	// A person with a second factor is always asked, acr_values or not.
	b := ts.newBrowser(t)
	page := mfaPage(t, b, passwordStep(t, b, ts.authorizeURL("web-client", nil)))
	require.NotContains(t, string(page.Body), "totp-secret", "no enrolment once enrolled")
	// The code of the step the enrolment used, whichever step now is.
	used, err := totp.GenerateCode(secret, time.Unix(stored.LastStep*30, 0))
	require.NoError(t, err)
	replay := b.submit(t, page, map[string]string{"code": used})
	require.Equal(t, http.StatusUnauthorized, replay.Status, "the enrolment's code again is a replay")
	require.Contains(t, flowAlert(t, replay), "already used")

	ok := b.submit(t, page, map[string]string{"code": strings.ToUpper(codes[0])})
	require.True(t, strings.HasPrefix(location(t, ok), "/consent?"), "a recovery code signs in: %s", location(t, ok))

	b2 := ts.newBrowser(t)
	page2 := mfaPage(t, b2, passwordStep(t, b2, ts.authorizeURL("web-client", nil)))
	again := b2.submit(t, page2, map[string]string{"code": codes[0]})
	require.Equal(t, http.StatusUnauthorized, again.Status, "a recovery code works once")

	// The next time step's code (within the accepted skew), sent by two
	// browsers at once: exactly one signs in.
	next, err := totp.GenerateCode(secret, time.Now().Add(30*time.Second))
	require.NoError(t, err)
	b3 := ts.newBrowser(t)
	page3 := mfaPage(t, b3, passwordStep(t, b3, ts.authorizeURL("web-client", nil)))
	require.True(t, strings.HasPrefix(location(t, b3.get(t, ts.authorizeURL("web-client", nil))), "/login?"),
		"the password alone starts no session")
	statuses := make([]int, 2)
	var wg sync.WaitGroup
	for i, pair := range []struct {
		b    *browser
		page response
	}{{b2, page2}, {b3, page3}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = pair.b.submit(t, pair.page, map[string]string{"code": next}).Status
		}()
	}
	wg.Wait()
	require.ElementsMatch(t, []int{http.StatusFound, http.StatusUnauthorized}, statuses, "one concurrent use of a code wins")
}

// TestSecondFactorStepUpAndPolicy: a password-only session is asked for the
// second factor (not the password) when a client's policy or mfa.required
// asks for one; prompt=none then answers interaction_required.
func TestSecondFactorStepUpAndPolicy(t *testing.T) {
	t.Parallel()

	t.Run("acr_values on a password-only session", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		b := ts.newBrowser(t)
		tk := codeFlow(t, b, "web-client", nil)
		_, claims := ts.verifyIDToken(t, tk.ID, "web-client")
		require.Equal(t, []any{"pwd"}, claims["amr"], "a password alone")
		require.Equal(t, "urn:latch:acr:pwd", claims["acr"])

		none := b.get(t, ts.authorizeURL("web-client", map[string]string{"acr_values": "urn:latch:acr:mfa", "prompt": "none"}))
		require.Equal(t, "interaction_required", flowCallback(t, none).Get("error"))

		r := b.get(t, ts.authorizeURL("web-client", map[string]string{"acr_values": "urn:latch:acr:mfa"}))
		loc := location(t, r)
		require.True(t, strings.HasPrefix(loc, "/login/mfa?challenge="), "straight to the second factor: %s", loc)
		require.Contains(t, string(b.get(t, loc).Body), "totp-secret", "enrolment first")
	})

	t.Run("mfa.required", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t, mfaRequired)
		_, _, raw := enrolAlice(t, ts.newBrowser(t), nil)
		_, claims := ts.verifyIDToken(t, raw, "web-client")
		require.Equal(t, "urn:latch:acr:mfa", claims["acr"])
	})

	t.Run("a seed shown in one browser is never shown in or confirmed from another", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t, mfaRequired)
		secretOf := func(r response) string {
			t.Helper()
			m := totpSecretRE.FindStringSubmatch(string(r.Body))
			require.NotNil(t, m, "an enrolment page: %s", r.Body)
			return m[1]
		}
		codeOf := func(secret string) string {
			code, err := totp.GenerateCode(secret, time.Now())
			require.NoError(t, err)
			return code
		}
		// Someone else with alice's password opens the enrolment too.
		other := ts.newBrowser(t)
		theirs := mfaPage(t, other, passwordStep(t, other, ts.authorizeURL("web-client", nil)))
		b := ts.newBrowser(t)
		mine := mfaPage(t, b, passwordStep(t, b, ts.authorizeURL("web-client", nil)))
		require.NotEqual(t, secretOf(theirs), secretOf(mine), "each opening draws a new seed")

		refused := other.submit(t, theirs, map[string]string{"code": codeOf(secretOf(theirs))})
		require.Equal(t, http.StatusUnauthorized, refused.Status, "their seed was replaced: it confirms nothing")
		require.NotEqual(t, secretOf(mine), secretOf(refused), "alice's seed is not shown to them")

		again := b.submit(t, mine, map[string]string{"code": codeOf(secretOf(mine))})
		require.Equal(t, http.StatusUnauthorized, again.Status, "restarted elsewhere meanwhile")
		require.NotEqual(t, secretOf(refused), secretOf(again), "their seed is not shown to alice")
		require.Equal(t, http.StatusOK, b.submit(t, again, map[string]string{"code": codeOf(secretOf(again))}).Status)
	})

	t.Run("an expired or foreign second-factor step", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t, mfaRequired)
		b := ts.newBrowser(t)
		r := passwordStep(t, b, ts.authorizeURL("web-client", nil))
		loc := location(t, r)
		// Another browser (no latch_mfa cookie) gets nowhere.
		other := ts.newBrowser(t).get(t, loc)
		flowRequirePage(t, other, http.StatusBadRequest)
	})
}

// TestAdminSecondFactors: the admin user list and user show who has which
// second factor (TOTP, passkey), and DELETE /admin/users/{u}/mfa removes
// them, after which the sign-in asks for the password alone.
func TestAdminSecondFactors(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withAdminToken(adminToken))
	ctx := t.Context()
	require.NoError(t, ts.Store.SaveTOTPEnrolment(ctx, "alice", "JBSWY3DPEHPK3PXP"))
	require.NoError(t, ts.Store.ReplaceRecoveryCodes(ctx, "alice", []string{"h1"}))
	require.Equal(t, []any{}, ts.adminOK(t, http.MethodGet, "/admin/users/alice", nil, http.StatusOK)["second_factors"],
		"an enrolment in progress is no factor")
	giveTOTP(t, ts.Store, "alice", "JBSWY3DPEHPK3PXP")
	givePasskey(t, ts.Store, "bob", "bob-key")

	list := ts.adminOK(t, http.MethodGet, "/admin/users", nil, http.StatusOK)["items"].([]any)
	byName := map[string]any{}
	for _, u := range list {
		byName[u.(map[string]any)["username"].(string)] = u.(map[string]any)["second_factors"]
	}
	require.Equal(t, map[string]any{"alice": []any{"totp"}, "bob": []any{"passkey"}}, byName)
	require.Equal(t, []any{"passkey"}, ts.adminOK(t, http.MethodGet, "/admin/users/bob", nil, http.StatusOK)["second_factors"])
	ts.adminOK(t, http.MethodDelete, "/admin/users/bob/mfa", nil, http.StatusNoContent)
	keys, err := ts.Store.ListPasskeys(ctx, "bob")
	require.NoError(t, err)
	require.Empty(t, keys, "the reset removes passkeys too")

	b := ts.newBrowser(t)
	mfaPage(t, b, passwordStep(t, b, ts.authorizeURL("web-client", nil)))

	ts.adminOK(t, http.MethodDelete, "/admin/users/alice/mfa", nil, http.StatusNoContent)
	ts.adminOK(t, http.MethodDelete, "/admin/users/alice/mfa", nil, http.StatusNotFound)
	n, err := ts.Store.UnusedRecoveryCodes(ctx, "alice")
	require.NoError(t, err)
	require.Zero(t, n, "the recovery codes went too")
	next := location(t, passwordStep(t, b, ts.authorizeURL("web-client", nil)))
	require.True(t, strings.HasPrefix(next, "/consent?"), "the password alone again: %s", next)
}

// TestDeviceFlowAsksForTheSecondFactor: signing in on the device page as
// a user with a TOTP goes through /login/mfa and back to the device page;
// the device's ID token says so in amr.
func TestDeviceFlowAsksForTheSecondFactor(t *testing.T) {
	t.Parallel()
	ts := newDeviceServer(t)
	const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	giveTOTP(t, ts.Store, "alice", secret)

	cfg := ts.deviceConfig("device-client", "openid")
	da := ts.deviceAuth(t, cfg)
	done := ts.deviceToken(t, cfg, da)
	b := ts.newBrowser(t)
	login := b.submit(t, b.get(t, da.VerificationURIComplete), nil)
	flowRequirePage(t, login, http.StatusOK)
	page := mfaPage(t, b, b.submit(t, login, map[string]string{"username": "alice", "password": "alice-password"}))
	code, err := totp.GenerateCode(secret, time.Now())
	require.NoError(t, err)
	back := location(t, b.submit(t, page, map[string]string{"code": code}))
	require.True(t, strings.HasPrefix(back, "/device?user_code="), "back to the device page: %s", back)
	last := b.connect(t, b.get(t, back), "", "allow")
	require.Contains(t, string(last.Body), "Device connected")

	res := waitDevice(t, done)
	require.NoError(t, res.err)
	idToken, _ := res.tok.Extra("id_token").(string)
	_, claims := ts.verifyIDToken(t, idToken, "device-client")
	require.ElementsMatch(t, []any{"pwd", "otp", "mfa"}, claims["amr"])
}
