package latchtest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v3"

	"github.com/latchauth/latch/passhash"
	"github.com/latchauth/latch/storage"
)

// What would dominate New if each server made its own: an RSA-2048 key
// (tens of milliseconds, more under -race) and an argon2id hash (19 MiB,
// tens of milliseconds). Each is made once per process, on first use.
var (
	processRSAKey = sync.OnceValues(func() (*rsa.PrivateKey, error) {
		return rsa.GenerateKey(rand.Reader, 2048)
	})
	processPasswordHash = sync.OnceValues(func() (string, error) {
		return passhash.Hash(Password)
	})
)

// signingKey is the key a server imports instead of generating one: the
// process's RSA key under a kid of its own, for RS256 (the default). For
// ES256 it is nil: a P-256 key costs microseconds to generate, so the
// server makes its own, as `latch serve` does.
func signingKey(alg string) (*storage.SigningKey, error) {
	if alg != "" && alg != "RS256" {
		return nil, nil
	}
	key, err := processRSAKey()
	if err != nil {
		return nil, fmt.Errorf("generate the process's RSA key: %w", err)
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	kid := base64.RawURLEncoding.EncodeToString(b)
	raw, err := json.Marshal(jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: "RS256", Use: "sig"})
	if err != nil {
		return nil, err
	}
	return &storage.SigningKey{KID: kid, Algorithm: "RS256", PrivateJWK: raw, CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}, nil
}

// passwordHash is the argon2id hash of Password.
func passwordHash() (string, error) { return processPasswordHash() }
