package clients

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchauth/latch/passhash"
)

// cached reports whether (hash, secret) is in h's cache without touching
// the LRU order (has would move it to the front).
func cached(h *Hasher, hash, secret string) bool {
	h.cache.mu.Lock()
	defer h.cache.mu.Unlock()
	_, ok := h.cache.items[cacheKey([]byte(hash), []byte(secret))]
	return ok
}

// cacheLen returns how many pairs h holds, checking that the map and the
// LRU list agree.
func cacheLen(t *testing.T, h *Hasher) int {
	t.Helper()
	h.cache.mu.Lock()
	defer h.cache.mu.Unlock()
	if len(h.cache.items) != h.cache.order.Len() {
		t.Fatalf("verifiedCache: %d map items, %d list elements", len(h.cache.items), h.cache.order.Len())
	}
	return len(h.cache.items)
}

type pair struct{ hash, secret string }

func chosenPair(t *testing.T, secret string) pair {
	t.Helper()
	hash, err := HashChosen(secret)
	if err != nil {
		t.Fatalf("HashChosen: %v", err)
	}
	return pair{hash, secret}
}

func TestVerifiedCacheHit(t *testing.T) {
	ctx := context.Background()
	h := NewHasher(10)
	p := chosenPair(t, "chosen")

	if cached(h, p.hash, p.secret) {
		t.Fatal("cached before any Compare")
	}
	if err := h.Compare(ctx, []byte(p.hash), []byte(p.secret)); err != nil {
		t.Fatalf("first Compare: %v", err)
	}
	if !cached(h, p.hash, p.secret) || cacheLen(t, h) != 1 {
		t.Fatalf("after one success: cached=%v len=%d, want true 1", cached(h, p.hash, p.secret), cacheLen(t, h))
	}
	if !h.cache.has(cacheKey([]byte(p.hash), []byte(p.secret))) {
		t.Fatal("has = false after a success")
	}
	if err := h.Compare(ctx, []byte(p.hash), []byte(p.secret)); err != nil {
		t.Fatalf("second Compare: %v", err)
	}
	if n := cacheLen(t, h); n != 1 {
		t.Fatalf("after a hit: len = %d, want 1", n)
	}
}

func TestVerifiedCacheNeverHoldsFailures(t *testing.T) {
	ctx := context.Background()
	p := chosenPair(t, "chosen")
	generated, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, hash, secret string
	}{
		{"wrong secret", p.hash, "chosen!"},
		{"empty secret", p.hash, ""},
		{"malformed argon2", p.hash[:30], p.secret},
		{"public client", "", ""},
		// The fast format needs no cache: nothing is added even on success.
		{"generated, right secret", HashGenerated(generated), generated},
		{"generated, wrong secret", HashGenerated(generated), "x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHasher(10)
			_ = h.Compare(ctx, []byte(tc.hash), []byte(tc.secret))
			if n := cacheLen(t, h); n != 0 {
				t.Fatalf("cache len = %d, want 0", n)
			}
		})
	}
}

func TestVerifiedCacheLRU(t *testing.T) {
	ctx := context.Background()
	a, b, c := chosenPair(t, "a"), chosenPair(t, "b"), chosenPair(t, "c")

	tests := []struct {
		name       string
		size       int
		verify     []pair
		wantIn     []pair
		wantOut    []pair
		wantLength int
	}{
		{
			name: "bound", size: 2,
			verify: []pair{a, b, c}, wantIn: []pair{b, c}, wantOut: []pair{a}, wantLength: 2,
		},
		{
			name: "a hit refreshes", size: 2,
			verify: []pair{a, b, a, c}, wantIn: []pair{a, c}, wantOut: []pair{b}, wantLength: 2,
		},
		{
			name: "size 1", size: 1,
			verify: []pair{a, b}, wantIn: []pair{b}, wantOut: []pair{a}, wantLength: 1,
		},
		{
			name: "size 0 is size 1", size: 0,
			verify: []pair{a, b}, wantIn: []pair{b}, wantOut: []pair{a}, wantLength: 1,
		},
		{
			name: "negative size is size 1", size: -5,
			verify: []pair{a}, wantIn: []pair{a}, wantLength: 1,
		},
		{
			name: "room for all", size: 10,
			verify: []pair{a, b, c, a, b, c}, wantIn: []pair{a, b, c}, wantLength: 3,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHasher(tc.size)
			for i, p := range tc.verify {
				if err := h.Compare(ctx, []byte(p.hash), []byte(p.secret)); err != nil {
					t.Fatalf("verify %d (%s): %v", i, p.secret, err)
				}
			}
			if n := cacheLen(t, h); n != tc.wantLength {
				t.Errorf("len = %d, want %d", n, tc.wantLength)
			}
			for _, p := range tc.wantIn {
				if !cached(h, p.hash, p.secret) {
					t.Errorf("%s not cached, want cached", p.secret)
				}
			}
			for _, p := range tc.wantOut {
				if cached(h, p.hash, p.secret) {
					t.Errorf("%s cached, want evicted", p.secret)
				}
			}
		})
	}
}

func TestVerifiedCacheOrder(t *testing.T) {
	c := newVerifiedCache(3)
	k := func(b byte) [32]byte { return [32]byte{b} }
	order := func() []byte {
		var out []byte
		for e := c.order.Front(); e != nil; e = e.Next() {
			out = append(out, e.Value.([32]byte)[0])
		}
		return out
	}
	steps := []struct {
		name string
		do   func()
		want []byte // most recent first
	}{
		{"add 1", func() { c.add(k(1)) }, []byte{1}},
		{"add 2", func() { c.add(k(2)) }, []byte{2, 1}},
		{"add 3", func() { c.add(k(3)) }, []byte{3, 2, 1}},
		{"has 1 moves it to the front", func() { c.has(k(1)) }, []byte{1, 3, 2}},
		{"has of a missing key changes nothing", func() { c.has(k(9)) }, []byte{1, 3, 2}},
		{"add 2 again changes nothing", func() { c.add(k(2)) }, []byte{1, 3, 2}},
		{"add 4 evicts the least recent (2)", func() { c.add(k(4)) }, []byte{4, 1, 3}},
		{"add 5 evicts 3", func() { c.add(k(5)) }, []byte{5, 4, 1}},
	}
	for _, s := range steps {
		s.do()
		if got := order(); !slices.Equal(got, s.want) {
			t.Fatalf("%s: order = %v, want %v", s.name, got, s.want)
		}
		if len(c.items) != c.order.Len() {
			t.Fatalf("%s: %d items, %d list elements", s.name, len(c.items), c.order.Len())
		}
	}
	if c.has(k(2)) || c.has(k(3)) {
		t.Fatal("evicted keys still found")
	}
}

// TestCacheKeyCoversHash: the same secret under two stored hashes gives two
// keys, so a rotated hash is verified afresh.
func TestCacheKeyCoversHash(t *testing.T) {
	ctx := context.Background()
	h := NewHasher(10)
	old, rotated := chosenPair(t, "same"), chosenPair(t, "same")
	if cacheKey([]byte(old.hash), []byte("same")) == cacheKey([]byte(rotated.hash), []byte("same")) {
		t.Fatal("cache key ignores the stored hash")
	}
	if cacheKey([]byte("ab"), []byte("c")) == cacheKey([]byte("a"), []byte("bc")) {
		t.Fatal("cache key does not separate hash and secret")
	}
	for _, p := range []pair{old, rotated} {
		if err := h.Compare(ctx, []byte(p.hash), []byte(p.secret)); err != nil {
			t.Fatal(err)
		}
	}
	if n := cacheLen(t, h); n != 2 {
		t.Fatalf("len = %d, want 2 (one per stored hash)", n)
	}
	if err := h.Compare(ctx, []byte(old.hash), []byte("other")); !errors.Is(err, ErrMismatch) {
		t.Fatalf("old hash, wrong secret: %v, want ErrMismatch", err)
	}
}

// TestCompareSharesSlowChecks: a burst of checks of one chosen secret runs
// argon2id once, and never more slow checks at once than the limit.
func TestCompareSharesSlowChecks(t *testing.T) {
	hash, err := HashChosen("a chosen secret")
	if err != nil {
		t.Fatal(err)
	}
	var runs, running, most atomic.Int64
	h := NewHasher(100)
	// This test is about sharing runs, not the failure budget.
	h.failures = newFailureBudgets(1000, time.Second)
	h.Verify = func(hash, s string) error {
		runs.Add(1)
		n := running.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		defer running.Add(-1)
		time.Sleep(20 * time.Millisecond)
		return passhash.Verify(hash, s)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			secret := "a chosen secret"
			if i%2 == 1 {
				secret = fmt.Sprintf("wrong %d", i) // distinct: not shared
			}
			err := h.Compare(t.Context(), []byte(hash), []byte(secret))
			if (err == nil) != (i%2 == 0) {
				errs <- fmt.Errorf("check %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := runs.Load(); got > 32+2 {
		t.Fatalf("%d argon2id runs for 32 wrong secrets and one right one shared", got)
	}
	if limit := int64(cap(h.slow)); most.Load() > limit {
		t.Fatalf("%d slow checks at once, limit %d", most.Load(), limit)
	}
}
