package storage_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/storage"
)

// The store's hot paths, each measured in three settings:
//
//	file           a SQLite file in WAL mode with synchronous=FULL, as in
//	               production: every commit waits for an fsync
//	file-parallel  the same with ~32 goroutines, the realistic load: writers
//	               queue for the one write connection, readers share the
//	               read pool
//	memory         ":memory:": no I/O, so what is left is GORM, the driver
//	               and the JSON of the client and the session
//
// Run with: go test -run '^$' -bench . -benchmem ./storage/

// benchGoroutines is how many goroutines the parallel settings run.
const benchGoroutines = 32

type benchSetting struct {
	name     string
	memory   bool
	parallel bool
}

var benchSettings = []benchSetting{
	{name: "file"},
	{name: "file-parallel", parallel: true},
	{name: "memory", memory: true},
}

// benchFixture is a migrated store holding one client.
type benchFixture struct {
	ctx    context.Context
	store  *storage.GormStore
	client *clients.Client
}

// benchOp is one iteration; i is unique among all goroutines and below b.N,
// so it can pick a token prepared for that iteration alone.
type benchOp func(i int) error

// runStoreBench runs the benchmark in every setting. prepare runs outside
// the timer with a fresh store and may create b.N rows for op to use. The
// loop counts b.N itself instead of using b.Loop: prepare needs b.N.
func runStoreBench(b *testing.B, prepare func(b *testing.B, f *benchFixture) benchOp) {
	for _, set := range benchSettings {
		b.Run(set.name, func(b *testing.B) {
			f := openBenchFixture(b, set.memory)
			op := prepare(b, f)
			b.ReportAllocs()
			if !set.parallel {
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := op(i); err != nil {
						b.Fatalf("iteration %d: %v", i, err)
					}
				}
				return
			}
			b.SetParallelism(max(1, benchGoroutines/runtime.GOMAXPROCS(0)))
			var next atomic.Int64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := int(next.Add(1) - 1)
					if err := op(i); err != nil {
						b.Errorf("iteration %d: %v", i, err)
						return
					}
				}
			})
		})
	}
}

func openBenchFixture(b *testing.B, memory bool) *benchFixture {
	b.Helper()
	dsn := ":memory:"
	if !memory {
		dsn = filepath.Join(b.TempDir(), "latch.db")
	}
	// Not b.Context(): it is cancelled before the cleanups run.
	ctx := context.Background()
	s, err := storage.Open(ctx, storage.Options{Driver: "sqlite", DSN: dsn})
	if err != nil {
		b.Fatalf("Open: %v", err)
	}
	b.Cleanup(func() {
		if err := s.Close(); err != nil {
			b.Errorf("Close: %v", err)
		}
	})
	if err := s.Migrate(ctx); err != nil {
		b.Fatalf("Migrate: %v", err)
	}
	c := benchClient()
	if err := s.CreateClient(ctx, c); err != nil {
		b.Fatalf("CreateClient: %v", err)
	}
	return &benchFixture{ctx: ctx, store: s, client: c}
}

// benchClient is a client of the size a real one has, since every token
// lookup loads and decodes it again (storage/requests.go toRequest).
func benchClient() *clients.Client {
	return &clients.Client{
		ID:                      "bench-client",
		Name:                    "Bench Client",
		SecretHash:              clients.HashGenerated("bench-secret"),
		RedirectURIs:            []string{"https://app.example.com/callback", "http://127.0.0.1:5555/cb"},
		PostLogoutRedirectURIs:  []string{"https://app.example.com/bye"},
		GrantTypes:              []string{clients.GrantAuthorizationCode, clients.GrantRefreshToken, "client_credentials"},
		ResponseTypes:           []string{"code"},
		Scopes:                  []string{"openid", "profile", "offline_access", "read", "write"},
		Audience:                []string{"https://api.example.com"},
		TokenEndpointAuthMethod: clients.AuthMethodBasic,
	}
}

// benchRequest is a token grant's request as fosite hands it to the store
// (as storage/conformance builds it): scopes, audience, a form and an
// OpenID Connect session with claims.
func benchRequest(c fosite.Client, requestID string) *fosite.Request {
	exp := time.Now().UTC().Add(time.Hour).Round(time.Second)
	sess := openid.NewDefaultSession()
	sess.Subject = "alice"
	sess.Username = "alice-name"
	sess.Claims.Subject = "alice"
	sess.Claims.Issuer = "https://latch.example.com"
	for _, tt := range []fosite.TokenType{fosite.AccessToken, fosite.RefreshToken} {
		sess.SetExpiresAt(tt, exp)
	}
	return &fosite.Request{
		ID:                requestID,
		RequestedAt:       time.Now().UTC().Add(-time.Minute),
		Client:            c,
		RequestedScope:    fosite.Arguments{"openid", "profile", "offline_access"},
		GrantedScope:      fosite.Arguments{"openid", "offline_access"},
		RequestedAudience: fosite.Arguments{"https://api.example.com"},
		GrantedAudience:   fosite.Arguments{"https://api.example.com"},
		Form:              url.Values{"grant_type": {"authorization_code"}, "redirect_uri": {"https://app.example.com/callback"}},
		Session:           sess,
	}
}

// signatures are n distinct keys as long as fosite's HMAC signatures
// (43 characters), made before the timer starts.
func signatures(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%040d", prefix, i)
	}
	return out
}

// seed runs create for 0..n-1 in one transaction: one fsync instead of n.
func seed(b *testing.B, f *benchFixture, n int, create func(ctx context.Context, i int) error) {
	b.Helper()
	ctx, err := f.store.BeginTX(f.ctx)
	if err != nil {
		b.Fatalf("BeginTX: %v", err)
	}
	for i := range n {
		if err := create(ctx, i); err != nil {
			_ = f.store.Rollback(ctx)
			b.Fatalf("seed %d: %v", i, err)
		}
	}
	if err := f.store.Commit(ctx); err != nil {
		b.Fatalf("Commit: %v", err)
	}
}

// seedGrants stores n grants, each an access and a refresh token under
// request ID requestIDs[i].
func seedGrants(b *testing.B, f *benchFixture, n int) (requestIDs, access, refresh []string) {
	b.Helper()
	requestIDs, access, refresh = signatures("req", n), signatures("at", n), signatures("rt", n)
	seed(b, f, n, func(ctx context.Context, i int) error {
		req := benchRequest(f.client, requestIDs[i])
		if err := f.store.CreateAccessTokenSession(ctx, access[i], req); err != nil {
			return err
		}
		return f.store.CreateRefreshTokenSession(ctx, refresh[i], access[i], req)
	})
	return requestIDs, access, refresh
}

func BenchmarkStoreGetClient(b *testing.B) {
	runStoreBench(b, func(b *testing.B, f *benchFixture) benchOp {
		return func(int) error {
			_, err := f.store.GetClient(f.ctx, f.client.ID)
			return err
		}
	})
}

func BenchmarkStoreCreateAccessToken(b *testing.B) {
	runStoreBench(b, func(b *testing.B, f *benchFixture) benchOp {
		req, sigs := benchRequest(f.client, "req"), signatures("at", b.N)
		return func(i int) error {
			return f.store.CreateAccessTokenSession(f.ctx, sigs[i], req)
		}
	})
}

// BenchmarkStoreGetAccessToken reads one stored token (a hit): the row,
// the client it names and the session's JSON.
func BenchmarkStoreGetAccessToken(b *testing.B) {
	runStoreBench(b, func(b *testing.B, f *benchFixture) benchOp {
		_, access, _ := seedGrants(b, f, 1)
		return func(int) error {
			_, err := f.store.GetAccessTokenSession(f.ctx, access[0], openid.NewDefaultSession())
			return err
		}
	})
}

// BenchmarkStoreRevokeAccessToken deletes the access tokens of a fresh
// grant each iteration.
func BenchmarkStoreRevokeAccessToken(b *testing.B) {
	runStoreBench(b, func(b *testing.B, f *benchFixture) benchOp {
		requestIDs, _, _ := seedGrants(b, f, b.N)
		return func(i int) error {
			return f.store.RevokeAccessToken(f.ctx, requestIDs[i])
		}
	})
}

// BenchmarkStoreRefresh is what fosite's refresh grant asks of the store
// (handler/oauth2/flow_refresh.go): the old refresh token is read, then in
// one transaction rotated and replaced by a new access and refresh token.
// Each iteration refreshes a fresh grant.
func BenchmarkStoreRefresh(b *testing.B) {
	runStoreBench(b, func(b *testing.B, f *benchFixture) benchOp {
		requestIDs, _, refresh := seedGrants(b, f, b.N)
		newAccess, newRefresh := signatures("at2", b.N), signatures("rt2", b.N)
		return func(i int) (err error) {
			req, err := f.store.GetRefreshTokenSession(f.ctx, refresh[i], openid.NewDefaultSession())
			if err != nil {
				return err
			}
			ctx, err := f.store.BeginTX(f.ctx)
			if err != nil {
				return err
			}
			defer func() {
				if err != nil {
					// An open transaction would hold the write connection
					// every other goroutine waits for.
					_ = f.store.Rollback(ctx)
				}
			}()
			if err := f.store.RotateRefreshToken(ctx, requestIDs[i], refresh[i]); err != nil {
				return err
			}
			if err := f.store.CreateAccessTokenSession(ctx, newAccess[i], req); err != nil {
				return err
			}
			if err := f.store.CreateRefreshTokenSession(ctx, newRefresh[i], newAccess[i], req); err != nil {
				return err
			}
			return f.store.Commit(ctx)
		}
	})
}

// BenchmarkStoreIntrospect is what introspecting an active access token
// reads (server/introspect.go): the calling client, then the token, which
// loads the client it names again.
func BenchmarkStoreIntrospect(b *testing.B) {
	runStoreBench(b, func(b *testing.B, f *benchFixture) benchOp {
		_, access, _ := seedGrants(b, f, 1)
		return func(int) error {
			if _, err := f.store.GetClient(f.ctx, f.client.ID); err != nil {
				return err
			}
			_, err := f.store.GetAccessTokenSession(f.ctx, access[0], openid.NewDefaultSession())
			return err
		}
	})
}

// BenchmarkStoreIntrospectUnknown is introspecting a token the store does
// not know, without a hint: fosite looks for an access token, then for a
// refresh token, and both miss.
func BenchmarkStoreIntrospectUnknown(b *testing.B) {
	runStoreBench(b, func(b *testing.B, f *benchFixture) benchOp {
		seedGrants(b, f, 1)
		return func(int) error {
			if _, err := f.store.GetClient(f.ctx, f.client.ID); err != nil {
				return err
			}
			_, err := f.store.GetAccessTokenSession(f.ctx, "unknown", openid.NewDefaultSession())
			if !errors.Is(err, fosite.ErrNotFound) {
				return fmt.Errorf("access token lookup: want ErrNotFound, got %v", err)
			}
			_, err = f.store.GetRefreshTokenSession(f.ctx, "unknown", openid.NewDefaultSession())
			if !errors.Is(err, fosite.ErrNotFound) {
				return fmt.Errorf("refresh token lookup: want ErrNotFound, got %v", err)
			}
			return nil
		}
	})
}
