package server_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/passhash"
	"github.com/latchauth/latch/storage"
)

// The two costly parts of a test server are made once per test process,
// as latchtest does: the test users' argon2id password hashes (19 MiB and
// tens of milliseconds each) and the RSA signing key (hundreds of
// milliseconds, unpredictably). They were most of the package's CPU time.
// Each server still stores its own key under its own kid, and every login
// still runs a real argon2id check against a real hash.
var processFixtures struct {
	once   sync.Once
	hashes map[string]string
	key    *rsa.PrivateKey
	err    error
}

func loadProcessFixtures(t *testing.T) {
	t.Helper()
	processFixtures.once.Do(func() {
		processFixtures.hashes = map[string]string{}
		for _, p := range []string{"alice-password", "bob-password"} {
			h, err := passhash.Hash(p)
			if err != nil {
				processFixtures.err = err
				return
			}
			processFixtures.hashes[p] = h
		}
		processFixtures.key, processFixtures.err = rsa.GenerateKey(rand.Reader, 2048)
	})
	require.NoError(t, processFixtures.err)
}

// passwordHashOf is the process's hash of a test user's password.
func passwordHashOf(t *testing.T, password string) string {
	t.Helper()
	loadProcessFixtures(t)
	h, ok := processFixtures.hashes[password]
	require.True(t, ok, "no precomputed hash for %q", password)
	return h
}

// storeSigningKey stores the process's RSA key under a new kid, as
// server.Boot stores BootOptions.SigningKey, so that server.New finds a
// current RS256 key and generates none.
func storeSigningKey(t *testing.T, st storage.Store) {
	t.Helper()
	loadProcessFixtures(t)
	kid := make([]byte, 16)
	_, err := rand.Read(kid)
	require.NoError(t, err)
	id := base64.RawURLEncoding.EncodeToString(kid)
	raw, err := json.Marshal(jose.JSONWebKey{Key: processFixtures.key, KeyID: id, Algorithm: "RS256", Use: "sig"})
	require.NoError(t, err)
	require.NoError(t, st.CreateSigningKey(context.Background(), &storage.SigningKey{
		KID: id, Algorithm: "RS256", PrivateJWK: raw, CreatedAt: time.Now().UTC().Truncate(time.Microsecond),
	}))
}
