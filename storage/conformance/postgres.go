package conformance

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/stretchr/testify/require"
)

// PostgresSchema creates a schema of its own in the PostgreSQL database
// of dsn (LATCH_TEST_POSTGRES_DSN), drops it when t ends, and returns dsn
// with search_path set to it, so every test starts on an empty database.
func PostgresSchema(t *testing.T, dsn string) string {
	t.Helper()
	admin, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, admin.PingContext(ctx), "connect to LATCH_TEST_POSTGRES_DSN")
	raw := make([]byte, 8)
	_, _ = rand.Read(raw)
	schema := "latch_" + hex.EncodeToString(raw)
	_, err = admin.ExecContext(ctx, "CREATE SCHEMA "+schema)
	require.NoError(t, err, "CREATE SCHEMA")
	// Registered before the store's Close, so it runs after it.
	t.Cleanup(func() {
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("DROP SCHEMA %s: %v", schema, err)
		}
		_ = admin.Close()
	})
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
