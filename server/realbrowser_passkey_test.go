package server_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// TestRealBrowserPasskeySignInAlone registers a passkey on the account page
// with Chromium's virtual authenticator (a resident-key, user-verifying
// CTAP2 platform authenticator), signs out, signs in with the passkey and
// nothing else, and completes a code flow whose ID token says so in amr.
func TestRealBrowserPasskeySignInAlone(t *testing.T) {
	bin := chromiumPath(t)
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

	// Sign in with the password on the account page, add a passkey.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/account")))
	await(t, ctx, "#username")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#username"), "alice"),
		chromedp.SendKeys(chromedp.CSS("#password"), "alice-password"),
		chromedp.Click(chromedp.CSS(`button[type=submit]`))))
	await(t, ctx, "#passkey_name")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#passkey_name"), "Test laptop"),
		chromedp.Click(chromedp.CSS(`#passkey-add button[type=submit]`))))
	await(t, ctx, "p.notice")
	body, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	require.NoError(t, err)
	require.Contains(t, body, "Passkey added.")
	require.Contains(t, body, "Test laptop")
	screenshots(t, ctx, "account")

	// Sign out of this browser, from the account page's own list.
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`form[action="/account/sessions/end"] button`))))
	await(t, ctx, "#username")

	// The application asks; the person signs in with the passkey alone.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(rp.authorizeURL(ts, "query"))))
	await(t, ctx, "#passkey-signin")
	screenshots(t, ctx, "login")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#passkey-signin"))))
	hit := allow(t, ctx, rp, "query")

	r := ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "authorization_code",
		"code": hit.values.Get("code"), "redirect_uri": rp.redirect}, basicAuth(rp.id, rp.secret))
	require.Equal(t, http.StatusOK, r.Status, "token exchange: %s", r.Body)
	raw, _ := r.json(t)["id_token"].(string)
	_, claims := ts.verifyIDToken(t, raw, rp.id)
	amr, _ := claims["amr"].([]any)
	require.True(t, slices.Contains(amr, any("hwk")) || slices.Contains(amr, any("swk")), "amr %v", claims["amr"])
	require.Equal(t, "alice", claims["sub"])
}
