package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/server"
	"github.com/latchauth/latch/storage"
)

// TestHTTPSCookies: behind an https issuer the session and CSRF cookies are
// Secure too (SPEC "Security defaults"). The harness serves plain http, so
// this test starts its own TLS server.
func TestHTTPSCookies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := storage.Open(ctx, storage.Options{Driver: "sqlite", DSN: filepath.Join(t.TempDir(), "latch.db")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	require.NoError(t, st.Migrate(ctx))
	hasher := clients.NewHasher(100)
	createClients(t, &clients.Manager{Store: st, Hasher: hasher})
	createUsers(t, st)

	httpSrv := httptest.NewUnstartedServer(nil)
	srv, err := server.New(ctx, server.Config{
		Issuer: "https://" + httpSrv.Listener.Addr().String(), Store: st, Hasher: hasher,
		SystemSecret: testSystemSecret, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	httpSrv.Config.Handler = srv
	httpSrv.StartTLS()
	t.Cleanup(httpSrv.Close)

	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	client := httpSrv.Client()
	client.Jar = jar
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	ts := &testServer{URL: httpSrv.URL, Store: st, http: client}
	b := &browser{ts: ts, client: client}

	loginURL := location(t, b.get(t, ts.authorizeURL("web-client", nil)))
	require.True(t, strings.HasPrefix(loginURL, "/login?challenge="), "%s", loginURL)
	page := b.get(t, loginURL)
	require.Equal(t, http.StatusOK, page.Status, "%s", page.Body)
	csrfCookie := flowCookie(t, page, "latch_csrf")
	require.NotNil(t, csrfCookie, "%v", page.Header.Values("Set-Cookie"))

	r := b.submit(t, page, map[string]string{"username": "alice", "password": "alice-password"})
	next := location(t, r)
	require.True(t, strings.HasPrefix(next, "/consent?challenge="), "signed in over https: %s", next)
	session := flowCookie(t, r, "latch_session")
	require.NotNil(t, session, "%v", r.Header.Values("Set-Cookie"))
	for _, c := range []*http.Cookie{session, csrfCookie} {
		require.True(t, c.Secure, "%s: Secure under an https issuer", c.Name)
		require.True(t, c.HttpOnly, "%s: HttpOnly", c.Name)
		require.Equal(t, http.SameSiteLaxMode, c.SameSite, "%s: SameSite=Lax", c.Name)
	}

	// Under https, a form from a foreign origin is refused as well.
	page = b.get(t, next)
	require.Equal(t, http.StatusOK, page.Status, "%s", page.Body)
	flowRequirePage(t, flowPost(t, b, page, map[string]string{"decision": "allow"}, "https://evil.example"), http.StatusForbidden)
	q := flowCallback(t, b.submit(t, page, map[string]string{"decision": "allow"}))
	require.NotEmpty(t, q.Get("code"))
}
