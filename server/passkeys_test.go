package server_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/storage"
	"github.com/latchauth/latch/storage/conformance"
)

// beginPasskeyLogin posts to /login/passkey/begin from b with the CSRF
// token of the page b shows.
func (b *browser) beginPasskeyLogin(t *testing.T, page response) response {
	t.Helper()
	token := forms(t, page)[0].Fields.Get("csrf_token")
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, b.ts.URL+"/login/passkey/begin", nil)
	require.NoError(t, err)
	req.Header.Set("X-CSRF-Token", token)
	req.Header.Set("Origin", b.ts.URL)
	return b.do(t, req)
}

func TestPasskeysOffForAnIssuerOnAnIPAddress(t *testing.T) {
	ts := newTestServer(t) // http://127.0.0.1:PORT
	b := ts.newBrowser(t)
	page := b.get(t, "/account")
	require.NotContains(t, string(page.Body), "passkey", "no passkey offered")
	r := b.beginPasskeyLogin(t, page)
	require.Equal(t, http.StatusNotFound, r.Status)
	require.Equal(t, "not_found", r.json(t)["error"])
}

func TestPasskeyLoginBeginIsCappedPerAddress(t *testing.T) {
	ts := newTestServer(t, withLocalhostIssuer())
	b := ts.newBrowser(t)
	page := b.get(t, "/account")
	require.Contains(t, string(page.Body), `id="passkey-signin"`)
	for i := range 20 {
		r := b.beginPasskeyLogin(t, page)
		require.Equal(t, http.StatusOK, r.Status, "begin %d: %s", i, r.Body)
		m := r.json(t)
		require.NotEmpty(t, m["ceremony"])
		pk := m["options"].(map[string]any)["publicKey"].(map[string]any)
		require.Equal(t, "localhost", pk["rpId"])
		require.Equal(t, "required", pk["userVerification"])
	}
	r := b.beginPasskeyLogin(t, page)
	require.Equal(t, http.StatusTooManyRequests, r.Status, "the 21st ceremony in flight from one address")
	require.NotEmpty(t, r.Header.Get("Retry-After"))

	// Without the CSRF token nothing is begun.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.URL+"/login/passkey/begin", nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusForbidden, b.do(t, req).Status)
}

func TestPasskeyAnswerThatDoesNotVerifyIsRefused(t *testing.T) {
	ts := newTestServer(t, withLocalhostIssuer())
	b := ts.newBrowser(t)
	page := b.get(t, "/account")
	ceremony := b.beginPasskeyLogin(t, page).json(t)["ceremony"].(string)
	for _, credential := range []string{"", "{}", `{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{}}`} {
		r := b.submit(t, page, map[string]string{"passkey_ceremony": ceremony, "passkey_credential": credential, "username": "", "password": ""})
		require.Equal(t, http.StatusUnauthorized, r.Status, "credential %.40q", credential)
		require.Contains(t, string(r.Body), "That passkey did not sign you in.")
		// A refused answer used the ceremony up: begin again.
		ceremony = b.beginPasskeyLogin(t, page).json(t)["ceremony"].(string)
	}
	require.Contains(t, string(b.get(t, "/account").Body), `action="/account/login"`, "nobody was signed in")
}

func TestAccountPasskeysRenamedAndRemovedOnlyByTheirOwner(t *testing.T) {
	ts := newTestServer(t, withLocalhostIssuer())
	ctx := context.Background()
	// Signed in before she has a passkey (with one, the password alone
	// would not do).
	b := ts.newBrowser(t)
	require.Equal(t, http.StatusSeeOther, b.signInAccount(t, "alice", "alice-password").Status)
	// The record's content does not matter to naming and removing.
	for _, p := range []*storage.Passkey{
		{ID: "alice-key", Username: "alice", Name: "Laptop", Credential: []byte(`{"flags":{"backupEligible":true}}`)},
		{ID: "bob-key", Username: "bob", Name: "Phone", Credential: []byte(`{}`)},
	} {
		require.NoError(t, ts.Store.CreatePasskey(ctx, p))
	}
	page := b.accountPage(t)
	require.Contains(t, string(page.Body), "Laptop")
	require.Contains(t, string(page.Body), "synced")
	require.NotContains(t, string(page.Body), "Phone")

	edit := func(set map[string]string) response {
		return b.accountPost(t, page, "/account/passkeys/edit", map[string]string{"passkey": "alice-key"}, set)
	}
	r := edit(map[string]string{"action": "rename", "name": "  Work laptop  "})
	require.Equal(t, "/account?done=passkey-renamed", location(t, r))
	require.Contains(t, string(b.accountPage(t).Body), "Work laptop")
	r = edit(map[string]string{"action": "rename", "name": strings.Repeat("é", 100)})
	require.Equal(t, http.StatusSeeOther, r.Status)
	keys, err := ts.Store.ListPasskeys(ctx, "alice")
	require.NoError(t, err)
	require.Equal(t, strings.Repeat("é", 64), keys[0].Name, "a name is capped at 64 characters")

	r = edit(map[string]string{"action": "remove", "passkey": "bob-key"})
	require.Equal(t, http.StatusBadRequest, r.Status, "bob's passkey is not alice's to remove")
	r = edit(map[string]string{"action": "rename", "passkey": "bob-key", "name": "mine"})
	require.Equal(t, http.StatusBadRequest, r.Status)
	_, err = ts.Store.GetPasskey(ctx, "bob-key")
	require.NoError(t, err)

	r = edit(map[string]string{"action": "remove"})
	require.Equal(t, "/account?done=passkey-removed", location(t, r))
	keys, err = ts.Store.ListPasskeys(ctx, "alice")
	require.NoError(t, err)
	require.Empty(t, keys)
}

func TestPasskeyCeremonyIsTakenOnceUnderConcurrency(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	c := &storage.Ceremony{ID: "one", Kind: "login", AddressKey: "127.0.0.1", Data: []byte(`{}`), ExpiresAt: time.Now().Add(time.Minute)}
	require.NoError(t, ts.Store.CreateCeremony(ctx, c, 5))
	var won atomic.Int32
	conformance.Together(12, func(int) {
		if _, err := ts.Store.TakeCeremony(ctx, "one", "login"); err == nil {
			won.Add(1)
		}
	})
	require.Equal(t, int32(1), won.Load(), "exactly one take wins")

	require.NoError(t, ts.Store.CreateCeremony(ctx, &storage.Ceremony{ID: "two", Kind: "login", AddressKey: "a", Data: []byte(`{}`), ExpiresAt: time.Now().Add(time.Minute)}, 5))
	_, err := ts.Store.TakeCeremony(ctx, "two", "register")
	require.ErrorIs(t, err, storage.ErrNotFound, "a login ceremony cannot finish a registration")
}

// TestAccountPasskeyAddNeedsThePassword: a session cookie alone does not
// add a passkey (which would sign in alone): the add form's password is
// checked before the authenticator's answer.
func TestAccountPasskeyAddNeedsThePassword(t *testing.T) {
	ts := newTestServer(t, withLocalhostIssuer())
	b := ts.newBrowser(t)
	require.Equal(t, http.StatusSeeOther, b.signInAccount(t, "alice", "alice-password").Status)
	page := b.accountPage(t)
	begin := func() string {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.URL+"/account/passkeys/begin", nil)
		require.NoError(t, err)
		req.Header.Set("X-CSRF-Token", forms(t, page)[0].Fields.Get("csrf_token"))
		req.Header.Set("Origin", ts.URL)
		r := b.do(t, req)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		return r.json(t)["ceremony"].(string)
	}
	add := func(password string) response {
		return b.accountPost(t, page, "/account/passkeys/add", nil, map[string]string{"passkey_ceremony": begin(),
			"passkey_credential": `{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{}}`, "current_password": password})
	}
	r := add("not-alices")
	require.Equal(t, http.StatusUnauthorized, r.Status)
	require.Contains(t, flowAlert(t, r), "The current password is wrong.")
	r = add("alice-password")
	require.Equal(t, http.StatusBadRequest, r.Status, "then the answer is checked")
	require.Contains(t, flowAlert(t, r), "The passkey was not added.")
	keys, err := ts.Store.ListPasskeys(t.Context(), "alice")
	require.NoError(t, err)
	require.Empty(t, keys)
}
