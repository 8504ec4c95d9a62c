package clients_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/latchauth/latch/clients"
)

var (
	secretPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
	argonPattern  = regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
)

// compare calls h.Compare and turns a panic into an error, so one bad
// input fails its own subtest instead of the whole test binary.
func compare(h *clients.Hasher, hash, secret string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return h.Compare(context.Background(), []byte(hash), []byte(secret))
}

func mustGenerate(t testing.TB) string {
	t.Helper()
	s, err := clients.GenerateSecret()
	if err != nil {
		t.Fatalf("GenerateSecret: %v", err)
	}
	return s
}

func mustHashChosen(t testing.TB, secret string) string {
	t.Helper()
	h, err := clients.HashChosen(secret)
	if err != nil {
		t.Fatalf("HashChosen: %v", err)
	}
	return h
}

func mustBcrypt(t testing.TB, secret string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(secret), 4)
	if err != nil {
		t.Fatalf("bcrypt: %v", err)
	}
	return string(h)
}

func TestGenerateSecret(t *testing.T) {
	seen := map[string]bool{}
	for i := range 100 {
		s := mustGenerate(t)
		if !secretPattern.MatchString(s) {
			t.Fatalf("secret %d = %q: want 43 URL-safe base64 characters", i, s)
		}
		if seen[s] {
			t.Fatalf("secret %d = %q was already generated", i, s)
		}
		seen[s] = true
	}
}

func TestHashGenerated(t *testing.T) {
	secret := mustGenerate(t)
	hash := clients.HashGenerated(secret)
	if !strings.HasPrefix(hash, "sha256$") {
		t.Fatalf("HashGenerated = %q: want prefix sha256$", hash)
	}
	if strings.Contains(hash, secret) {
		t.Fatalf("HashGenerated = %q contains the secret", hash)
	}
	if again := clients.HashGenerated(secret); again != hash {
		t.Fatalf("HashGenerated is not deterministic: %q then %q", hash, again)
	}
	if !clients.IsHash(hash) {
		t.Fatalf("IsHash(%q) = false", hash)
	}

	tests := []struct {
		name   string
		secret string
		ok     bool
	}{
		{"the secret", secret, true},
		{"another generated secret", mustGenerate(t), false},
		{"empty", "", false},
		{"prefix of it", secret[:42], false},
		{"first character", secret[:1], false},
		{"secret with a suffix", secret + "x", false},
		{"different case", strings.ToUpper(secret), strings.ToUpper(secret) == secret},
		{"the hash itself", hash, false},
	}
	h := clients.NewHasher(10)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := compare(h, hash, tc.secret)
			switch {
			case tc.ok && err != nil:
				t.Fatalf("Compare = %v, want nil", err)
			case !tc.ok && !errors.Is(err, clients.ErrMismatch):
				t.Fatalf("Compare = %v, want ErrMismatch", err)
			}
		})
	}
}

func TestHashChosen(t *testing.T) {
	const secret = "change-me"
	first := mustHashChosen(t, secret)
	second := mustHashChosen(t, secret)
	for _, hash := range []string{first, second} {
		if !argonPattern.MatchString(hash) {
			t.Fatalf("HashChosen = %q: want %s", hash, argonPattern)
		}
		if !clients.IsHash(hash) {
			t.Fatalf("IsHash(%q) = false", hash)
		}
	}
	if first == second {
		t.Fatalf("two hashes of one secret are equal (%q): the salt is not random", first)
	}

	tests := []struct {
		name   string
		hash   string
		secret string
		ok     bool
	}{
		{"first hash, right secret", first, secret, true},
		{"second hash, right secret", second, secret, true},
		{"wrong secret", first, "change-me!", false},
		{"empty secret", first, "", false},
		{"prefix of the secret", second, "change", false},
	}
	h := clients.NewHasher(10)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := compare(h, tc.hash, tc.secret)
			switch {
			case tc.ok && err != nil:
				t.Fatalf("Compare = %v, want nil", err)
			case !tc.ok && !errors.Is(err, clients.ErrMismatch):
				t.Fatalf("Compare = %v, want ErrMismatch", err)
			}
		})
	}
}

// TestHasherHash checks the fosite.Hasher side: what Hash makes, Compare
// accepts.
func TestHasherHash(t *testing.T) {
	ctx := context.Background()
	h := clients.NewHasher(10)
	hash, err := h.Hash(ctx, []byte("s3cret"))
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	if !argonPattern.Match(hash) {
		t.Fatalf("Hash = %q: want argon2id", hash)
	}
	if err := h.Compare(ctx, hash, []byte("s3cret")); err != nil {
		t.Fatalf("Compare(right) = %v", err)
	}
	if err := h.Compare(ctx, hash, []byte("s3cre")); !errors.Is(err, clients.ErrMismatch) {
		t.Fatalf("Compare(wrong) = %v, want ErrMismatch", err)
	}
}

func TestCompareBcrypt(t *testing.T) {
	const secret = "imported-secret"
	hash := mustBcrypt(t, secret) // $2a$
	rest := strings.TrimPrefix(hash, "$2a$")
	if rest == hash {
		t.Fatalf("bcrypt hash %q does not start with $2a$", hash)
	}

	tests := []struct {
		name   string
		hash   string
		secret string
		ok     bool
	}{
		{"2a right secret", hash, secret, true},
		{"2b right secret", "$2b$" + rest, secret, true},
		{"2y right secret", "$2y$" + rest, secret, true},
		{"wrong secret", hash, "imported-secreT", false},
		{"empty secret", hash, "", false},
		{"prefix of the secret", hash, "imported", false},
	}
	h := clients.NewHasher(10)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !clients.IsHash(tc.hash) {
				t.Fatalf("IsHash(%q) = false", tc.hash)
			}
			err := compare(h, tc.hash, tc.secret)
			switch {
			case tc.ok && err != nil:
				t.Fatalf("Compare = %v, want nil", err)
			case !tc.ok && !errors.Is(err, clients.ErrMismatch):
				t.Fatalf("Compare = %v, want ErrMismatch", err)
			}
		})
	}
}

// TestCompareMalformed feeds stored hashes that are broken or hostile: each
// must be refused with ErrMismatch, never accepted and never a panic (a
// panic in the token endpoint is a 500 for every request of that client).
func TestCompareMalformed(t *testing.T) {
	const secret = "change-me"
	valid := mustHashChosen(t, secret)
	parts := strings.Split(valid, "$") // "", argon2id, v=19, m=...,t=...,p=..., salt, key
	salt, key := parts[4], parts[5]
	argon := func(version, params, salt, key string) string {
		return "$argon2id$" + version + "$" + params + "$" + salt + "$" + key
	}
	bc := mustBcrypt(t, secret)

	tests := []struct {
		name string
		hash string
	}{
		{"empty", ""},
		{"sha256 prefix only", "sha256$"},
		{"sha256 of the secret without prefix", strings.TrimPrefix(clients.HashGenerated(secret), "sha256$")},
		{"sha256 truncated", clients.HashGenerated(secret)[:20]},
		{"unknown prefix", "$pbkdf2-sha256$29000$" + salt + "$" + key},
		{"plaintext secret", secret},
		{"argon2id prefix only", "$argon2id$"},
		{"argon2 truncated", valid[:len(valid)/2]},
		{"argon2 without key", argon("v=19", "m=19456,t=2,p=1", salt, "")},
		{"argon2 extra field", valid + "$x"},
		{"argon2 old version", argon("v=16", "m=19456,t=2,p=1", salt, key)},
		{"argon2 version garbage", argon("v=x", "m=19456,t=2,p=1", salt, key)},
		{"argon2 absurd memory", argon("v=19", "m=99999999,t=2,p=1", salt, key)},
		{"argon2 memory over uint32", argon("v=19", "m=99999999999,t=2,p=1", salt, key)},
		{"argon2 negative memory", argon("v=19", "m=-1,t=2,p=1", salt, key)},
		{"argon2 absurd time", argon("v=19", "m=19456,t=1000,p=1", salt, key)},
		{"argon2 zero time", argon("v=19", "m=19456,t=0,p=1", salt, key)},
		{"argon2 zero threads", argon("v=19", "m=19456,t=2,p=0", salt, key)},
		{"argon2 threads over uint8", argon("v=19", "m=19456,t=2,p=256", salt, key)},
		{"argon2 params garbage", argon("v=19", "memory", salt, key)},
		{"argon2 salt not base64", argon("v=19", "m=19456,t=2,p=1", "!!!", key)},
		{"argon2 key not base64", argon("v=19", "m=19456,t=2,p=1", salt, "!!!")},
		{"argon2 other parameters", argon("v=19", "m=19456,t=3,p=1", salt, key)},
		{"argon2i", strings.Replace(valid, "$argon2id$", "$argon2i$", 1)},
		{"bcrypt truncated", bc[:len(bc)-10]},
		{"bcrypt prefix only", "$2a$"},
		{"bcrypt absurd cost", "$2a$99$" + bc[7:]},
	}
	h := clients.NewHasher(10)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, s := range []string{secret, "", tc.hash} {
				if err := compare(h, tc.hash, s); !errors.Is(err, clients.ErrMismatch) {
					t.Errorf("Compare(%q, %q) = %v, want ErrMismatch", tc.hash, s, err)
				}
			}
		})
	}
}

// TestComparePublicClient: a public client's stored hash is empty and no
// secret, not even the empty one, matches it.
func TestComparePublicClient(t *testing.T) {
	h := clients.NewHasher(10)
	for _, s := range []string{"", " ", "sha256$", mustGenerate(t)} {
		t.Run(fmt.Sprintf("%q", s), func(t *testing.T) {
			if err := compare(h, "", s); !errors.Is(err, clients.ErrMismatch) {
				t.Fatalf("Compare(\"\", %q) = %v, want ErrMismatch", s, err)
			}
		})
	}
}

// TestCompareCacheBehaviour observes the verified-secret cache from outside:
// it must never change an answer.
func TestCompareCacheBehaviour(t *testing.T) {
	const a, b = "secret-a", "secret-b"

	t.Run("size 1 evicts but stays correct", func(t *testing.T) {
		h := clients.NewHasher(1)
		hashA, hashB := mustHashChosen(t, a), mustHashChosen(t, b)
		steps := []struct {
			hash, secret string
			ok           bool
		}{
			{hashA, a, true},
			{hashB, b, true},
			{hashA, a, true}, // A was evicted by B: verified again
			{hashA, a, true}, // now a hit
			{hashA, b, false},
			{hashB, a, false},
			{hashB, b, true},
		}
		for i, s := range steps {
			err := compare(h, s.hash, s.secret)
			if s.ok != (err == nil) || (!s.ok && !errors.Is(err, clients.ErrMismatch)) {
				t.Fatalf("step %d: Compare = %v, want ok=%v", i, err, s.ok)
			}
		}
	})

	t.Run("failure is not cached", func(t *testing.T) {
		h := clients.NewHasher(10)
		hash := mustHashChosen(t, a)
		for i := range 2 {
			if err := compare(h, hash, b); !errors.Is(err, clients.ErrMismatch) {
				t.Fatalf("wrong secret, try %d: Compare = %v, want ErrMismatch", i, err)
			}
		}
		if err := compare(h, hash, a); err != nil {
			t.Fatalf("right secret after failures: Compare = %v", err)
		}
		if err := compare(h, hash, b); !errors.Is(err, clients.ErrMismatch) {
			t.Fatalf("wrong secret after a success: Compare = %v, want ErrMismatch", err)
		}
	})

	t.Run("rotation", func(t *testing.T) {
		h := clients.NewHasher(10)
		old := mustHashChosen(t, a)
		if err := compare(h, old, a); err != nil {
			t.Fatalf("old hash, old secret: %v", err)
		}
		// The secret is rotated to b: the cached (old, a) must not let a in.
		rotated := mustHashChosen(t, b)
		if err := compare(h, rotated, a); !errors.Is(err, clients.ErrMismatch) {
			t.Fatalf("new hash, old secret: Compare = %v, want ErrMismatch", err)
		}
		if err := compare(h, rotated, b); err != nil {
			t.Fatalf("new hash, new secret: %v", err)
		}
		// Re-hashing the same secret (new salt) is verified afresh and works.
		rehashed := mustHashChosen(t, a)
		if err := compare(h, rehashed, a); err != nil {
			t.Fatalf("re-hashed, same secret: %v", err)
		}
		if err := compare(h, old, b); !errors.Is(err, clients.ErrMismatch) {
			t.Fatalf("old hash, wrong secret: Compare = %v, want ErrMismatch", err)
		}
		// A generated hash replacing a chosen one: the chosen secret is dead.
		gen := mustGenerate(t)
		if err := compare(h, clients.HashGenerated(gen), a); !errors.Is(err, clients.ErrMismatch) {
			t.Fatalf("generated hash, old chosen secret: Compare = %v, want ErrMismatch", err)
		}
	})
}

// TestCompareConcurrent runs 16 goroutines over a Hasher small enough to
// evict all the time; run it with -race.
func TestCompareConcurrent(t *testing.T) {
	const chosenA, chosenB, imported = "chosen-a", "chosen-b", "imported"
	generated := mustGenerate(t)
	cases := []struct {
		name, hash, secret string
		ok                 bool
	}{
		{"argon2 a", mustHashChosen(t, chosenA), chosenA, true},
		{"argon2 b", mustHashChosen(t, chosenB), chosenB, true},
		{"bcrypt", mustBcrypt(t, imported), imported, true},
		{"generated", clients.HashGenerated(generated), generated, true},
		{"bcrypt wrong", mustBcrypt(t, imported), chosenA, false},
		{"generated wrong", clients.HashGenerated(generated), chosenA, false},
		{"public", "", "", false},
	}
	cases = append(cases, struct {
		name, hash, secret string
		ok                 bool
	}{"argon2 a wrong", cases[0].hash, chosenB, false})

	h := clients.NewHasher(2)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range len(cases) {
				c := cases[(g+i)%len(cases)]
				err := compare(h, c.hash, c.secret)
				if c.ok != (err == nil) {
					t.Errorf("goroutine %d, %s: Compare = %v, want ok=%v", g, c.name, err, c.ok)
				}
			}
		})
	}
	wg.Wait()
}
