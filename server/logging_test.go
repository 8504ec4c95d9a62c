package server_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/internal/syncbuf"
	"github.com/latchauth/latch/server"
	"github.com/latchauth/latch/storage"
)

// newLoggedServer is newTestServer with the server's log, JSON at debug
// level, going to the returned buffer (the harness discards it).
func newLoggedServer(t *testing.T) (*testServer, *syncbuf.Buffer) {
	t.Helper()
	ctx := context.Background()
	st, err := storage.Open(ctx, storage.Options{Driver: "sqlite", DSN: filepath.Join(t.TempDir(), "latch.db")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	require.NoError(t, st.Migrate(ctx))
	hasher := clients.NewHasher(100)
	secrets := createClients(t, &clients.Manager{Store: st, Hasher: hasher})
	createUsers(t, st)

	logs := &syncbuf.Buffer{}
	httpSrv := httptest.NewUnstartedServer(nil)
	srv, err := server.New(ctx, server.Config{
		Issuer:       "http://" + httpSrv.Listener.Addr().String(),
		Store:        st,
		Hasher:       hasher,
		SystemSecret: testSystemSecret,
		Logger:       slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	require.NoError(t, err)
	httpSrv.Config.Handler = srv
	httpSrv.Start()
	transport := &http.Transport{}
	t.Cleanup(func() {
		httpSrv.Close()
		transport.CloseIdleConnections()
	})
	return &testServer{
		URL: httpSrv.URL, Store: st, secret: testSystemSecret, secrets: secrets, httpSrv: httpSrv,
		http: &http.Client{Transport: transport, Timeout: 15 * time.Second},
	}, logs
}

// TestLogsCarryNoSecrets runs client_credentials, introspection,
// revocation, a failed and a successful sign-in and a code exchange, then
// looks for every secret, token, code and password in the whole log.
func TestLogsCarryNoSecrets(t *testing.T) {
	t.Parallel()
	ts, logs := newLoggedServer(t)
	var used []string
	for _, id := range []string{"basic-client", "post-client", "other-client", "web-client"} {
		used = append(used, ts.secrets[id])
	}

	tok := ts.clientCredentials(t, "basic-client", "read")
	postTok := ts.clientCredentials(t, "post-client", "read")
	used = append(used, tok, postTok)
	require.True(t, ts.active(t, tok))
	r := ts.post(t, "/oauth2/revoke", "form", map[string]string{"token": tok}, ts.as("basic-client"))
	require.Equal(t, http.StatusOK, r.Status, "revoke: %s", r.Body)
	require.False(t, ts.active(t, tok))

	const wrong = "wrong-password-7d1e"
	used = append(used, wrong, "alice-password")
	failed := ts.newBrowser(t).signIn(t, ts.authorizeURL("web-client", nil), "alice", wrong)
	require.Equal(t, http.StatusUnauthorized, failed.Status)
	b := ts.newBrowser(t)
	callback := b.authorize(t, ts.authorizeURL("web-client", nil))
	code := callback.Query().Get("code")
	require.NotEmpty(t, code)
	used = append(used, code)
	ex := ts.post(t, "/oauth2/token", "form", map[string]string{
		"grant_type": "authorization_code", "code": code, "redirect_uri": "http://127.0.0.1:5555/cb",
	}, ts.as("web-client"))
	if ex.Status == http.StatusOK {
		m := ex.json(t)
		for _, k := range []string{"access_token", "refresh_token", "id_token"} {
			if v, _ := m[k].(string); v != "" {
				used = append(used, v)
			}
		}
	}

	log := logs.String()
	require.NotEmpty(t, log)
	for _, secret := range used {
		require.NotEmpty(t, secret)
		for _, form := range []string{secret, url.QueryEscape(secret)} {
			require.NotContains(t, log, form, "the log carries a secret, token, code or password")
		}
		if len(secret) > 16 {
			// No fragment of a long one either.
			require.NotContains(t, log, secret[len(secret)/2-8:len(secret)/2+8])
		}
	}

	// One info line per request, with the fields the issue names.
	var sawClient, sawToken bool
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var e map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &e), "JSON log line: %s", line)
		if e["msg"] != "http" {
			continue
		}
		require.Equal(t, "INFO", e["level"])
		for _, k := range []string{"request_id", "route", "method", "status", "duration"} {
			require.Contains(t, e, k, "line %s", line)
		}
		if e["route"] == "/oauth2/token" {
			sawToken = true
		}
		if e["client_id"] == "basic-client" || e["client_id"] == "post-client" {
			sawClient = true
		}
	}
	require.True(t, sawToken, "the token requests are logged")
	require.True(t, sawClient, "the client id is logged")
}

// TestEveryLogLineOfARequestCarriesItsID: the handler's own lines (here
// the refused token request, at debug level) carry the same request_id as
// the access line, the one the client sent in X-Request-Id.
func TestEveryLogLineOfARequestCarriesItsID(t *testing.T) {
	t.Parallel()
	ts, logs := newLoggedServer(t)
	req, err := http.NewRequest(http.MethodPost, ts.URL+"/oauth2/token", strings.NewReader("grant_type=no-such-grant"))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Request-Id", "trace-me-42")
	req.SetBasicAuth("basic-client", ts.secrets["basic-client"])
	resp, err := ts.http.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)

	var msgs []string
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var e map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &e), "JSON log line: %s", line)
		if e["request_id"] == "trace-me-42" {
			msgs = append(msgs, e["msg"].(string))
		}
	}
	require.Contains(t, msgs, "request refused", "the handler's line carries the request id")
	require.Contains(t, msgs, "http", "the access line carries it too")
}
