package server_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/latchauth/latch/storage"
)

var mfaPasskeyBeginRE = regexp.MustCompile(`id="passkey-signin"[^>]*data-begin="([^"]+)"`)

// givePasskey stores a passkey record for username whose credential id is
// id. The record is not a usable key: these tests go as far as the server
// goes without an authenticator (the Chromium tests go the rest).
func givePasskey(t *testing.T, st storage.PasskeyStore, username, id string) {
	t.Helper()
	record := `{"id":"` + base64.StdEncoding.EncodeToString([]byte(id)) + `"}`
	require.NoError(t, st.CreatePasskey(t.Context(), &storage.Passkey{ID: base64.RawURLEncoding.EncodeToString([]byte(id)),
		Username: username, Name: id, Credential: []byte(record)}))
}

// beginMFAPasskey posts to the begin URL the second-factor page names,
// with its CSRF token, from b.
func (b *browser) beginMFAPasskey(t *testing.T, page response) response {
	t.Helper()
	m := mfaPasskeyBeginRE.FindStringSubmatch(string(page.Body))
	require.NotNil(t, m, "a passkey button: %s", page.Body)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, b.ts.URL+strings.ReplaceAll(m[1], "&amp;", "&"), nil)
	require.NoError(t, err)
	req.Header.Set("X-CSRF-Token", forms(t, page)[0].Fields.Get("csrf_token"))
	req.Header.Set("Origin", b.ts.URL)
	return b.do(t, req)
}

// TestPasskeyIsASecondFactorAfterThePassword: alice has a passkey and no
// TOTP. After her password she is asked for the passkey, and the options
// name only her passkeys; a refused answer signs nobody in. The password
// grant refuses her too, as any user with a second factor.
func TestPasskeyIsASecondFactorAfterThePassword(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withLocalhostIssuer())
	givePasskey(t, ts.Store, "alice", "alice-laptop")
	givePasskey(t, ts.Store, "alice", "alice-phone")
	givePasskey(t, ts.Store, "bob", "bob-key")

	b := ts.newBrowser(t)
	page := mfaPage(t, b, passwordStep(t, b, ts.authorizeURL("web-client", nil)))
	require.NotContains(t, string(page.Body), `name="code"`, "no code form without a TOTP")
	require.Contains(t, string(page.Body), "Use one of your passkeys")
	fs := forms(t, page)
	require.Len(t, fs, 1, "one (hidden) form for the script to post")
	require.Equal(t, "/login/mfa", fs[0].Action)

	r := b.beginMFAPasskey(t, page)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	opts := r.json(t)["options"].(map[string]any)["publicKey"].(map[string]any)
	require.Equal(t, "localhost", opts["rpId"])
	var allowed []string
	for _, c := range opts["allowCredentials"].([]any) {
		allowed = append(allowed, c.(map[string]any)["id"].(string))
	}
	enc := base64.RawURLEncoding.EncodeToString
	require.ElementsMatch(t, []string{enc([]byte("alice-laptop")), enc([]byte("alice-phone"))}, allowed, "alice's passkeys and no one else's")

	ceremony := r.json(t)["ceremony"].(string)
	refused := b.submit(t, page, map[string]string{"passkey_ceremony": ceremony,
		"passkey_credential": `{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{}}`})
	require.Equal(t, http.StatusUnauthorized, refused.Status)
	require.Contains(t, flowAlert(t, refused), "That passkey was not accepted.")
	again := b.submit(t, page, map[string]string{"passkey_ceremony": ceremony, "passkey_credential": "{}"})
	require.Equal(t, http.StatusUnauthorized, again.Status, "the ceremony was used up")
	require.True(t, strings.HasPrefix(location(t, b.get(t, ts.authorizeURL("web-client", nil))), "/login?"),
		"nobody is signed in")

	// Without the sign-in in progress (another browser), nothing begins.
	other := ts.newBrowser(t)
	stranger := other.get(t, "/account")
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.URL+"/login/mfa/passkey/begin?challenge=x", nil)
	require.NoError(t, err)
	req.Header.Set("X-CSRF-Token", forms(t, stranger)[0].Fields.Get("csrf_token"))
	req.Header.Set("Origin", ts.URL)
	requireError(t, other.do(t, req), http.StatusBadRequest, "login_required")

	cfg := passwordClient(t, ts)
	_, err = cfg.PasswordCredentialsToken(context.WithValue(t.Context(), oauth2.HTTPClient, ts.http), "alice", "alice-password")
	require.Equal(t, "invalid_grant", retrieveError(t, err).ErrorCode, "the password grant cannot ask for the passkey")
}

// TestPasskeyAndTOTPBothOffered: with a TOTP too, the page offers the code
// form and the passkey; a code alone still signs in.
func TestPasskeyAndTOTPBothOffered(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withLocalhostIssuer())
	const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	givePasskey(t, ts.Store, "alice", "alice-laptop")
	giveTOTP(t, ts.Store, "alice", secret)
	b := ts.newBrowser(t)
	page := mfaPage(t, b, passwordStep(t, b, ts.authorizeURL("web-client", nil)))
	require.Contains(t, string(page.Body), `id="passkey-signin"`)
	ok := b.submit(t, page, map[string]string{"code": totpAt(t, secret, 0)})
	require.True(t, strings.HasPrefix(location(t, ok), "/consent?"), "a code signs in: %s", location(t, ok))
}

// TestPasskeyNoFactorOnAnIPIssuer: an issuer on an IP address cannot use
// passkeys, so a stored one asks for nothing a person could not give.
func TestPasskeyNoFactorOnAnIPIssuer(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t) // http://127.0.0.1:PORT
	givePasskey(t, ts.Store, "alice", "alice-laptop")
	b := ts.newBrowser(t)
	next := location(t, passwordStep(t, b, ts.authorizeURL("web-client", nil)))
	require.True(t, strings.HasPrefix(next, "/consent?"), "the password alone: %s", next)
}
