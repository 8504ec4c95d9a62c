package storage_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/storage"
	"github.com/latchauth/latch/storage/conformance"
)

// TestPostgres runs the conformance suite on PostgreSQL when
// LATCH_TEST_POSTGRES_DSN names a database, for example
// "host=127.0.0.1 port=5432 user=postgres dbname=test sslmode=disable".
// Every subtest gets a schema of its own, dropped when it ends.
func TestPostgres(t *testing.T) {
	dsn := os.Getenv("LATCH_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("LATCH_TEST_POSTGRES_DSN is not set")
	}
	admin, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = admin.Close() })
	require.NoError(t, admin.PingContext(context.Background()), "connect to LATCH_TEST_POSTGRES_DSN")

	newStore := func(t *testing.T, grace time.Duration) storage.Store {
		return openMigrated(t, storage.Options{Driver: "postgres", DSN: newSchema(t, admin, dsn), RefreshTokenGracePeriod: grace})
	}
	conformance.Run(t, func(t *testing.T) storage.Store { return newStore(t, 0) })
	conformance.RunRefreshGrace(t, newStore)
}

// newSchema creates a schema of its own for t, dropped when t ends, and
// returns dsn with it as the search path.
func newSchema(t *testing.T, admin *sql.DB, dsn string) string {
	schema := "latch_" + randomHex(t, 8)
	ctx := context.Background()
	_, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema)
	require.NoError(t, err, "CREATE SCHEMA")
	// Registered before the store's Close, so it runs after it.
	t.Cleanup(func() {
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("DROP SCHEMA %s: %v", schema, err)
		}
	})
	return withSearchPath(t, dsn, schema)
}

// withSearchPath adds search_path to a keyword/value or a URL DSN.
func withSearchPath(t *testing.T, dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		require.NoError(t, err, "LATCH_TEST_POSTGRES_DSN")
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " search_path=" + schema
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}
