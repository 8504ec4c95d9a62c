package storage

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
)

// TestHotWritesArePreparedOnceAndWorkOnEveryWritePath: after Migrate a
// SQLite store holds a statement for every hot write, and a token stored
// and revoked through each write path (batched, in a unit, inside
// BeginTX) reads back as it should, on a file and in memory; a closed
// store answers ErrUnavailable rather than running a closed statement.
func TestHotWritesArePreparedOnceAndWorkOnEveryWritePath(t *testing.T) {
	memory, err := Open(t.Context(), Options{Driver: "sqlite", DSN: ":memory:"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = memory.Close() })
	if err := memory.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]*GormStore{"file": openTestFile(t), "memory": memory} {
		t.Run(name, func(t *testing.T) {
			p := st.prepared.Load()
			if p == nil || len(p.stmts) != len(hotWrites()) {
				t.Fatalf("after Migrate: prepared %v, want every one of %d hot writes", p, len(hotWrites()))
			}
			grant(t, st, "p1") // batched (file) or autocommitted (memory)
			grant(t, st, "p2")
			ctx := t.Context()
			req, err := st.GetAccessTokenSession(ctx, "at-p1", openid.NewDefaultSession())
			if err != nil {
				t.Fatal(err)
			}
			txCtx, err := st.BeginTX(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.CreateAccessTokenSession(txCtx, "at-p1-tx", req); err != nil {
				t.Fatal(errors.Join(err, st.Rollback(txCtx)))
			}
			if err := st.Commit(txCtx); err != nil {
				t.Fatal(err)
			}
			if _, err := st.GetAccessTokenSession(ctx, "at-p1-tx", openid.NewDefaultSession()); err != nil {
				t.Fatalf("token stored inside BeginTX: %v", err)
			}
			uctx, finish := st.Unit(ctx)
			err = finish(errors.Join(st.RevokeRefreshToken(uctx, "p2"), st.RevokeAccessToken(uctx, "p2")))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.GetAccessTokenSession(ctx, "at-p2", openid.NewDefaultSession()); !errors.Is(err, fosite.ErrNotFound) {
				t.Fatalf("revoked access token: %v, want ErrNotFound", err)
			}
			if _, err := st.GetRefreshTokenSession(ctx, "rt-p2", openid.NewDefaultSession()); !errors.Is(err, fosite.ErrInactiveToken) {
				t.Fatalf("revoked refresh token: %v, want ErrInactiveToken", err)
			}
			if err := st.CreateAccessTokenSession(ctx, "at-p1", req); !errors.Is(err, ErrAlreadyExists) {
				t.Fatalf("a signature stored twice: %v, want ErrAlreadyExists", err)
			}

			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := st.CreateAccessTokenSession(ctx, "at-closed", req); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("write to a closed store: %v, want ErrUnavailable", err)
			}
			if _, err := st.GetAccessTokenSession(ctx, "at-p1", openid.NewDefaultSession()); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("read of a closed store: %v, want ErrUnavailable", err)
			}
		})
	}
}
