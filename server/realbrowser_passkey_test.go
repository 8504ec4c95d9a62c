package server_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// TestRealBrowserPasskeySignInAlone registers a passkey on the account page
// with Chromium's virtual authenticator (a resident-key, user-verifying
// CTAP2 platform authenticator), signs out, signs in with the passkey and
// nothing else, and completes a code flow whose ID token says so in amr.
// Alice has a TOTP too: a user-verified passkey is two factors already,
// so she is not asked for a code after it.
func TestRealBrowserPasskeySignInAlone(t *testing.T) {
	bin := chromiumPath(t)
	t.Parallel()
	ts, rp, ctx := passkeyBrowser(t, bin)
	registerPasskey(t, ctx, ts)
	// The account page's enrolment of an authenticator app, looked at.
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#totp-add"))))
	await(t, ctx, "#totp-secret")
	screenshots(t, ctx, "account-totp")
	fitsNarrowScreen(t, ctx, "account-totp")
	giveTOTP(t, ts.Store, "alice", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")

	// Sign out of this browser, from the account page's own list.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/account")))
	await(t, ctx, "#totp-heading")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`form[action="/account/sessions/end"] button`))))
	await(t, ctx, "#username")

	// The application asks; the person signs in with the passkey alone.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(rp.authorizeURL(ts, "query"))))
	await(t, ctx, "#passkey-signin")
	screenshots(t, ctx, "login")
	fitsNarrowScreen(t, ctx, "login")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#passkey-signin"))))
	claims := rp.idTokenClaims(t, ts, allow(t, ctx, rp, "query"))
	require.Equal(t, "alice", claims["sub"])
	require.ElementsMatch(t, []any{"hwk", "mfa"}, claims["amr"], "a user-verified passkey bound to its authenticator (RFC 8176)")
	require.Equal(t, "urn:latch:acr:mfa", claims["acr"])
}

// TestRealBrowserPasskeyAsSecondFactor: alice, who has a passkey and a
// TOTP, signs in with her password; the second-factor page offers both,
// and she answers with the passkey. The ID token's amr says password,
// hardware key, multi-factor.
func TestRealBrowserPasskeyAsSecondFactor(t *testing.T) {
	bin := chromiumPath(t)
	t.Parallel()
	ts, rp, ctx := passkeyBrowser(t, bin)
	registerPasskey(t, ctx, ts)
	giveTOTP(t, ts.Store, "alice", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`form[action="/account/sessions/end"] button`))))
	await(t, ctx, "#username")

	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(rp.authorizeURL(ts, "query"))))
	signInAs(t, ctx, "alice", "alice-password")
	await(t, ctx, "#passkey-signin")
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#code"))), "the code form is offered too")
	screenshots(t, ctx, "mfa-passkey")
	fitsNarrowScreen(t, ctx, "mfa-passkey")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#passkey-signin"))))
	claims := rp.idTokenClaims(t, ts, allow(t, ctx, rp, "query"))
	require.Equal(t, "alice", claims["sub"])
	require.ElementsMatch(t, []any{"pwd", "hwk", "mfa"}, claims["amr"])
	require.Equal(t, "urn:latch:acr:mfa", claims["acr"])

	// The account page, signed in with both factors, at both widths.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/account")))
	await(t, ctx, "#totp-heading")
	screenshots(t, ctx, "account-factors")
	fitsNarrowScreen(t, ctx, "account")
}

// passkeyBrowser is realBrowserSetup on a localhost issuer (WebAuthn needs
// a domain) with a virtual authenticator: CTAP2, internal (a platform
// authenticator, so hwk), resident keys, user verification that succeeds.
func passkeyBrowser(t *testing.T, bin string) (*testServer, *relyingParty, context.Context) {
	t.Helper()
	ts, rp, ctx := realBrowserSetup(t, bin, withLocalhostIssuer())
	require.NoError(t, chromedp.Do(ctx)) // the browser and its tab exist
	_, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{})
	require.NoError(t, err, "WebAuthn.enable")
	_, err = chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol: webauthn.AuthenticatorProtocolCtap2, Transport: webauthn.AuthenticatorTransportInternal,
			HasResidentKey: true, HasUserVerification: true, IsUserVerified: true,
			AutomaticPresenceSimulation: true,
		}})
	require.NoError(t, err, "WebAuthn.addVirtualAuthenticator")
	return ts, rp, ctx
}

// registerPasskey signs alice in on the account page with her password and
// adds a passkey named "Test laptop"; the browser stays on the page.
func registerPasskey(t *testing.T, ctx context.Context, ts *testServer) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/account")))
	signInAs(t, ctx, "alice", "alice-password")
	await(t, ctx, "#passkey_name")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#passkey_name"), "Test laptop"),
		chromedp.SendKeys(chromedp.CSS("#passkey_password"), "alice-password"),
		chromedp.Click(chromedp.CSS(`#passkey-add button[type=submit]`))))
	await(t, ctx, "p.notice")
	body, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	require.NoError(t, err)
	require.Contains(t, body, "Passkey added.")
	require.Contains(t, body, "Test laptop")
	screenshots(t, ctx, "account")
}

// idTokenClaims redeems the code of hit and returns the ID token's claims.
func (rp *relyingParty) idTokenClaims(t *testing.T, ts *testServer, hit rpHit) map[string]any {
	t.Helper()
	r := ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "authorization_code",
		"code": hit.values.Get("code"), "redirect_uri": rp.redirect}, basicAuth(rp.id, rp.secret))
	require.Equal(t, http.StatusOK, r.Status, "token exchange: %s", r.Body)
	raw, _ := r.json(t)["id_token"].(string)
	_, claims := ts.verifyIDToken(t, raw, rp.id)
	return claims
}

// fitsNarrowScreen fails when the page the browser shows is wider than a
// 390 px phone screen (something scrolls sideways); the viewport is put
// back afterwards.
func fitsNarrowScreen(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(390, 800)))
	fits, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= window.innerWidth`))
	require.NoError(t, err)
	width, _ := chromedp.Run(ctx, chromedp.Evaluate[int64](`document.documentElement.scrollWidth`))
	require.True(t, fits, "%s is %d px wide at 390 px", name, width)
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateReset()))
}
