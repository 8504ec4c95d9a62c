package server_test

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/latchauth/latch/clients"
)

const grantDevice = "urn:ietf:params:oauth:grant-type:device_code"

// userCodeFormat is RFC 8628 §6.1's advice as Latch follows it: eight
// characters without vowels or look-alikes, shown as XXXX-XXXX.
var userCodeFormat = regexp.MustCompile(`^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`)

// newDeviceServer is newTestServer plus two device clients, kept out of
// the shared harness so that tests counting its clients are unaffected:
//
//	device-client        none; device_code, refresh_token
//	device-confidential  client_secret_post (how golang.org/x/oauth2's
//	                     DeviceAuth can send a secret); device_code only,
//	                     skip_consent, audience https://api.example.com
//
// Devices are told to poll every second, not RFC 8628's 5 s, so that the
// flows through golang.org/x/oauth2 (which waits the interval before each
// poll) do not wait out 5 s; withDevicePollInterval(0) restores the default.
func newDeviceServer(t *testing.T, opts ...option) *testServer {
	t.Helper()
	ts := newTestServer(t, append([]option{withDevicePollInterval(time.Second)}, opts...)...)
	m := &clients.Manager{Store: ts.Store, Hasher: clients.NewHasher(100)}
	for _, c := range []*clients.Client{
		{ID: "device-client", Name: "Device App", TokenEndpointAuthMethod: clients.AuthMethodNone,
			GrantTypes: []string{clients.GrantDeviceCode, clients.GrantRefreshToken},
			Scopes:     []string{"openid", "profile", "email", "read", "offline_access"}},
		{ID: "device-confidential", Name: "Device Service", TokenEndpointAuthMethod: clients.AuthMethodPost, SkipConsent: true,
			GrantTypes: []string{clients.GrantDeviceCode}, Scopes: []string{"openid", "read"}, Audience: []string{"https://api.example.com"}},
	} {
		secret, err := m.Create(context.Background(), c, "")
		require.NoError(t, err, "create client %s", c.ID)
		ts.secrets[c.ID] = secret
	}
	return ts
}

// withDeviceCodeLifespan sets tokens.device_code_lifespan.
func withDeviceCodeLifespan(d time.Duration) option {
	return func(o *serverOptions) { o.cfg.DeviceCodeLifespan = d }
}

func withDevicePollInterval(d time.Duration) option {
	return func(o *serverOptions) { o.cfg.DevicePollInterval = d }
}

// deviceConfig is golang.org/x/oauth2's view of a device client: the
// secret, when there is one, goes in the form (client_secret_post), the
// only way DeviceAuth can send it.
func (ts *testServer) deviceConfig(clientID string, scopes ...string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     clientID,
		ClientSecret: ts.secrets[clientID],
		Scopes:       scopes,
		Endpoint: oauth2.Endpoint{
			DeviceAuthURL: ts.URL + "/oauth2/device/auth",
			TokenURL:      ts.URL + "/oauth2/token",
			AuthStyle:     oauth2.AuthStyleInParams,
		},
	}
}

// deviceAuth starts a device authorization with golang.org/x/oauth2.
func (ts *testServer) deviceAuth(t *testing.T, cfg *oauth2.Config) *oauth2.DeviceAuthResponse {
	t.Helper()
	var opts []oauth2.AuthCodeOption
	if cfg.ClientSecret != "" {
		opts = append(opts, oauth2.SetAuthURLParam("client_secret", cfg.ClientSecret))
	}
	da, err := cfg.DeviceAuth(ts.deviceCtx(t), opts...)
	require.NoError(t, err, "DeviceAuth")
	return da
}

// deviceCtx is a context whose HTTP client is the test server's.
func (ts *testServer) deviceCtx(t *testing.T) context.Context {
	return context.WithValue(t.Context(), oauth2.HTTPClient, ts.http)
}

// pollDevice polls the token endpoint once, by hand.
func (ts *testServer) pollDevice(t *testing.T, deviceCode string, a auth) response {
	t.Helper()
	return ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": grantDevice, "device_code": deviceCode}, a)
}

// deviceToken runs DeviceAccessToken in the background, as a device
// waiting for its person does.
func (ts *testServer) deviceToken(t *testing.T, cfg *oauth2.Config, da *oauth2.DeviceAuthResponse) <-chan deviceResult {
	done := make(chan deviceResult, 1)
	ctx := ts.deviceCtx(t)
	go func() {
		tok, err := cfg.DeviceAccessToken(ctx, da)
		done <- deviceResult{tok, err}
	}()
	return done
}

type deviceResult struct {
	tok *oauth2.Token
	err error
}

func waitDevice(t *testing.T, done <-chan deviceResult) deviceResult {
	t.Helper()
	select {
	case res := <-done:
		return res
	case <-time.After(30 * time.Second):
		t.Fatal("DeviceAccessToken did not return")
		return deviceResult{}
	}
}

// connect goes through the /device pages from page (the code entry) as
// alice: the code, the login if asked, then decision on the consent page.
// It returns the last page.
func (b *browser) connect(t *testing.T, page response, typed, decision string) response {
	t.Helper()
	flowRequirePage(t, page, http.StatusOK)
	set := map[string]string{}
	if typed != "" {
		set["user_code"] = typed
	}
	r := b.submit(t, page, set)
	flowRequirePage(t, r, http.StatusOK)
	if f := forms(t, r)[0]; hasInput(f, "password") {
		require.Equal(t, "/device", f.Action, "the login form posts to the device page")
		r = b.submit(t, r, map[string]string{"username": "alice", "password": "alice-password"})
		flowRequirePage(t, r, http.StatusOK)
	}
	f := forms(t, r)[0]
	require.ElementsMatch(t, []string{"decision=deny", "decision=allow"}, f.Buttons, "the consent page: %s", r.Body)
	require.Equal(t, "/device", f.Action, "the consent form posts to the device page")
	// The device's consent is always asked, so nothing offers to remember it.
	require.False(t, hasInput(f, "remember"), "no remember box on the device consent page: %s", r.Body)
	done := b.submit(t, r, map[string]string{"decision": decision})
	flowRequirePage(t, done, http.StatusOK)
	require.Empty(t, forms(t, done), "the last page has no form")
	return done
}

func hasInput(f form, name string) bool {
	for _, v := range f.Inputs {
		if v == name {
			return true
		}
	}
	return false
}

// TestDeviceFlowPublicClient: a public client, the whole way with
// golang.org/x/oauth2: the answer of the device authorization endpoint,
// the pages from verification_uri_complete, the tokens (refresh token with
// offline_access, ID token with openid), and the device code used once.
func TestDeviceFlowPublicClient(t *testing.T) {
	t.Parallel()
	ts := newDeviceServer(t)
	cfg := ts.deviceConfig("device-client", "openid", "profile", "offline_access")
	start := time.Now()
	da := ts.deviceAuth(t, cfg)
	require.Regexp(t, userCodeFormat, da.UserCode)
	require.True(t, strings.HasPrefix(da.DeviceCode, "ory_dc_"), "device code %q", da.DeviceCode)
	require.Equal(t, ts.URL+"/device", da.VerificationURI)
	require.Equal(t, ts.URL+"/device?user_code="+da.UserCode, da.VerificationURIComplete)
	require.Equal(t, int64(1), da.Interval, "the interval of newDeviceServer")
	require.WithinDuration(t, start.Add(10*time.Minute), da.Expiry, 5*time.Second, "expires_in is the device code lifespan")

	raw := ts.post(t, "/oauth2/device/auth", "form", map[string]string{"scope": "openid"}, idAuth("device-client"))
	require.Equal(t, http.StatusOK, raw.Status, "%s", raw.Body)
	require.Contains(t, raw.Header.Get("Cache-Control"), "no-store")
	require.Contains(t, raw.Header.Get("Content-Type"), "application/json")
	require.NotEqual(t, da.UserCode, raw.json(t)["user_code"], "every authorization gets its own user code")

	// Before the person acts: authorization_pending.
	requireError(t, ts.pollDevice(t, da.DeviceCode, idAuth("device-client")), http.StatusBadRequest, "authorization_pending")

	done := ts.deviceToken(t, cfg, da)
	b := ts.newBrowser(t)
	page := b.get(t, da.VerificationURIComplete)
	entry := forms(t, page)
	require.Len(t, entry, 1)
	require.Equal(t, da.UserCode, entry[0].Fields.Get("user_code"), "the code entry is prefilled from verification_uri_complete")
	last := b.connect(t, page, "", "allow")
	require.Contains(t, string(last.Body), "Device connected")
	require.Contains(t, string(last.Body), "return to your device")

	res := waitDevice(t, done)
	require.NoError(t, res.err, "DeviceAccessToken")
	tok := res.tok
	require.NotEmpty(t, tok.AccessToken)
	require.Equal(t, "bearer", strings.ToLower(tok.TokenType))
	require.NotEmpty(t, tok.RefreshToken, "offline_access was granted")
	idToken, _ := tok.Extra("id_token").(string)
	_, claims := ts.verifyIDToken(t, idToken, "device-client")
	require.Equal(t, "alice", claims["sub"])
	require.Equal(t, "Alice Example", claims["name"], "profile claims")

	in := ts.introspect(t, tok.AccessToken).json(t)
	require.Equal(t, true, in["active"])
	require.Equal(t, "alice", in["sub"])
	require.Equal(t, "device-client", in["client_id"])
	require.ElementsMatch(t, []string{"openid", "profile", "offline_access"}, strings.Fields(in["scope"].(string)))

	// The device code is used once.
	requireError(t, ts.pollDevice(t, da.DeviceCode, idAuth("device-client")), http.StatusBadRequest, "invalid_grant")

	// The tokens are like any other grant's: they refresh (with a new ID
	// token) and revoke as one grant.
	r := ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "refresh_token", "refresh_token": tok.RefreshToken}, idAuth("device-client"))
	require.Equal(t, http.StatusOK, r.Status, "refresh: %s", r.Body)
	refreshed := r.json(t)
	require.NotEmpty(t, refreshed["id_token"])
	require.False(t, ts.active(t, tok.AccessToken), "the old access token is gone after the rotation")
	r = ts.post(t, "/oauth2/revoke", "form", map[string]string{"token": refreshed["refresh_token"].(string)}, idAuth("device-client"))
	require.Equal(t, http.StatusOK, r.Status, "revoke: %s", r.Body)
	require.False(t, ts.active(t, refreshed["access_token"].(string)), "revoking the refresh token ends the grant")
}

// TestDeviceFlowConfidentialClient: a confidential client authenticates at
// both endpoints; the code is typed by hand in lower case with a space;
// the consent page is shown although the client has skip_consent; no
// refresh token without offline_access.
func TestDeviceFlowConfidentialClient(t *testing.T) {
	t.Parallel()
	ts := newDeviceServer(t)
	cfg := ts.deviceConfig("device-confidential", "openid", "read")
	da := ts.deviceAuth(t, cfg)

	done := ts.deviceToken(t, cfg, da)
	b := ts.newBrowser(t)
	page := b.get(t, "/device")
	require.Empty(t, forms(t, page)[0].Fields.Get("user_code"), "nothing prefilled without ?user_code=")
	typed := strings.ToLower(strings.Replace(da.UserCode, "-", " ", 1))
	last := b.connect(t, page, typed, "allow")
	require.Contains(t, string(last.Body), "Device Service")

	res := waitDevice(t, done)
	require.NoError(t, res.err, "DeviceAccessToken")
	require.NotEmpty(t, res.tok.AccessToken)
	require.Empty(t, res.tok.RefreshToken, "no offline_access, no refresh token")
	_, claims := ts.verifyIDToken(t, res.tok.Extra("id_token").(string), "device-confidential")
	require.Equal(t, "alice", claims["sub"])

	t.Run("client authentication", func(t *testing.T) {
		r := ts.post(t, "/oauth2/device/auth", "form", map[string]string{"scope": "read"}, idAuth("device-confidential"))
		requireError(t, r, http.StatusUnauthorized, "invalid_client")
		r = ts.post(t, "/oauth2/device/auth", "form", map[string]string{"scope": "read"}, postAuth("device-confidential", "wrong"))
		requireError(t, r, http.StatusUnauthorized, "invalid_client")
		r = ts.post(t, "/oauth2/device/auth", "form", nil, noAuth)
		requireError(t, r, http.StatusUnauthorized, "invalid_client")
		r = ts.post(t, "/oauth2/device/auth", "form", nil, idAuth("nobody"))
		requireError(t, r, http.StatusUnauthorized, "invalid_client")
		r = ts.post(t, "/oauth2/device/auth", "form", map[string]string{"scope": "read"}, postAuth("device-confidential", ts.secrets["device-confidential"]))
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		// A poll without the secret is refused before the code is read.
		requireError(t, ts.pollDevice(t, r.json(t)["device_code"].(string), idAuth("device-confidential")), http.StatusUnauthorized, "invalid_client")
	})
	t.Run("scope and audience", func(t *testing.T) {
		auth := postAuth("device-confidential", ts.secrets["device-confidential"])
		r := ts.post(t, "/oauth2/device/auth", "form", map[string]string{"scope": "read write"}, auth)
		requireError(t, r, http.StatusBadRequest, "invalid_scope")
		r = ts.post(t, "/oauth2/device/auth", "form", map[string]string{"audience": "https://elsewhere.example.com"}, auth)
		requireError(t, r, http.StatusBadRequest, "invalid_request")
		r = ts.post(t, "/oauth2/device/auth", "form", map[string]string{"audience": "https://api.example.com"}, auth)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	})
}

// TestDeviceFlowDeny: a denied request ends with access_denied.
func TestDeviceFlowDeny(t *testing.T) {
	t.Parallel()
	ts := newDeviceServer(t)
	cfg := ts.deviceConfig("device-client", "openid")
	da := ts.deviceAuth(t, cfg)
	done := ts.deviceToken(t, cfg, da)
	b := ts.newBrowser(t)
	last := b.connect(t, b.get(t, da.VerificationURIComplete), "", "deny")
	require.Contains(t, string(last.Body), "Access denied")

	res := waitDevice(t, done)
	var re *oauth2.RetrieveError
	require.ErrorAs(t, res.err, &re, "DeviceAccessToken fails with the server's error")
	require.Equal(t, "access_denied", re.ErrorCode)
	require.Equal(t, http.StatusBadRequest, re.Response.StatusCode)
	requireError(t, ts.pollDevice(t, da.DeviceCode, idAuth("device-client")), http.StatusBadRequest, "access_denied")

	// The code cannot be entered again.
	r := b.submit(t, b.get(t, "/device"), map[string]string{"user_code": da.UserCode})
	flowRequirePage(t, r, http.StatusBadRequest)
}

// TestDeviceSlowDown: the default interval is 5 s; polling faster than
// the interval is slow_down, and the device code's interval grows by 5 s
// each time, persisted.
func TestDeviceSlowDown(t *testing.T) {
	t.Parallel()
	ts := newDeviceServer(t, withDevicePollInterval(0))
	da := ts.deviceAuth(t, ts.deviceConfig("device-client", "openid"))
	require.Equal(t, int64(5), da.Interval, "RFC 8628's default")
	a := idAuth("device-client")
	requireError(t, ts.pollDevice(t, da.DeviceCode, a), http.StatusBadRequest, "authorization_pending")
	requireError(t, ts.pollDevice(t, da.DeviceCode, a), http.StatusBadRequest, "slow_down")
	requireError(t, ts.pollDevice(t, da.DeviceCode, a), http.StatusBadRequest, "slow_down")

	dc, err := ts.Store.GetDeviceCodeByUserCode(t.Context(), strings.ReplaceAll(da.UserCode, "-", ""))
	require.NoError(t, err)
	require.Equal(t, 15*time.Second, dc.Interval, "5 s, grown by 5 s on each of two slow_downs")
}

// TestDeviceExpiry: after the lifespan the device gets expired_token and
// the code is refused on the page.
func TestDeviceExpiry(t *testing.T) {
	t.Parallel()
	ts := newDeviceServer(t, withDeviceCodeLifespan(time.Second))
	cfg := ts.deviceConfig("device-client", "openid")
	da := ts.deviceAuth(t, cfg)
	require.WithinDuration(t, time.Now().Add(time.Second), da.Expiry, 2*time.Second, "expires_in follows tokens.device_code_lifespan")

	// golang.org/x/oauth2 stops polling at expires_in.
	_, err := cfg.DeviceAccessToken(ts.deviceCtx(t), da)
	require.True(t, errors.Is(err, context.DeadlineExceeded), "DeviceAccessToken gives up at expiry: %v", err)

	time.Sleep(time.Until(da.Expiry.Add(1500 * time.Millisecond)))
	requireError(t, ts.pollDevice(t, da.DeviceCode, idAuth("device-client")), http.StatusBadRequest, "expired_token")
	b := ts.newBrowser(t)
	r := b.submit(t, b.get(t, "/device"), map[string]string{"user_code": da.UserCode})
	flowRequirePage(t, r, http.StatusBadRequest)
	require.Contains(t, flowAlert(t, r), "expired")
}

// TestDeviceWrongCode: a wrong or malformed code shows the code entry again
// with an error; after five wrong codes the address must wait, even with
// the right code.
func TestDeviceWrongCode(t *testing.T) {
	t.Parallel()
	ts := newDeviceServer(t)
	da := ts.deviceAuth(t, ts.deviceConfig("device-client", "openid"))
	b := ts.newBrowser(t)
	wrong := "BCDF-GHJK"
	if da.UserCode == wrong {
		wrong = "BCDF-GHJL"
	}
	for i, typed := range []string{wrong, "hello", "AEIO-UAEI", wrong + "X", "ory_dc_x.y"} {
		r := b.submit(t, b.get(t, "/device"), map[string]string{"user_code": typed})
		flowRequirePage(t, r, http.StatusBadRequest)
		require.Contains(t, flowAlert(t, r), "not valid", "attempt %d", i)
		f := forms(t, r)
		require.Len(t, f, 1, "the code entry again")
		require.Equal(t, typed, f[0].Fields.Get("user_code"), "what was typed stays in the field")
	}
	r := b.submit(t, b.get(t, "/device"), map[string]string{"user_code": da.UserCode})
	flowRequirePage(t, r, http.StatusTooManyRequests)
	require.Contains(t, flowAlert(t, r), "Too many wrong codes")

	// A form without the CSRF token is refused before the code is read.
	r = ts.post(t, "/device", "form", map[string]string{"user_code": da.UserCode}, noAuth)
	flowRequirePage(t, r, http.StatusForbidden)

	// The device is not affected: its code is still pending.
	requireError(t, ts.pollDevice(t, da.DeviceCode, idAuth("device-client")), http.StatusBadRequest, "authorization_pending")
}

// TestDeviceUnauthorizedClient: only clients that list the device grant
// may use it, at either endpoint.
func TestDeviceUnauthorizedClient(t *testing.T) {
	t.Parallel()
	ts := newDeviceServer(t)
	_, err := ts.deviceConfig("public-client", "openid").DeviceAuth(ts.deviceCtx(t))
	var re *oauth2.RetrieveError
	require.ErrorAs(t, err, &re)
	require.Equal(t, "unauthorized_client", re.ErrorCode)
	require.Equal(t, http.StatusBadRequest, re.Response.StatusCode)

	r := ts.post(t, "/oauth2/device/auth", "form", map[string]string{"scope": "read"}, ts.as("basic-client"))
	requireError(t, r, http.StatusBadRequest, "unauthorized_client")

	da := ts.deviceAuth(t, ts.deviceConfig("device-client", "openid"))
	requireError(t, ts.pollDevice(t, da.DeviceCode, ts.as("basic-client")), http.StatusBadRequest, "unauthorized_client")
	// A device code works only for the client it was issued to.
	requireError(t, ts.pollDevice(t, da.DeviceCode, postAuth("device-confidential", ts.secrets["device-confidential"])), http.StatusBadRequest, "invalid_grant")
	// Malformed, forged and missing device codes.
	for _, code := range []string{"nonsense", "ory_dc_AAAA.BBBB", strings.TrimPrefix(da.DeviceCode, "ory_dc_")} {
		requireError(t, ts.pollDevice(t, code, idAuth("device-client")), http.StatusBadRequest, "invalid_grant")
	}
	r = ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": grantDevice}, idAuth("device-client"))
	requireError(t, r, http.StatusBadRequest, "invalid_request")
}

// TestDeviceRevokedBeforeRedeem: revoking a person's grants also ends an
// approved device code the device has not redeemed yet.
func TestDeviceRevokedBeforeRedeem(t *testing.T) {
	t.Parallel()
	ts := newDeviceServer(t)
	da := ts.deviceAuth(t, ts.deviceConfig("device-client", "openid"))
	b := ts.newBrowser(t)
	b.connect(t, b.get(t, da.VerificationURIComplete), "", "allow")
	n, err := ts.Store.RevokeSubjectTokens(t.Context(), "alice")
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	requireError(t, ts.pollDevice(t, da.DeviceCode, idAuth("device-client")), http.StatusBadRequest, "invalid_grant")
}

// TestDeviceDiscovery: both discovery documents list the endpoint and the
// grant.
func TestDeviceDiscovery(t *testing.T) {
	t.Parallel()
	ts := newDeviceServer(t)
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		doc := ts.get(t, path).json(t)
		require.Equal(t, ts.URL+"/oauth2/device/auth", doc["device_authorization_endpoint"], path)
		require.Contains(t, doc["grant_types_supported"], grantDevice, path)
	}
}
