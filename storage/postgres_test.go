package storage_test

import (
	"os"
	"testing"
	"time"

	"github.com/latchauth/latch/internal/skipnote"
	"github.com/latchauth/latch/storage"
	"github.com/latchauth/latch/storage/conformance"
)

// TestMain says, once, when the PostgreSQL half of the suite will skip.
func TestMain(m *testing.M) {
	if os.Getenv("LATCH_TEST_POSTGRES_DSN") == "" {
		skipnote.Print("storage", "TestPostgres skips: LATCH_TEST_POSTGRES_DSN is not set "+
			"(e.g. \"host=127.0.0.1 port=5432 user=postgres dbname=test sslmode=disable\")")
	}
	os.Exit(m.Run())
}

// TestPostgres runs the conformance suite on PostgreSQL when
// LATCH_TEST_POSTGRES_DSN names a database, for example
// "host=127.0.0.1 port=5432 user=postgres dbname=test sslmode=disable".
// Every subtest gets a schema of its own, dropped when it ends.
func TestPostgres(t *testing.T) {
	dsn := os.Getenv("LATCH_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("LATCH_TEST_POSTGRES_DSN is not set")
	}
	newStore := func(t *testing.T, grace time.Duration) storage.Store {
		return openMigrated(t, storage.Options{Driver: "postgres", DSN: conformance.PostgresSchema(t, dsn), RefreshTokenGracePeriod: grace})
	}
	conformance.Run(t, func(t *testing.T) storage.Store { return newStore(t, 0) })
	conformance.RunRefreshGrace(t, newStore)
}
