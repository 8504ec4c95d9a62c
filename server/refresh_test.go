package server_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/storage"
)

// withRefreshGrace serves from a second store on the SQLite file dsn
// (pass withDSN(dsn) too), opened with a refresh token grace period; the
// harness opens its own store without options.
func withRefreshGrace(t *testing.T, dsn string, grace time.Duration) option {
	return withStoreWrapper(func(storage.Store) storage.Store {
		st, err := storage.Open(context.Background(), storage.Options{Driver: "sqlite", DSN: dsn, RefreshTokenGracePeriod: grace})
		require.NoError(t, err, "open the grace-period store")
		t.Cleanup(func() { _ = st.Close() })
		return st
	})
}

// refreshScope refreshes as web-client asking for scope.
func (ts *testServer) refreshScope(t *testing.T, refreshToken, scope string) response {
	t.Helper()
	return ts.post(t, "/oauth2/token", "form",
		map[string]string{"grant_type": "refresh_token", "refresh_token": refreshToken, "scope": scope}, ts.as("web-client"))
}

// TestRefreshNeedsOfflineAccess: a refresh token only for offline_access.
func TestRefreshNeedsOfflineAccess(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for _, tc := range []struct {
		scope       string
		wantRefresh bool
	}{
		{"openid profile", false},
		{"openid profile offline_access", true},
		{"read", false},
		{"read offline_access", true},
	} {
		t.Run(tc.scope, func(t *testing.T) {
			tk := codeFlow(t, ts.newBrowser(t), "web-client", map[string]string{"scope": tc.scope})
			require.Equal(t, tc.scope, tk.Scope)
			if tc.wantRefresh {
				require.NotEmpty(t, tk.Refresh, "offline_access was granted")
				ts.refreshOK(t, "web-client", tk.Refresh)
			} else {
				require.Empty(t, tk.Refresh, "no refresh token without offline_access")
			}
		})
	}
}

// TestRefreshCodeGrantRotation: every use of a refresh token from the code
// flow rotates it; a rotated one used again ends the whole grant.
func TestRefreshCodeGrantRotation(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	tk := codeFlow(t, ts.newBrowser(t), "web-client", nil)
	chain := []grant{{Access: tk.Access, Refresh: tk.Refresh}}
	seen := map[string]bool{tk.Access: true, tk.Refresh: true}
	for i := 0; i < 3; i++ {
		g := ts.refreshOK(t, "web-client", chain[len(chain)-1].Refresh)
		require.False(t, seen[g.Access] || seen[g.Refresh], "refresh %d returns new tokens", i+1)
		seen[g.Access], seen[g.Refresh] = true, true
		require.True(t, ts.active(t, g.Access))
		require.True(t, ts.active(t, g.Refresh))
		require.False(t, ts.active(t, chain[len(chain)-1].Refresh), "the used refresh token is retired")
		chain = append(chain, g)
	}
	newest := chain[len(chain)-1]

	// The second-newest token was rotated: using it again is reuse.
	requireError(t, ts.refresh(t, "web-client", chain[len(chain)-2].Refresh), http.StatusBadRequest, "invalid_grant")
	require.False(t, ts.active(t, newest.Access), "reuse revokes the newest access token")
	require.False(t, ts.active(t, newest.Refresh), "reuse revokes the newest refresh token")
	requireError(t, ts.refresh(t, "web-client", newest.Refresh), http.StatusBadRequest, "invalid_grant")
	r := ts.raw(t, http.MethodGet, "/userinfo", "", "", bearerAuth(newest.Access))
	require.Equal(t, http.StatusUnauthorized, r.Status, "the revoked grant's access token is refused: %s", r.Body)
	for _, g := range chain {
		require.False(t, ts.active(t, g.Access))
		require.False(t, ts.active(t, g.Refresh))
	}
}

// TestRefreshIDToken: a refresh of a grant with openid returns a new ID
// token for the same person, client and authentication (OIDC Core §12.2).
func TestRefreshIDToken(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)

	t.Run("openid granted", func(t *testing.T) {
		tk := codeFlow(t, ts.newBrowser(t), "web-client", nil)
		_, first := ts.verifyIDToken(t, tk.ID, "web-client")
		next := tokensOf(t, ts.refresh(t, "web-client", tk.Refresh))
		require.NotEmpty(t, next.ID, "a new ID token")
		require.NotEqual(t, tk.ID, next.ID)
		idt, claims := ts.verifyIDToken(t, next.ID, "web-client")
		require.NoError(t, idt.VerifyAccessToken(next.Access), "at_hash is the new access token's")
		for _, k := range []string{"iss", "sub", "aud", "auth_time", "email", "name", "department"} {
			require.Equal(t, first[k], claims[k], "claim %s is kept", k)
		}
		if nonce, ok := claims["nonce"]; ok {
			require.Equal(t, first["nonce"], nonce, "a nonce, if any, is the original one")
		}
	})
	t.Run("no openid", func(t *testing.T) {
		tk := codeFlow(t, ts.newBrowser(t), "web-client", map[string]string{"scope": "read offline_access"})
		require.Empty(t, tk.ID)
		next := tokensOf(t, ts.refresh(t, "web-client", tk.Refresh))
		require.Empty(t, next.ID, "no ID token without openid")
		require.NotEmpty(t, next.Refresh)
	})
}

// TestRefreshScope: RFC 6749 §6 — a refresh may ask for fewer scopes than
// were granted, never more.
func TestRefreshScope(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	const granted = "openid profile email offline_access"

	t.Run("narrowing", func(t *testing.T) {
		tk := codeFlow(t, ts.newBrowser(t), "web-client", nil)
		require.Equal(t, granted, tk.Scope)
		next := tokensOf(t, ts.refreshScope(t, tk.Refresh, "openid"))
		require.Equal(t, "openid", next.Scope)
		require.Equal(t, "openid", ts.introspect(t, next.Access).json(t)["scope"], "the new access token carries only openid")
		r := ts.raw(t, http.MethodGet, "/userinfo", "", "", bearerAuth(next.Access))
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		require.NotContains(t, r.json(t), "email", "userinfo follows the narrowed scopes")
	})
	t.Run("narrowing: the new ID token follows the narrowed scopes", func(t *testing.T) {
		tk := codeFlow(t, ts.newBrowser(t), "web-client", nil)
		next := tokensOf(t, ts.refreshScope(t, tk.Refresh, "openid"))
		_, claims := ts.verifyIDToken(t, next.ID, "web-client")
		for _, k := range []string{"name", "preferred_username", "email", "email_verified"} {
			require.NotContains(t, claims, k, "no %s in an ID token refreshed for openid alone", k)
		}
	})
	t.Run("narrowing keeps the refresh token's own scope", func(t *testing.T) {
		// RFC 6749 §6: "If a new refresh token is issued, the refresh token
		// scope MUST be identical to that of the refresh token included by
		// the client in the request."
		tk := codeFlow(t, ts.newBrowser(t), "web-client", nil)
		next := tokensOf(t, ts.refreshScope(t, tk.Refresh, "openid"))
		require.NotEmpty(t, next.Refresh)
		assert.Equal(t, granted, ts.introspect(t, next.Refresh).json(t)["scope"], "the new refresh token keeps the granted scopes")
		r := ts.refresh(t, "web-client", next.Refresh)
		require.Equal(t, http.StatusOK, r.Status, "the refresh token of a narrowed refresh still refreshes: %s", r.Body)
		require.Equal(t, granted, tokensOf(t, r).Scope, "a refresh without scope gets everything granted")
	})
	t.Run("widening", func(t *testing.T) {
		tk := codeFlow(t, ts.newBrowser(t), "web-client", nil)
		// read is a scope web-client may ask for, but it was not granted.
		requireError(t, ts.refreshScope(t, tk.Refresh, "openid read"), http.StatusBadRequest, "invalid_scope")
		requireError(t, ts.refreshScope(t, tk.Refresh, "openid admin"), http.StatusBadRequest, "invalid_scope")
		require.True(t, ts.active(t, tk.Refresh), "a refused refresh does not use the token up")
		g := ts.refreshOK(t, "web-client", tk.Refresh)
		require.Equal(t, granted, ts.introspect(t, g.Access).json(t)["scope"])
	})
	t.Run("the same scopes", func(t *testing.T) {
		tk := codeFlow(t, ts.newBrowser(t), "web-client", nil)
		next := tokensOf(t, ts.refreshScope(t, tk.Refresh, "offline_access email openid profile"))
		require.ElementsMatch(t, []string{"openid", "profile", "email", "offline_access"}, strings.Fields(next.Scope))
	})
}

// TestRefreshGracePeriod: with a grace period a just-rotated refresh token
// still works (two clients refreshing at once both succeed); without one,
// the second use is reuse.
func TestRefreshGracePeriod(t *testing.T) {
	t.Parallel()
	for _, grace := range []time.Duration{2 * time.Second, 0} {
		t.Run(grace.String(), func(t *testing.T) {
			t.Parallel()
			dsn := filepath.Join(t.TempDir(), "latch.db")
			ts := newTestServer(t, withDSN(dsn), withRefreshGrace(t, dsn, grace))
			tk := codeFlow(t, ts.newBrowser(t), "web-client", nil)
			first := ts.refreshOK(t, "web-client", tk.Refresh)
			second := ts.refresh(t, "web-client", tk.Refresh)
			if grace == 0 {
				requireError(t, second, http.StatusBadRequest, "invalid_grant")
				require.False(t, ts.active(t, first.Access), "reuse ends the grant")
				require.False(t, ts.active(t, first.Refresh), "reuse ends the grant")
				return
			}
			g := tokensOf(t, second)
			require.NotEqual(t, first.Access, g.Access)
			require.NotEqual(t, first.Refresh, g.Refresh)
			require.True(t, ts.active(t, first.Access), "the first refresh's access token still works")
			require.True(t, ts.active(t, g.Access), "the second refresh's access token works")
			require.True(t, ts.active(t, first.Refresh))
			require.True(t, ts.active(t, g.Refresh))
			require.False(t, ts.active(t, tk.Access), "the access token of the rotated refresh token is gone")
			ts.refreshOK(t, "web-client", g.Refresh)
		})
	}
}
