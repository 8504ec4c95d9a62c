package server_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/server"
	"github.com/latchauth/latch/storage"
)

// The busiest endpoints, measured through the server's
// http.Handler with httptest.NewRecorder: no network and no OpenAPI check
// of the answers (the harness's transport does that), but every middleware,
// fosite, the client secret check and a SQLite file with synchronous=FULL,
// as in production. Each iteration checks its answer, so an error cannot
// pass for a fast request.
//
// Run with: go test -run '^$' -bench . -benchmem ./server/

// benchServer is a Server on a SQLite file with one confidential client.
type benchServer struct {
	srv    *server.Server
	id     string
	secret string // generated, so stored as sha256$ (clients/hash.go)
}

func newBenchServer(b *testing.B) *benchServer {
	b.Helper()
	// Not b.Context(): it is cancelled before the cleanups run.
	ctx := context.Background()
	st, err := storage.Open(ctx, storage.Options{Driver: "sqlite", DSN: filepath.Join(b.TempDir(), "latch.db")})
	if err != nil {
		b.Fatalf("open store: %v", err)
	}
	b.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		b.Fatalf("migrate: %v", err)
	}
	// The size Boot gives the verified-secret cache.
	hasher := clients.NewHasher(10000)
	c := &clients.Client{ID: "bench-client", TokenEndpointAuthMethod: clients.AuthMethodBasic,
		GrantTypes: []string{"client_credentials", "refresh_token"}, Scopes: []string{"read", "write", "offline_access"}}
	secret, err := (&clients.Manager{Store: st, Hasher: hasher}).Create(ctx, c, "")
	if err != nil {
		b.Fatalf("create client: %v", err)
	}
	srv, err := server.New(ctx, server.Config{
		Issuer:       "http://latch.test",
		Store:        st,
		Hasher:       hasher,
		SystemSecret: testSystemSecret,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatalf("server.New: %v", err)
	}
	return &benchServer{srv: srv, id: c.ID, secret: secret}
}

// post serves a form POST to path, authenticated with client_secret_basic,
// and fails b unless the answer has status want and contains mustContain.
func (bs *benchServer) post(b *testing.B, path string, form url.Values, want int, mustContain string) {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(bs.id), url.QueryEscape(bs.secret))
	rec := httptest.NewRecorder()
	bs.srv.ServeHTTP(rec, req)
	if rec.Code != want || !bytes.Contains(rec.Body.Bytes(), []byte(mustContain)) {
		// Errorf, not Fatalf: post also runs on RunParallel's goroutines.
		b.Errorf("POST %s: want %d with %q, got %d: %s", path, want, mustContain, rec.Code, rec.Body.Bytes())
	}
}

// issue mints n access tokens (with refresh tokens when refresh is set)
// the way the token endpoint would, outside the timer.
func (bs *benchServer) issue(b *testing.B, n int, refresh bool) []*server.IssuedTokens {
	b.Helper()
	out := make([]*server.IssuedTokens, n)
	for i := range out {
		tok, err := bs.srv.IssueTokens(context.Background(), server.TokenRequest{ClientID: bs.id, Scopes: []string{"read"}, Refresh: refresh})
		if err != nil {
			b.Fatalf("IssueTokens: %v", err)
		}
		out[i] = tok
	}
	return out
}

func BenchmarkTokenClientCredentials(b *testing.B) {
	bs := newBenchServer(b)
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"read write"}}
	b.ReportAllocs()
	for b.Loop() {
		bs.post(b, "/oauth2/token", form, http.StatusOK, `"access_token"`)
		if b.Failed() {
			b.FailNow()
		}
	}
}

// BenchmarkTokenClientCredentialsParallel is the same with ~32 concurrent
// clients, whose writes queue for SQLite's one write connection.
func BenchmarkTokenClientCredentialsParallel(b *testing.B) {
	bs := newBenchServer(b)
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"read write"}}
	b.ReportAllocs()
	b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() && !b.Failed() {
			bs.post(b, "/oauth2/token", form, http.StatusOK, `"access_token"`)
		}
	})
}

// BenchmarkIntrospect introspects one active access token, the caller
// authenticated with client_secret_basic.
func BenchmarkIntrospect(b *testing.B) {
	bs := newBenchServer(b)
	form := url.Values{"token": {bs.issue(b, 1, false)[0].AccessToken}, "token_type_hint": {"access_token"}}
	b.ReportAllocs()
	for b.Loop() {
		bs.post(b, "/oauth2/introspect", form, http.StatusOK, `"active":true`)
		if b.Failed() {
			b.FailNow()
		}
	}
}

// BenchmarkRevoke revokes a fresh grant each iteration, by its access
// token or by its refresh token. The loop counts b.N itself instead of
// using b.Loop, since the b.N tokens are minted before the timer starts.
func BenchmarkRevoke(b *testing.B) {
	for _, kind := range []string{"access_token", "refresh_token"} {
		b.Run(kind, func(b *testing.B) {
			bs := newBenchServer(b)
			issued := bs.issue(b, b.N, kind == "refresh_token")
			forms := make([]url.Values, b.N)
			for i, tok := range issued {
				token := tok.AccessToken
				if kind == "refresh_token" {
					token = tok.RefreshToken
				}
				forms[i] = url.Values{"token": {token}, "token_type_hint": {kind}}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				bs.post(b, "/oauth2/revoke", forms[i], http.StatusOK, "")
				if b.Failed() {
					b.FailNow()
				}
			}
			b.StopTimer()
			// Revocation answers 200 to an unknown token too: check that
			// the grants really ended.
			for _, i := range []int{0, b.N - 1} {
				bs.post(b, "/oauth2/introspect", url.Values{"token": {issued[i].AccessToken}}, http.StatusOK, `"active":false`)
			}
		})
	}
}
