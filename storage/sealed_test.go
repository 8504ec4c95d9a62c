package storage_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/secrets"
	"github.com/latchauth/latch/storage"
	"github.com/latchauth/latch/storage/conformance"
)

// A database that can be opened several times, as a restart does, and read
// raw, as a thief with a copy of it does.
type database struct {
	driver, dsn string
	raw         *sql.DB
}

// databases are a SQLite file and, when LATCH_TEST_POSTGRES_DSN is set, a
// fresh PostgreSQL schema.
func databases(t *testing.T) map[string]func(t *testing.T) database {
	out := map[string]func(t *testing.T) database{
		"sqlite": func(t *testing.T) database {
			path := filepath.Join(t.TempDir(), "latch.db")
			return database{driver: "sqlite", dsn: path, raw: rawDB(t, "sqlite3", path)}
		},
	}
	if dsn := os.Getenv("LATCH_TEST_POSTGRES_DSN"); dsn != "" {
		out["postgres"] = func(t *testing.T) database {
			schemaDSN := conformance.PostgresSchema(t, dsn)
			return database{driver: "postgres", dsn: schemaDSN, raw: rawDB(t, "pgx", schemaDSN)}
		}
	}
	return out
}

// forEachDatabase runs test as a subtest on each of databases.
func forEachDatabase(t *testing.T, test func(t *testing.T, db database)) {
	for name, newDB := range databases(t) {
		t.Run(name, func(t *testing.T) { test(t, newDB(t)) })
	}
}

func rawDB(t *testing.T, driver, dsn string) *sql.DB {
	db, err := sql.Open(driver, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// open opens and migrates db with cipher (nil: none); the store closes when
// t ends or earlier by the caller.
func (db database) open(t *testing.T, cipher *secrets.Cipher) *storage.GormStore {
	t.Helper()
	ctx := context.Background()
	s, err := storage.Open(ctx, storage.Options{Driver: db.driver, DSN: db.dsn, Cipher: cipher})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	require.NoError(t, s.Migrate(ctx))
	return s
}

// column reads one stored value as it lies in the database.
func (db database) column(t *testing.T, query string, args ...any) string {
	t.Helper()
	var v string
	require.NoError(t, db.raw.QueryRow(query, args...).Scan(&v))
	return v
}

func (db database) privateJWK(t *testing.T, kid string) string {
	t.Helper()
	q := "SELECT private_jwk FROM signing_keys WHERE kid = ?"
	if db.driver == "postgres" {
		q = strings.Replace(q, "?", "$1", 1)
	}
	return db.column(t, q, kid)
}

func (db database) storedSystemSecret(t *testing.T) string {
	return db.column(t, "SELECT value FROM settings WHERE name = 'system_secret'")
}

// plaintext makes db what a Latch run without secrets.system left: signing
// key k1 and the system secret in clear. It returns the key and its
// private scalar.
func (db database) plaintext(t *testing.T) (*storage.SigningKey, string) {
	t.Helper()
	ctx := context.Background()
	s := db.open(t, nil)
	k, d := ecSigningKey(t, "k1")
	require.NoError(t, s.CreateSigningKey(ctx, k))
	_, err := s.SystemSecret(ctx, systemSecretValue)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	return k, d
}

// requireReadsBack checks that s reads k, its only key, and the system
// secret back as they were written.
func requireReadsBack(t *testing.T, s *storage.GormStore, k *storage.SigningKey) {
	t.Helper()
	ctx := context.Background()
	list, err := s.ListSigningKeys(ctx, time.Now())
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, k.KID, list[0].KID)
	require.JSONEq(t, string(k.PrivateJWK), string(list[0].PrivateJWK), "the key reads back as it was written")
	got, err := s.SystemSecret(ctx, []byte("another-candidate-another-candidate"))
	require.NoError(t, err)
	require.Equal(t, systemSecretValue, got, "the system secret reads back as it was written")
}

func newCipher(t *testing.T, secret string) *secrets.Cipher {
	t.Helper()
	c, err := secrets.NewCipher([]byte(secret))
	require.NoError(t, err)
	return c
}

// ecSigningKey is a key as keys.Manager stores it, and the base64url of
// its private scalar, which must never appear in a stolen database.
func ecSigningKey(t *testing.T, kid string) (*storage.SigningKey, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	raw, err := jose.JSONWebKey{Key: k, KeyID: kid, Algorithm: "ES256", Use: "sig"}.MarshalJSON()
	require.NoError(t, err)
	scalar, err := k.Bytes() // the fixed-length big-endian private scalar
	require.NoError(t, err)
	d := base64.RawURLEncoding.EncodeToString(scalar)
	require.Contains(t, string(raw), d)
	return &storage.SigningKey{KID: kid, Algorithm: "ES256", PrivateJWK: raw, CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}, d
}

const (
	secretA = "the-first-system-secret-32-bytes-at-least"
	secretB = "the-second-system-secret-32-bytes-at-least"
)

var systemSecretValue = []byte("stored-system-secret-32-bytes-xx")

func TestStolenDatabaseHoldsNoPrivateKeyWithSystemSecret(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, db database) {
		ctx := context.Background()
		s := db.open(t, newCipher(t, secretA))
		k, d := ecSigningKey(t, "k1")
		require.NoError(t, s.CreateSigningKey(ctx, k))
		_, err := s.SystemSecret(ctx, systemSecretValue)
		require.NoError(t, err)

		stolen := db.privateJWK(t, "k1")
		require.NotContains(t, stolen, d, "the private scalar lies in the database")
		require.NotContains(t, stolen, `"d"`)
		require.True(t, strings.HasPrefix(stolen, "enc:v1:"), "stored %q", stolen)
		require.NotContains(t, db.storedSystemSecret(t), base64.RawStdEncoding.EncodeToString(systemSecretValue))

		requireReadsBack(t, s, k)
	})
}

func TestPlaintextDatabaseEncryptedOnFirstStartWithSecret(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, db database) {
		ctx := context.Background()
		k, d := db.plaintext(t)
		require.Contains(t, db.privateJWK(t, "k1"), d, "without a secret the key is stored as it is")

		s := db.open(t, newCipher(t, secretA))
		n, err := s.SealAtRest(ctx, nil)
		require.NoError(t, err)
		require.Equal(t, 2, n, "the key and the system secret are encrypted")
		require.NotContains(t, db.privateJWK(t, "k1"), d)
		require.True(t, strings.HasPrefix(db.storedSystemSecret(t), "enc:v1:"))
		requireReadsBack(t, s, k)

		n, err = s.SealAtRest(ctx, nil)
		require.NoError(t, err)
		require.Zero(t, n, "a second start rewrites nothing")
	})
}

func TestWrongOrMissingSecretRefusedNotReplaced(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, db database) {
		ctx := context.Background()
		a := newCipher(t, secretA)
		s := db.open(t, a)
		k, _ := ecSigningKey(t, "k1")
		require.NoError(t, s.CreateSigningKey(ctx, k))
		require.NoError(t, s.Close())
		stored := db.privateJWK(t, "k1")

		b := newCipher(t, secretB)
		wrong := db.open(t, b)
		_, err := wrong.SealAtRest(ctx, nil)
		require.ErrorIs(t, err, storage.ErrSealed)
		require.ErrorContains(t, err, a.KeyID(), "the message names the secret the key was encrypted under")
		require.ErrorContains(t, err, b.KeyID())
		_, err = wrong.ListSigningKeys(ctx, time.Now())
		require.ErrorIs(t, err, storage.ErrSealed, "a read with the wrong secret fails; it never yields an empty list")
		require.ErrorIs(t, err, storage.ErrUnavailable, "requests meeting it are answered 503")
		require.NoError(t, wrong.Close())

		none := db.open(t, nil)
		_, err = none.SealAtRest(ctx, nil)
		require.ErrorIs(t, err, storage.ErrSealed)
		require.ErrorContains(t, err, "no secrets.system is configured")
		require.Equal(t, stored, db.privateJWK(t, "k1"), "nothing was rewritten")
	})
}

func TestSealedRowsCannotBeSwapped(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, db database) {
		ctx := context.Background()
		a := newCipher(t, secretA)
		s := db.open(t, a)
		k1, _ := ecSigningKey(t, "k1")
		k2, _ := ecSigningKey(t, "k2")
		require.NoError(t, s.CreateSigningKey(ctx, k1))
		require.NoError(t, s.CreateSigningKey(ctx, k2))
		// An attacker with write access copies k1's sealed value into k2
		// (k2 being, say, the current key).
		_, err := db.raw.Exec("UPDATE signing_keys SET private_jwk = (SELECT private_jwk FROM signing_keys WHERE kid = 'k1') WHERE kid = 'k2'")
		require.NoError(t, err)
		_, err = s.ListSigningKeys(ctx, time.Now())
		require.ErrorIs(t, err, storage.ErrSealed)
		require.ErrorIs(t, err, secrets.ErrAltered)
		_, err = s.SealAtRest(ctx, nil)
		require.ErrorIs(t, err, secrets.ErrAltered, "start-up finds it")
	})
}

func TestRotateReencryptsEverythingInOneTransaction(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, db database) {
		ctx := context.Background()
		a, b := newCipher(t, secretA), newCipher(t, secretB)
		s := db.open(t, a)
		k1, _ := ecSigningKey(t, "k1")
		k2, _ := ecSigningKey(t, "k2")
		require.NoError(t, s.CreateSigningKey(ctx, k1))
		require.NoError(t, s.CreateSigningKey(ctx, k2))
		_, err := s.SystemSecret(ctx, systemSecretValue)
		require.NoError(t, err)
		require.NoError(t, s.Close())

		// One value that does not open stops the whole rotation.
		good := db.privateJWK(t, "k2")
		_, err = db.raw.Exec("UPDATE signing_keys SET private_jwk = (SELECT private_jwk FROM signing_keys WHERE kid = 'k2') WHERE kid = 'k1'")
		require.NoError(t, err)
		rotating := db.open(t, b)
		_, err = rotating.SealAtRest(ctx, a)
		require.ErrorIs(t, err, secrets.ErrAltered)
		require.Equal(t, good, db.privateJWK(t, "k2"), "a failed rotation changes nothing")
		_, err = db.raw.Exec("DELETE FROM signing_keys WHERE kid = 'k1'")
		require.NoError(t, err)

		n, err := rotating.SealAtRest(ctx, a)
		require.NoError(t, err)
		require.Equal(t, 2, n, "k2 and the system secret")
		require.NoError(t, rotating.Close())
		id, _ := secrets.Sealed(db.privateJWK(t, "k2"))
		require.Equal(t, b.KeyID(), id)

		after := db.open(t, b)
		n, err = after.SealAtRest(ctx, nil)
		require.NoError(t, err)
		require.Zero(t, n)
		requireReadsBack(t, after, k2)
		n, err = after.SealAtRest(ctx, a)
		require.NoError(t, err)
		require.Zero(t, n, "rotating again is harmless")
		require.NoError(t, after.Close())

		_, err = db.open(t, a).SealAtRest(ctx, nil)
		require.True(t, errors.Is(err, storage.ErrSealed), "the old secret no longer opens anything: %v", err)
	})
}

// TestConcurrentStartsSealEachValueOnce: instances starting together on a
// plaintext database all succeed, and each value is sealed by exactly one
// of them (a value sealed twice would still open, but the count proves the
// re-read under the write lock).
func TestConcurrentStartsSealEachValueOnce(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, db database) {
		ctx := context.Background()
		k, d := db.plaintext(t)

		const instances = 4
		stores := make([]*storage.GormStore, instances)
		for i := range stores {
			stores[i] = db.open(t, newCipher(t, secretA))
		}
		start := make(chan struct{})
		counts, errs := make([]int, instances), make([]error, instances)
		var wg sync.WaitGroup
		for i, s := range stores {
			wg.Go(func() {
				<-start
				counts[i], errs[i] = s.SealAtRest(ctx, nil)
			})
		}
		close(start)
		wg.Wait()
		total := 0
		for i := range stores {
			require.NoErrorf(t, errs[i], "instance %d", i)
			total += counts[i]
		}
		require.Equal(t, 2, total, "each of the two values sealed once")
		require.NotContains(t, db.privateJWK(t, "k1"), d)
		requireReadsBack(t, stores[0], k)
	})
}
