package server_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/passhash"
	"github.com/latchauth/latch/server"
	"github.com/latchauth/latch/storage"
)

// An argon2id run of passhash allocates its 19 MiB memory; no other part
// of seeding comes near. So the bytes a seeding allocates tell, without a
// clock, how many argon2id runs it made.
const argonRun = 19 << 20

// seedFile is a validated configuration with two plaintext secrets in a
// SQLite file of dir.
func seedFile(t *testing.T, dir, system string) config.File {
	t.Helper()
	f := config.Default()
	f.Database = config.Database{Driver: "sqlite", DSN: filepath.Join(dir, "latch.db")}
	f.Secrets.System = system
	f.Clients = []config.Client{{
		ID: "svc", Secret: "a secret a person chose", GrantTypes: []string{clients.GrantClientCredentials},
		ResponseTypes: []string{}, Scopes: []string{"read"}, TokenEndpointAuthMethod: clients.AuthMethodBasic,
	}}
	f.Users = []config.User{{Username: "alice", Password: "alice-password-a-person-chose"}}
	require.NoError(t, f.Validate())
	return f
}

// seedOnce opens the database of f, seeds it with a fresh Hasher (a new
// process) and returns the store, the Hasher and the bytes the seeding
// allocated.
func seedOnce(t *testing.T, f config.File) (*storage.GormStore, *clients.Hasher, uint64) {
	t.Helper()
	ctx := context.Background()
	st, err := server.OpenStore(ctx, f, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	hasher := clients.NewHasher(10)
	allocated := allocatedBy(func() {
		require.NoError(t, server.Seed(ctx, f, st, &clients.Manager{Store: st, Hasher: hasher}))
	})
	return st, hasher, allocated
}

func allocatedBy(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestSeedRestartWithUnchangedSecretsRunsNoArgon2id(t *testing.T) {
	dir := t.TempDir()
	f := seedFile(t, dir, strings.Repeat("s", 32))
	first, _, allocated := seedOnce(t, f)
	require.GreaterOrEqual(t, allocated, uint64(2*argonRun), "the first start hashes both secrets")
	require.NoError(t, first.Close())

	st, hasher, allocated := seedOnce(t, f)
	require.Less(t, allocated, uint64(argonRun), "a restart with the same secrets runs no argon2id")
	c, err := st.GetClient(context.Background(), "svc")
	require.NoError(t, err)
	hash := c.(*clients.Client).SecretHash
	require.True(t, passhash.IsHash(hash), "the secret is still stored as a slow hash")
	allocated = allocatedBy(func() {
		require.NoError(t, hasher.Compare(context.Background(), []byte(hash), []byte("a secret a person chose")))
	})
	require.Less(t, allocated, uint64(argonRun), "the client's first request runs no argon2id either")
	require.ErrorIs(t, hasher.Compare(context.Background(), []byte(hash), []byte("a guess")), clients.ErrMismatch)
	u, err := st.GetUser(context.Background(), "alice")
	require.NoError(t, err)
	require.NoError(t, passhash.Verify(u.PasswordHash, "alice-password-a-person-chose"))
}

func TestSeedChangedSecretIsHashedAgainAndOldOneRefused(t *testing.T) {
	dir := t.TempDir()
	f := seedFile(t, dir, strings.Repeat("s", 32))
	first, _, _ := seedOnce(t, f)
	require.NoError(t, first.Close())

	f.Clients[0].Secret = "another secret a person chose"
	f.Users[0].Password = "another password a person chose"
	st, hasher, allocated := seedOnce(t, f)
	require.GreaterOrEqual(t, allocated, uint64(2*argonRun), "a changed secret is checked and hashed the slow way")
	c, err := st.GetClient(context.Background(), "svc")
	require.NoError(t, err)
	hash := []byte(c.(*clients.Client).SecretHash)
	require.NoError(t, hasher.Compare(context.Background(), hash, []byte("another secret a person chose")))
	require.ErrorIs(t, hasher.Compare(context.Background(), hash, []byte("a secret a person chose")), clients.ErrMismatch)
	u, err := st.GetUser(context.Background(), "alice")
	require.NoError(t, err)
	require.NoError(t, passhash.Verify(u.PasswordHash, "another password a person chose"))
	require.ErrorIs(t, passhash.Verify(u.PasswordHash, "alice-password-a-person-chose"), passhash.ErrMismatch)
}

func TestSeedMemoIsVoidWhenTheStoredHashChanges(t *testing.T) {
	dir := t.TempDir()
	f := seedFile(t, dir, strings.Repeat("s", 32))
	first, _, _ := seedOnce(t, f)
	// An operator sets another secret with the CLI; config.yaml still
	// declares the old one, and stays the source of truth.
	mgr := &clients.Manager{Store: first, Hasher: clients.NewHasher(10)}
	c, err := mgr.Get(context.Background(), "svc")
	require.NoError(t, err)
	c.SecretHash, err = clients.HashChosen("set with the CLI")
	require.NoError(t, err)
	require.NoError(t, first.UpsertClient(context.Background(), c))
	require.NoError(t, first.Close())

	st, hasher, allocated := seedOnce(t, f)
	require.GreaterOrEqual(t, allocated, uint64(argonRun), "the memo covers the stored hash, so the changed hash is checked the slow way")
	c, err = (&clients.Manager{Store: st}).Get(context.Background(), "svc")
	require.NoError(t, err)
	require.NoError(t, hasher.Compare(context.Background(), []byte(c.SecretHash), []byte("a secret a person chose")))
	require.ErrorIs(t, clients.NewHasher(1).Compare(context.Background(), []byte(c.SecretHash), []byte("set with the CLI")), clients.ErrMismatch)
}

func TestSeedWithoutConfiguredSystemSecretKeepsNoMemo(t *testing.T) {
	dir := t.TempDir()
	f := seedFile(t, dir, "")
	first, _, _ := seedOnce(t, f)
	require.NoError(t, first.Close())
	// The only key would be in the database itself: a stolen copy could
	// then test guesses at HMAC speed. So every start checks the slow way.
	_, _, allocated := seedOnce(t, f)
	require.GreaterOrEqual(t, allocated, uint64(2*argonRun))
	db, err := sql.Open("sqlite3", f.Database.DSN)
	require.NoError(t, err)
	defer db.Close()
	var n int
	require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM settings WHERE name LIKE 'seed:%'`).Scan(&n))
	require.Zero(t, n)
}

func TestSeedWithAnotherSystemSecretChecksTheSlowWayOnce(t *testing.T) {
	dir := t.TempDir()
	f := seedFile(t, dir, strings.Repeat("s", 32))
	first, _, _ := seedOnce(t, f)
	require.NoError(t, first.Close())

	f.Secrets.System = strings.Repeat("t", 32)
	second, _, allocated := seedOnce(t, f)
	require.GreaterOrEqual(t, allocated, uint64(2*argonRun), "a memo made under another key never matches")
	require.NoError(t, second.Close())
	_, _, allocated = seedOnce(t, f)
	require.Less(t, allocated, uint64(argonRun), "the memos were made again under the new key")
}
