package storage_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/storage"
	"github.com/latchauth/latch/storage/conformance"
)

func TestSQLiteFile(t *testing.T) {
	conformance.Run(t, func(t *testing.T) storage.Store {
		return openMigrated(t, storage.Options{Driver: "sqlite", DSN: filepath.Join(t.TempDir(), "latch.db")})
	})
}

func TestSQLiteRefreshGrace(t *testing.T) {
	conformance.RunRefreshGrace(t, func(t *testing.T, grace time.Duration) storage.Store {
		return openMigrated(t, storage.Options{Driver: "sqlite", DSN: filepath.Join(t.TempDir(), "latch.db"), RefreshTokenGracePeriod: grace})
	})
}

func TestSQLiteMemory(t *testing.T) {
	conformance.Run(t, func(t *testing.T) storage.Store {
		return openMigrated(t, storage.Options{Driver: "sqlite", DSN: ":memory:"})
	})
}

// TestSQLiteFileReopen: what a SQLite file holds survives a restart, and
// migrating an up-to-date database again changes nothing.
func TestSQLiteFileReopen(t *testing.T) {
	o := storage.Options{Driver: "sqlite", DSN: filepath.Join(t.TempDir(), "latch.db")}
	ctx := context.Background()

	s, err := storage.Open(ctx, o)
	require.NoError(t, err)
	require.NoError(t, s.Migrate(ctx))
	require.NoError(t, s.Migrate(ctx), "Migrate is idempotent")
	c := &clients.Client{ID: "app", Name: "App", SecretHash: "h", CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC()}
	require.NoError(t, s.CreateClient(ctx, c))
	sess := openid.NewDefaultSession()
	sess.Subject = "alice"
	sess.SetExpiresAt(fosite.AccessToken, time.Now().UTC().Add(time.Hour).Round(time.Second))
	req := &fosite.Request{ID: "req-1", RequestedAt: time.Now().UTC(), Client: c, Session: sess}
	require.NoError(t, s.CreateAccessTokenSession(ctx, "at-1", req))
	require.NoError(t, s.Close())

	s, err = storage.Open(ctx, o)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	require.NoError(t, s.Migrate(ctx), "Migrate of a migrated database")
	got, err := s.GetAccessTokenSession(ctx, "at-1", openid.NewDefaultSession())
	require.NoError(t, err, "an access token survives a restart")
	require.Equal(t, "alice", got.GetSession().GetSubject())
}

// openMigrated opens a store, migrates it and closes it when t ends.
func openMigrated(t *testing.T, o storage.Options) *storage.GormStore {
	t.Helper()
	// Not t.Context(): it is cancelled before the cleanups run.
	ctx := context.Background()
	s, err := storage.Open(ctx, o)
	require.NoError(t, err, "Open")
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	require.NoError(t, s.Migrate(ctx), "Migrate")
	return s
}
