package clients

import (
	"container/list"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/ory/fosite"
	"golang.org/x/sync/singleflight"

	"github.com/latchauth/latch/passhash"
)

// How a client secret is stored. The choice is made by where the secret
// comes from:
//
//   - A secret Latch generates has 256 random bits. Nobody can guess such a
//     secret, so a slow hash adds nothing: it is stored as "sha256$" and its
//     SHA-256, checked in about a microsecond, and a stolen database still
//     gives no usable secret (a preimage of SHA-256 is out of reach).
//   - A secret a person chose (config.yaml, `clients create --secret`) may be
//     guessable, so it is stored with argon2id ("$argon2id$..."); bcrypt
//     hashes ("$2a$", "$2b$", "$2y$") are accepted for imported clients.
//     A slow check per request would cap the token endpoint at a few
//     requests per second, so a verified (hash, secret) pair is remembered
//     in a bounded in-memory cache keyed by SHA-256 of both. The key covers
//     the stored hash, so a rotated or deleted secret never matches an old
//     entry, on any instance.
const (
	prefixSHA256 = "sha256$"
)

// ErrMismatch is returned when a secret does not match its hash.
var ErrMismatch = errors.New("clients: secret does not match")

// GenerateSecret returns 32 random bytes, URL-safe base64 without padding.
func GenerateSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("clients: generate secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// HashGenerated hashes a secret made by GenerateSecret.
func HashGenerated(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return prefixSHA256 + base64.RawURLEncoding.EncodeToString(sum[:])
}

// HashChosen hashes a secret a person chose, with argon2id (passhash).
func HashChosen(secret string) (string, error) {
	return passhash.Hash(secret)
}

// Hasher checks client secrets for fosite (fosite.Hasher). It is safe for
// concurrent use.
//
// A wrong secret costs at most one argon2id run, and each stored slow hash
// (so each client with a chosen secret) has a failure budget: after
// failureBurst wrong secrets, checks that would need argon2id are refused
// with a *ThrottledError until the budget refills (one failure per
// failureRefill). A secret already verified (in the cache) still passes at
// once, so a client that keeps working is not locked out by someone
// guessing its secret; a client's first request after a restart may be
// refused while it is under attack. Generated secrets (SHA-256) cost
// nothing to check and cannot be guessed, so they have no budget. The
// budgets live in this process: like the per-client rate limit, each
// instance protects its own CPU.
type Hasher struct {
	// Verify checks a secret against a slow hash; nil is passhash.Verify.
	// Tests count argon2id runs through it.
	Verify func(hash, secret string) error

	cache *verifiedCache
	// inflight makes concurrent checks of one (hash, secret) pair share a
	// single argon2id run: a burst of a client's first requests would
	// otherwise each spend 19 MiB and tens of milliseconds on it.
	inflight singleflight.Group
	// slow bounds the argon2id checks running at once (one per CPU), so a
	// flood of distinct wrong secrets queues instead of taking memory.
	slow     chan struct{}
	failures *failureBudgets
}

var _ fosite.Hasher = (*Hasher)(nil)

// The failure budget of one stored slow hash: ten wrong secrets at once,
// then one every six seconds.
const (
	failureBurst  = 10
	failureRefill = 6 * time.Second
)

// NewHasher returns a Hasher whose cache holds at most size verified pairs.
func NewHasher(size int) *Hasher {
	return &Hasher{
		cache:    newVerifiedCache(size),
		slow:     make(chan struct{}, max(2, runtime.GOMAXPROCS(0))),
		failures: newFailureBudgets(failureBurst, failureRefill),
	}
}

// Hash hashes a chosen secret.
func (h *Hasher) Hash(_ context.Context, data []byte) ([]byte, error) {
	s, err := HashChosen(string(data))
	return []byte(s), err
}

// Compare returns nil if data is the secret of hash, in constant time for
// the fast format and through the cache for the slow ones; ErrMismatch for
// a wrong secret, and a *ThrottledError when the stored hash has used up
// its failure budget and data is not a secret verified before.
func (h *Hasher) Compare(_ context.Context, hash, data []byte) error {
	stored := string(hash)
	switch {
	case strings.HasPrefix(stored, prefixSHA256):
		if subtle.ConstantTimeCompare([]byte(HashGenerated(string(data))), hash) == 1 {
			return nil
		}
		return ErrMismatch
	case passhash.IsHash(stored):
		key := cacheKey(hash, data)
		if h.cache.has(key) {
			return nil
		}
		if wait := h.failures.exhausted(hash, time.Now()); wait > 0 {
			return &ThrottledError{RetryAfter: wait}
		}
		_, err, _ := h.inflight.Do(string(key[:]), func() (any, error) {
			// Not cancelled with the caller's request: others share this run.
			if h.slow != nil {
				h.slow <- struct{}{}
				defer func() { <-h.slow }()
			}
			// Again after the wait: failures of the checks queued
			// ahead of this one may have used up the budget.
			if wait := h.failures.exhausted(hash, time.Now()); wait > 0 {
				return nil, &ThrottledError{RetryAfter: wait}
			}
			if h.verify(stored, string(data)) != nil {
				// Spent once per run, however many callers shared it.
				h.failures.spend(hash, time.Now())
				return nil, ErrMismatch
			}
			h.cache.add(key)
			return nil, nil
		})
		return err
	default:
		// Includes the empty hash of a public client: nothing matches it.
		return ErrMismatch
	}
}

func (h *Hasher) verify(hash, secret string) error {
	if h.Verify != nil {
		return h.Verify(hash, secret)
	}
	return passhash.Verify(hash, secret)
}

// Remember records that secret is the secret of hash, as a successful
// Compare of a slow hash would, for a pair its caller has verified another
// way: configuration seeding, by its keyed memo (server/seedmemo.go), so
// that a client declared in config.yaml costs no argon2id run at all.
func (h *Hasher) Remember(hash, secret string) {
	if passhash.IsHash(hash) {
		h.cache.add(cacheKey([]byte(hash), []byte(secret)))
	}
}

// IsHash reports whether s is in one of the stored formats above.
func IsHash(s string) bool {
	return strings.HasPrefix(s, prefixSHA256) || passhash.IsHash(s)
}

func cacheKey(hash, data []byte) [32]byte {
	h := sha256.New()
	h.Write(hash)
	h.Write([]byte{0})
	h.Write(data)
	var k [32]byte
	copy(k[:], h.Sum(nil))
	return k
}

// verifiedCache is a small LRU set of verified (hash, secret) keys.
type verifiedCache struct {
	mu    sync.Mutex
	size  int
	order *list.List
	items map[[32]byte]*list.Element
}

func newVerifiedCache(size int) *verifiedCache {
	if size < 1 {
		size = 1
	}
	return &verifiedCache{size: size, order: list.New(), items: map[[32]byte]*list.Element{}}
}

func (c *verifiedCache) has(k [32]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.order.MoveToFront(e)
		return true
	}
	return false
}

func (c *verifiedCache) add(k [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[k]; ok {
		return
	}
	c.items[k] = c.order.PushFront(k)
	for c.order.Len() > c.size {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.items, oldest.Value.([32]byte))
	}
}
