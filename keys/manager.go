// Package keys owns the server's signing keys (ID tokens, JWT access
// tokens): it generates one on first start, keeps every key in the store so
// that all instances sign with the same key and survive restarts, rotates
// them on demand, and publishes the public halves as the JWKS.
package keys

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v3"
	fositestorage "github.com/ory/fosite/storage"

	"github.com/latchauth/latch/storage"
)

// Manager owns the server's signing keys (ID tokens, JWT access tokens):
// generated on first start, kept in the Store, rotated on demand.
//
// It caches what it read from the store for at most cacheTTL (SPEC
// "Scale-out"), so a rotation on another instance takes effect here within
// that time. A Manager is safe for concurrent use.
type Manager struct {
	store     storage.KeyStore
	algorithm string
	now       func() time.Time

	// cache is read lock-free on the signing path; refresh serialises the
	// store reads that fill it so a burst of requests at expiry makes one
	// query, and lets Rotate and Ensure drop it without losing the race to
	// a refresh that read the store before their write.
	cache   atomic.Pointer[snapshot]
	refresh sync.Mutex
}

// Algorithms NewManager accepts. RS256 is the default because it is the one
// every OIDC relying party must support (OIDC Core §15.1).
const (
	RS256 = string(jose.RS256)
	ES256 = string(jose.ES256)
)

// NewManager returns a Manager on st that generates algorithm keys ("RS256",
// the default when "", or "ES256"); now is the clock (nil: time.Now). It
// does not touch the store: call Ensure at start-up.
//
// The algorithm applies to keys this Manager generates. A key already in the
// store keeps signing with its own algorithm until the next Rotate, so
// instances configured differently never fight over the current key.
func NewManager(st storage.KeyStore, algorithm string, now func() time.Time) (*Manager, error) {
	if st == nil {
		return nil, errors.New("keys: nil store")
	}
	switch algorithm {
	case "":
		algorithm = RS256
	case RS256, ES256:
	default:
		return nil, fmt.Errorf("keys: unsupported signing algorithm %q (want %s or %s)", algorithm, RS256, ES256)
	}
	if now == nil {
		now = time.Now
	}
	return &Manager{store: st, algorithm: algorithm, now: now}, nil
}

// Ensure makes sure an unretired signing key exists, generating one (RSA
// 2048 for RS256, P-256 for ES256) if not. It is safe to call from several
// instances at once: if two race past the check, both keys exist and the
// newest signs everywhere.
func (m *Manager) Ensure(ctx context.Context) error {
	current, err := m.hasCurrent(ctx)
	if err != nil || current {
		return err
	}
	// Generating an RSA key takes tens of milliseconds: do it before the
	// transaction so the write lock is not held meanwhile.
	k, err := m.generate()
	if err != nil {
		return err
	}
	err = m.inTx(ctx, func(ctx context.Context) error {
		// Checked again inside the transaction: on SQLite (one writer,
		// BEGIN IMMEDIATE) this makes concurrent starts create one key.
		current, err := m.hasCurrent(ctx)
		if err != nil || current {
			return err
		}
		if err := m.store.CreateSigningKey(ctx, k); err != nil {
			return fmt.Errorf("keys: store new key: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	m.dropCache()
	return nil
}

// Rotate retires every current key and generates a new one, which signs from
// now on. The retired keys stay published for publishFor, so the tokens they
// signed still verify until they expire: pass the longest token lifespan.
// publishFor 0 unpublishes them at once (a compromised key). It drops this
// Manager's cache; other instances follow within the cache lifetime.
//
// When the store is transactional (storage.Store is) retiring and creating
// happen in one transaction, so no instance ever reads a moment without a
// current key.
func (m *Manager) Rotate(ctx context.Context, publishFor time.Duration) error {
	if publishFor < 0 {
		return fmt.Errorf("keys: negative publish duration %s", publishFor)
	}
	k, err := m.generate()
	if err != nil {
		return err
	}
	err = m.inTx(ctx, func(ctx context.Context) error {
		if err := m.store.RetireSigningKeys(ctx, k.CreatedAt, k.CreatedAt.Add(publishFor)); err != nil {
			return fmt.Errorf("keys: retire keys: %w", err)
		}
		if err := m.store.CreateSigningKey(ctx, k); err != nil {
			return fmt.Errorf("keys: store new key: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	m.dropCache()
	return nil
}

func (m *Manager) hasCurrent(ctx context.Context) (bool, error) {
	stored, err := m.store.ListSigningKeys(ctx, m.now())
	if err != nil {
		return false, fmt.Errorf("keys: list keys: %w", err)
	}
	for _, k := range stored {
		if k.RetiredAt == nil {
			return true, nil
		}
	}
	return false, nil
}

// inTx runs fn in a store transaction when the store offers them, and
// directly otherwise.
func (m *Manager) inTx(ctx context.Context, fn func(context.Context) error) error {
	tx, ok := m.store.(fositestorage.Transactional)
	if !ok {
		return fn(ctx)
	}
	txCtx, err := tx.BeginTX(ctx)
	if err != nil {
		return fmt.Errorf("keys: begin transaction: %w", err)
	}
	if err := fn(txCtx); err != nil {
		if rbErr := tx.Rollback(txCtx); rbErr != nil {
			return errors.Join(err, fmt.Errorf("keys: rollback: %w", rbErr))
		}
		return err
	}
	if err := tx.Commit(txCtx); err != nil {
		return fmt.Errorf("keys: commit: %w", err)
	}
	return nil
}

// generate makes a new key of m.algorithm as the row to store.
func (m *Manager) generate() (*storage.SigningKey, error) {
	var priv any
	var err error
	switch m.algorithm {
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		return nil, fmt.Errorf("keys: generate %s key: %w", m.algorithm, err)
	}
	kid, err := newKID()
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(jose.JSONWebKey{Key: priv, KeyID: kid, Algorithm: m.algorithm, Use: "sig"})
	if err != nil {
		return nil, fmt.Errorf("keys: encode key: %w", err)
	}
	// Microseconds: what PostgreSQL keeps, so the stored and the in-memory
	// time compare equal.
	created := m.now().UTC().Truncate(time.Microsecond)
	return &storage.SigningKey{KID: kid, Algorithm: m.algorithm, PrivateJWK: raw, CreatedAt: created}, nil
}

// newKID is 128 random bits, base64url: URL-safe, and unique whatever the
// key (two stores seeded from one backup still get distinct kids on rotate).
func newKID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("keys: generate key id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
