package clients_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ory/fosite"

	"github.com/latchauth/latch/clients"
)

// The secret paths of Manager: rotation and config seeding. Helpers are in
// manager_test.go.

func TestManagerRotateSecret(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		secret string // at Create; "" generates one
	}{
		{"generated", ""},
		{"chosen", "chosen-secret"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, dir := newManager(t)
			old := mustCreate(t, m, confidentialClient(), tc.secret)
			if !verifies(t, m, "backend", old) { // a chosen secret is now cached
				t.Fatal("the first secret does not verify")
			}
			oldHash := mustGet(t, m, "backend").SecretHash

			rotated, err := m.RotateSecret(ctx, "backend")
			if err != nil {
				t.Fatalf("RotateSecret: %v", err)
			}
			if rotated == old || !secretPattern.MatchString(rotated) {
				t.Fatalf("RotateSecret = %q, want a new generated secret", rotated)
			}
			newHash := mustGet(t, m, "backend").SecretHash
			if newHash == oldHash || !strings.HasPrefix(newHash, "sha256$") {
				t.Fatalf("stored hash after rotation = %q (was %q)", newHash, oldHash)
			}
			if verifies(t, m, "backend", old) {
				t.Fatal("the old secret still verifies")
			}
			if !verifies(t, m, "backend", rotated) {
				t.Fatal("the new secret does not verify")
			}
			assertNotOnDisk(t, dir, rotated)
		})
	}

	t.Run("public client", func(t *testing.T) {
		m, _ := newManager(t)
		mustCreate(t, m, publicClient(), "")
		secret, err := m.RotateSecret(ctx, "mobile")
		if err == nil || secret != "" {
			t.Fatalf("RotateSecret = %q, %v; want an error", secret, err)
		}
		if got := mustGet(t, m, "mobile").SecretHash; got != "" {
			t.Fatalf("public client got hash %q", got)
		}
	})

	t.Run("unknown client", func(t *testing.T) {
		m, _ := newManager(t)
		if _, err := m.RotateSecret(ctx, "nobody"); !errors.Is(err, fosite.ErrNotFound) {
			t.Fatalf("RotateSecret = %v, want ErrNotFound", err)
		}
	})
}

func TestManagerSeed(t *testing.T) {
	ctx := context.Background()

	t.Run("create, keep, change", func(t *testing.T) {
		m, dir := newManager(t)
		seed := func(secret string) string {
			t.Helper()
			c := webClient()
			c.SecretHash = ""
			if err := m.Seed(ctx, c, secret); err != nil {
				t.Fatalf("Seed: %v", err)
			}
			return mustGet(t, m, "web").SecretHash
		}

		first := seed("from-config")
		if !strings.HasPrefix(first, "$argon2id$") {
			t.Fatalf("seeded hash = %q, want argon2id", first)
		}
		if !verifies(t, m, "web", "from-config") {
			t.Fatal("the seeded secret does not verify")
		}
		if again := seed("from-config"); again != first {
			t.Fatalf("seeding the same secret re-hashed it: %q then %q", first, again)
		}
		changed := seed("changed-in-config")
		if changed == first || !strings.HasPrefix(changed, "$argon2id$") {
			t.Fatalf("hash after a new secret = %q (was %q)", changed, first)
		}
		if !verifies(t, m, "web", "changed-in-config") {
			t.Fatal("the new secret does not verify")
		}
		if verifies(t, m, "web", "from-config") {
			t.Fatal("the old secret still verifies")
		}
		assertNotOnDisk(t, dir, "from-config")
		assertNotOnDisk(t, dir, "changed-in-config")
	})

	t.Run("keeps a generated hash that matches", func(t *testing.T) {
		m, _ := newManager(t)
		secret := mustCreate(t, m, webClient(), "")
		before := mustGet(t, m, "web").SecretHash
		c := webClient()
		if err := m.Seed(ctx, c, secret); err != nil {
			t.Fatalf("Seed: %v", err)
		}
		if after := mustGet(t, m, "web").SecretHash; after != before {
			t.Fatalf("hash %q became %q", before, after)
		}
	})

	t.Run("replaces the settings", func(t *testing.T) {
		m, _ := newManager(t)
		if err := m.Seed(ctx, publicClient(), ""); err != nil {
			t.Fatalf("Seed: %v", err)
		}
		c := publicClient()
		c.Name, c.SkipConsent = "Mobile", true
		if err := m.Seed(ctx, c, ""); err != nil {
			t.Fatalf("second Seed: %v", err)
		}
		if got := mustGet(t, m, "mobile"); got.Name != "Mobile" || !got.SkipConsent {
			t.Fatalf("Seed did not replace the settings: %+v", got)
		}
	})

	invalid := []struct {
		name   string
		client func() *clients.Client
		secret string
		field  string
	}{
		{"bad grant", func() *clients.Client {
			c := webClient()
			c.GrantTypes = []string{"implicit"}
			return c
		}, "s", "grant_types[0]"},
		{"public with a secret", publicClient, "s", "secret"},
		{"confidential without a secret", func() *clients.Client {
			c := confidentialClient()
			c.SecretHash = ""
			return c
		}, "", "secret"},
	}
	for _, tc := range invalid {
		t.Run("invalid: "+tc.name, func(t *testing.T) {
			m, _ := newManager(t)
			c := tc.client()
			err := m.Seed(ctx, c, tc.secret)
			if err == nil {
				t.Fatal("Seed = nil, want an error")
			}
			if msg := err.Error(); !strings.Contains(msg, "client "+c.ID) || !strings.Contains(msg, tc.field) {
				t.Fatalf("Seed = %q, want it to name client %s and %s", msg, c.ID, tc.field)
			}
			if _, err := m.Get(ctx, c.ID); !errors.Is(err, fosite.ErrNotFound) {
				t.Fatalf("Get after a failed Seed = %v, want ErrNotFound", err)
			}
		})
	}
}
