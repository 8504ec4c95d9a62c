package clients_test

import (
	"context"
	"testing"

	"github.com/latchauth/latch/clients"
)

// These benchmarks back the README's claim: checking a generated secret
// (sha256$) costs about a microsecond, checking a chosen secret (argon2id)
// tens of milliseconds unless the verified-secret cache remembers it.

func BenchmarkCompareGenerated(b *testing.B) {
	ctx := context.Background()
	secret := mustGenerate(b)
	hash, data := []byte(clients.HashGenerated(secret)), []byte(secret)
	h := clients.NewHasher(100)
	b.ReportAllocs()
	for b.Loop() {
		if err := h.Compare(ctx, hash, data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompareChosenCached(b *testing.B) {
	ctx := context.Background()
	hash, data := []byte(mustHashChosen(b, "chosen")), []byte("chosen")
	h := clients.NewHasher(100)
	if err := h.Compare(ctx, hash, data); err != nil { // fills the cache
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := h.Compare(ctx, hash, data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompareChosenUncached alternates two secrets through a cache of
// one entry, so every Compare runs argon2id.
func BenchmarkCompareChosenUncached(b *testing.B) {
	ctx := context.Background()
	pairs := [2]struct{ hash, data []byte }{
		{[]byte(mustHashChosen(b, "chosen-a")), []byte("chosen-a")},
		{[]byte(mustHashChosen(b, "chosen-b")), []byte("chosen-b")},
	}
	h := clients.NewHasher(1)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		p := pairs[i%2]
		i++
		if err := h.Compare(ctx, p.hash, p.data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHashChosen(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := clients.HashChosen("chosen"); err != nil {
			b.Fatal(err)
		}
	}
}
