package storage

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/latchauth/latch/clients"
)

// failSyncs makes every WAL fsync of st fail from now on, as a full or
// failing disk would.
func failSyncs(st *GormStore) {
	st.wal.sync = func() error { return errors.New("input/output error") }
}

// TestMigrateWaitsForTheDisk: the migrations' commit is acknowledged only
// once the WAL holding it is on disk, like every other write.
func TestMigrateWaitsForTheDisk(t *testing.T) {
	st, err := Open(t.Context(), Options{Driver: "sqlite", DSN: filepath.Join(t.TempDir(), "m.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	failSyncs(st)
	if err := st.Migrate(t.Context()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Migrate with a failing disk = %v, want ErrUnavailable", err)
	}
}

// TestEveryWriteWaitsForTheDisk: each way of writing (s.tx on its own, a
// blind write batched or held in a unit, BeginTX/Commit) answers only
// after an fsync of its commit, so a failing fsync fails the write
// instead of acknowledging what a power cut could take back.
func TestEveryWriteWaitsForTheDisk(t *testing.T) {
	st := openTestFile(t)
	ctx := t.Context()
	grant(t, st, "d1")
	grant(t, st, "d2")
	if err := st.CreateUser(ctx, &User{Username: "alice", PasswordHash: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveConsent(ctx, "alice", "c-d1", []string{"openid"}); err != nil {
		t.Fatal(err)
	}
	client := &clients.Client{ID: "c-new", GrantTypes: []string{"client_credentials"}, SecretHash: clients.HashGenerated("x")}
	sess := openid.NewDefaultSession()
	sess.SetExpiresAt(fosite.AccessToken, time.Now().Add(time.Hour))
	token := &fosite.Request{ID: "d3", Client: client, Session: sess, RequestedAt: time.Now()}
	jwks := []byte(`{"keys":[]}`)

	failSyncs(st)
	writes := []struct {
		name  string
		write func(ctx context.Context) error
	}{
		{"CreateClient (blind, batched)", func(ctx context.Context) error { return st.CreateClient(ctx, client) }},
		{"UpdateClient (tx)", func(ctx context.Context) error { return st.UpdateClient(ctx, client) }},
		{"UpsertClient (tx)", func(ctx context.Context) error { return st.UpsertClient(ctx, client) }},
		{"CreateAccessTokenSession (blind, batched)", func(ctx context.Context) error {
			return st.CreateAccessTokenSession(ctx, "at-d3", token)
		}},
		{"RevokeAccessToken in a unit", func(ctx context.Context) error {
			ctx, finish := st.Unit(ctx)
			return finish(st.RevokeAccessToken(ctx, "d3"))
		}},
		{"RotateRefreshToken (tx)", func(ctx context.Context) error { return st.RotateRefreshToken(ctx, "d1", "rt-d1") }},
		{"RevokeClientTokens (tx)", func(ctx context.Context) error {
			_, err := st.RevokeClientTokens(ctx, "c-d2")
			return err
		}},
		{"ExpireNow (tx)", func(ctx context.Context) error { return st.ExpireNow(ctx, "rt-d2") }},
		{"BeginTX and Commit", func(ctx context.Context) error {
			txCtx, err := st.BeginTX(ctx)
			if err != nil {
				return err
			}
			if err := st.DeleteAccessTokenSession(txCtx, "at-d1"); err != nil {
				return errors.Join(err, st.Rollback(txCtx))
			}
			return st.Commit(txCtx)
		}},
		{"UpsertUser (tx)", func(ctx context.Context) error { return st.UpsertUser(ctx, &User{Username: "bob", PasswordHash: "x"}) }},
		{"CreateLoginSession (blind)", func(ctx context.Context) error {
			return st.CreateLoginSession(ctx, &LoginSession{ID: "s1", Username: "alice", AuthTime: time.Now(), ExpiresAt: time.Now().Add(time.Hour)})
		}},
		{"DeleteLoginSession (blind)", func(ctx context.Context) error { return st.DeleteLoginSession(ctx, "s1") }},
		{"DeleteConsent (tx, conditional)", func(ctx context.Context) error { return st.DeleteConsent(ctx, "alice", "c-d1") }},
		{"DeleteConsents (blind)", func(ctx context.Context) error { return st.DeleteConsents(ctx, "alice") }},
		{"CreateSigningKey (blind)", func(ctx context.Context) error {
			return st.CreateSigningKey(ctx, &SigningKey{KID: "k1", Algorithm: "RS256", PrivateJWK: []byte("{}")})
		}},
		{"RetireSigningKeys (blind)", func(ctx context.Context) error {
			return st.RetireSigningKeys(ctx, time.Now(), time.Now().Add(time.Hour))
		}},
		{"SystemSecret (tx)", func(ctx context.Context) error {
			_, err := st.SystemSecret(ctx, []byte("0123456789abcdef0123456789abcdef"))
			return err
		}},
		{"UpsertTrustedIssuer (blind)", func(ctx context.Context) error {
			return st.UpsertTrustedIssuer(ctx, TrustedIssuer{Issuer: "https://idp.example", AllowAnySubject: true, JWKS: jwks})
		}},
		{"SetClientAssertionJWT (tx)", func(ctx context.Context) error {
			return st.SetClientAssertionJWT(ctx, "jti-1", time.Now().Add(time.Minute))
		}},
		{"DeleteExpired (tx per batch)", func(ctx context.Context) error {
			_, err := st.DeleteExpired(ctx, time.Now())
			return err
		}},
		{"DeleteUser (tx, nested revocation)", func(ctx context.Context) error { return st.DeleteUser(ctx, "alice") }},
		{"DeleteClient (tx, conditional)", func(ctx context.Context) error { return st.DeleteClient(ctx, "c-d1") }},
	}
	for _, w := range writes {
		if err := w.write(ctx); !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s with a failing disk = %v, want ErrUnavailable", w.name, err)
		}
	}
}
