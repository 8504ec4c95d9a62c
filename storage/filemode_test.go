package storage_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/storage"
)

func requireMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equalf(t, want, fi.Mode().Perm(), "mode of %s", filepath.Base(path))
}

// writeSomething makes SQLite create the -wal and -shm files.
func writeSomething(t *testing.T, s *storage.GormStore, clientID string) {
	t.Helper()
	now := time.Now().UTC()
	require.NoError(t, s.CreateClient(context.Background(), &clients.Client{ID: clientID, Name: "App", SecretHash: "h", CreatedAt: now, UpdatedAt: now}))
}

func TestSQLiteDatabaseWALAndSHMCreatedOwnerOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latch.db")
	s := openMigrated(t, storage.Options{Driver: "sqlite", DSN: path})
	writeSomething(t, s, "app")
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		requireMode(t, p, 0o600)
	}
}

func TestSQLiteWorldReadableDatabaseRestricted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latch.db")
	s := openMigrated(t, storage.Options{Driver: "sqlite", DSN: path})
	writeSomething(t, s, "app")
	require.NoError(t, s.Close())
	// As an older Latch left it.
	require.NoError(t, os.Chmod(path, 0o644))

	s = openMigrated(t, storage.Options{Driver: "sqlite", DSN: path})
	_, err := s.GetClient(context.Background(), "app")
	require.NoError(t, err, "the database survived")
	writeSomething(t, s, "app2")
	requireMode(t, path, 0o600)
	requireMode(t, path+"-wal", 0o600)
}

func TestBackupFileOwnerOnly(t *testing.T) {
	dir := t.TempDir()
	s := openMigrated(t, storage.Options{Driver: "sqlite", DSN: filepath.Join(dir, "latch.db")})
	writeSomething(t, s, "app")
	backup := filepath.Join(dir, "copy.db")
	require.NoError(t, s.Backup(context.Background(), backup))
	requireMode(t, backup, 0o600)

	copied := openMigrated(t, storage.Options{Driver: "sqlite", DSN: backup})
	_, err := copied.GetClient(context.Background(), "app")
	require.NoError(t, err, "the backup holds the database")

	require.ErrorContains(t, s.Backup(context.Background(), backup), "already exists")
}
