package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/storage"
)

// newFuzzServer is a real Server on an in-memory SQLite store with one
// client_secret_basic client, "fuzz-client" / its returned secret.
func newFuzzServer(f *testing.F) (*Server, string) {
	f.Helper()
	ctx := context.Background()
	st, err := storage.Open(ctx, storage.Options{Driver: "sqlite", DSN: ":memory:"})
	if err != nil {
		f.Fatalf("open store: %v", err)
	}
	f.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		f.Fatalf("migrate: %v", err)
	}
	hasher := clients.NewHasher(100)
	secret, err := (&clients.Manager{Store: st, Hasher: hasher}).Create(ctx, &clients.Client{
		ID: "fuzz-client", TokenEndpointAuthMethod: clients.AuthMethodBasic,
		GrantTypes: []string{"client_credentials"}, Scopes: []string{"read"},
	}, "")
	if err != nil {
		f.Fatalf("create client: %v", err)
	}
	srv, err := New(ctx, Config{
		Issuer: "http://127.0.0.1:1", Store: st, Hasher: hasher,
		SystemSecret: []byte("latch-fuzz-system-secret-0123456789abcdef"),
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		f.Fatalf("server.New: %v", err)
	}
	return srv, secret
}

// FuzzRevokeRequest sends arbitrary form and JSON bodies, with arbitrary
// Authorization headers, to the real POST /oauth2/revoke handler. It must
// never panic and must answer 200, 400, 401 or 503, an error always as an
// RFC 6749 JSON object.
func FuzzRevokeRequest(f *testing.F) {
	srv, secret := newFuzzServer(f)
	const form, js = "application/x-www-form-urlencoded", "application/json"
	f.Add(form, "token=abc&client_id=fuzz-client&client_secret="+secret, "")
	f.Add(form, "token=abc&token_type_hint=refresh_token", "Basic ZnV6ei1jbGllbnQ6eA==")
	f.Add(form, "token=%zz", "")
	f.Add(form, "", "")
	f.Add(js, `{"token":"abc","client_id":"fuzz-client"}`, "")
	f.Add(js, `{"token":1}`, "")
	f.Add(js, `{"token":"a"} {}`, "")
	f.Add("application/json; charset=utf-8", `{"token":"a","token_type_hint":"access_token"}`, "Bearer x")
	f.Add("text/plain", "token=a", "Basic !!!")
	f.Fuzz(func(t *testing.T, contentType, body, authz string) {
		req := httptest.NewRequest(http.MethodPost, "/oauth2/revoke", strings.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			return
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusServiceUnavailable:
		default:
			t.Fatalf("status %d for %q %q %q: %s", rec.Code, contentType, body, authz, rec.Body)
		}
		var e struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
			t.Fatalf("status %d answer is not an OAuth error object (%v): %s", rec.Code, err, rec.Body)
		}
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("status %d with Content-Type %q", rec.Code, ct)
		}
	})
}
