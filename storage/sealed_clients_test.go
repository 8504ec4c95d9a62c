package storage_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/secrets"
	"github.com/latchauth/latch/storage"
)

const jwtClientSecret = "client-secret-jwt-key-of-32-bytes-at-least-zz"

// jwtClient is a client_secret_jwt client whose secret a thief must not
// find in the database.
func jwtClient() *clients.Client {
	c := &clients.Client{ID: "hmac-client", TokenEndpointAuthMethod: clients.AuthMethodSecretJWT, GrantTypes: []string{clients.GrantClientCredentials}}
	c.SetSecret(jwtClientSecret, clients.HashGenerated(jwtClientSecret))
	clients.Defaults(c)
	return c
}

func (db database) storedJWTSecret(t *testing.T) string {
	return db.column(t, "SELECT jwt_secret FROM clients WHERE id = 'hmac-client'")
}

func requireJWTSecretReadsBack(t *testing.T, s *storage.GormStore) {
	t.Helper()
	got, err := s.GetClient(context.Background(), "hmac-client")
	require.NoError(t, err)
	require.Equal(t, jwtClientSecret, got.(*clients.Client).JWTSecret)
}

// TestStolenDatabaseHoldsNoClientJWTSecret: with secrets.system, a
// client_secret_jwt secret is sealed in the database (and bound to its
// row); without it, it lies there in clear, as README's security model
// says, and the first start with a secret seals it.
func TestStolenDatabaseHoldsNoClientJWTSecret(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, db database) {
		ctx := context.Background()
		plain := db.open(t, nil)
		require.NoError(t, plain.CreateClient(ctx, jwtClient()))
		require.Equal(t, jwtClientSecret, db.storedJWTSecret(t), "without secrets.system only the file's permissions guard it")
		require.NoError(t, plain.Close())

		a := newCipher(t, secretA)
		s := db.open(t, a)
		n, err := s.SealAtRest(ctx, nil)
		require.NoError(t, err)
		require.Equal(t, 1, n, "the client secret is sealed at the first start with a secret")
		stolen := db.storedJWTSecret(t)
		require.True(t, strings.HasPrefix(stolen, "enc:v1:"), "stored %q", stolen)
		require.NotContains(t, stolen, jwtClientSecret)
		requireJWTSecretReadsBack(t, s)

		// Written anew (rotate-secret, an update): sealed at once.
		c := jwtClient()
		c.ID = "hmac-2"
		require.NoError(t, s.CreateClient(ctx, c))
		require.True(t, strings.HasPrefix(db.column(t, "SELECT jwt_secret FROM clients WHERE id = 'hmac-2'"), "enc:v1:"))
		require.NoError(t, s.DeleteClient(ctx, "hmac-2"))
		require.NoError(t, s.Close())

		// `latch secrets rotate` re-seals it under the new secret.
		b := newCipher(t, secretB)
		rotating := db.open(t, b)
		n, err = rotating.SealAtRest(ctx, a)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		id, _ := secrets.Sealed(db.storedJWTSecret(t))
		require.Equal(t, b.KeyID(), id)
		requireJWTSecretReadsBack(t, rotating)
		require.NoError(t, rotating.Close())

		_, err = db.open(t, a).GetClient(ctx, "hmac-client")
		require.ErrorIs(t, err, storage.ErrSealed, "the old secret no longer opens it")
	})
}
