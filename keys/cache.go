package keys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v3"
)

// cacheTTL is how long what was read from the store is trusted (SPEC
// "Scale-out": at most 5 seconds).
const cacheTTL = 5 * time.Second

// snapshot is the store's keys as read at fetched, parsed once.
type snapshot struct {
	fetched time.Time
	// keys are current keys first, then retired ones, each newest first.
	keys []key
}

type key struct {
	private   jose.JSONWebKey
	public    jose.JSONWebKey
	retired   bool
	expiresAt *time.Time
}

// published reports whether the key belongs in the JWKS at now; the same
// test the store applies (expires_at > now), repeated because a snapshot
// lives up to cacheTTL.
func (k *key) published(now time.Time) bool {
	return k.expiresAt == nil || k.expiresAt.After(now)
}

// GetPrivateKey is fosite's jwt.GetPrivateKeyFunc: the newest unretired key
// as a *jose.JSONWebKey with KeyID, Algorithm and Use "sig" set. fosite's
// DefaultSigner signs with the JWK's Algorithm and go-jose writes its KeyID
// as the "kid" header (unless the token's own headers set "kid", which then
// win: never put a kid in session headers).
//
// Each call returns a fresh copy, so a caller cannot alter the cache.
func (m *Manager) GetPrivateKey(ctx context.Context) (interface{}, error) {
	s, err := m.load(ctx)
	if err != nil {
		return nil, err
	}
	for i := range s.keys {
		if !s.keys[i].retired {
			jwk := s.keys[i].private
			return &jwk, nil
		}
	}
	return nil, errors.New("keys: no current signing key (Ensure was not called, or a rotation is incomplete)")
}

// PublicKeys is the JWKS to publish: the public half of every key not past
// its ExpiresAt (the current key and retired keys still published), newest
// first (the signing key always first), each with Use "sig", Algorithm and KeyID set. It never holds a
// private part.
func (m *Manager) PublicKeys(ctx context.Context) (*jose.JSONWebKeySet, error) {
	s, err := m.load(ctx)
	if err != nil {
		return nil, err
	}
	now := m.now()
	set := &jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(s.keys))}
	for i := range s.keys {
		if s.keys[i].published(now) {
			set.Keys = append(set.Keys, s.keys[i].public)
		}
	}
	return set, nil
}

// load returns the cached snapshot while it is younger than cacheTTL by the
// injected clock, and reads the store otherwise. A store failure is
// returned, never papered over with a stale snapshot: an instance that
// cannot reach the database must not keep signing with a key that may have
// been rotated away.
func (m *Manager) load(ctx context.Context) (*snapshot, error) {
	now := m.now()
	if s := m.cache.Load(); s.fresh(now) {
		return s, nil
	}
	m.refresh.Lock()
	defer m.refresh.Unlock()
	now = m.now()
	if s := m.cache.Load(); s.fresh(now) {
		return s, nil // another goroutine refreshed while this one waited
	}
	stored, err := m.store.ListSigningKeys(ctx, now)
	if err != nil {
		return nil, fmt.Errorf("keys: list keys: %w", err)
	}
	s := &snapshot{fetched: now, keys: make([]key, 0, len(stored))}
	for _, sk := range stored {
		var jwk jose.JSONWebKey
		if err := json.Unmarshal(sk.PrivateJWK, &jwk); err != nil {
			return nil, fmt.Errorf("keys: stored key %s: %w", sk.KID, err)
		}
		if jwk.IsPublic() || !jwk.Valid() {
			return nil, fmt.Errorf("keys: stored key %s is not a valid private key", sk.KID)
		}
		// The row's columns are authoritative over what the JSON says.
		jwk.KeyID, jwk.Algorithm, jwk.Use = sk.KID, sk.Algorithm, "sig"
		s.keys = append(s.keys, key{
			private:   jwk,
			public:    jwk.Public(),
			retired:   sk.RetiredAt != nil,
			expiresAt: sk.ExpiresAt,
		})
	}
	// The store orders by created_at; a rotation within the clock's
	// resolution of the previous key would tie, and the JWKS must still
	// list the signing key first (some clients take the first key).
	slices.SortStableFunc(s.keys, func(a, b key) int {
		switch {
		case a.retired == b.retired:
			return 0
		case b.retired:
			return -1
		default:
			return 1
		}
	})
	m.cache.Store(s)
	return s, nil
}

// fresh reports whether s may still be trusted at now. A clock that went
// backwards also counts as stale.
func (s *snapshot) fresh(now time.Time) bool {
	if s == nil {
		return false
	}
	age := now.Sub(s.fetched)
	return age >= 0 && age < cacheTTL
}

// dropCache makes the next read go to the store. It takes the refresh lock
// so that a refresh which read the store before the caller's write cannot
// store its stale snapshot afterwards.
func (m *Manager) dropCache() {
	m.refresh.Lock()
	m.cache.Store(nil)
	m.refresh.Unlock()
}
