package clients_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ory/fosite"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/storage"
)

// newManager returns a Manager over a fresh, migrated SQLite store and the
// directory holding its files.
func newManager(t *testing.T) (*clients.Manager, string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := storage.Open(ctx, storage.Options{Driver: "sqlite", DSN: filepath.Join(dir, "latch.db")})
	if err != nil {
		t.Fatalf("storage.Open: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return &clients.Manager{Store: st, Hasher: clients.NewHasher(100)}, dir
}

func mustGet(t *testing.T, m *clients.Manager, id string) *clients.Client {
	t.Helper()
	c, err := m.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return c
}

func mustCreate(t *testing.T, m *clients.Manager, c *clients.Client, secret string) string {
	t.Helper()
	got, err := m.Create(context.Background(), c, secret)
	if err != nil {
		t.Fatalf("Create(%s): %v", c.ID, err)
	}
	return got
}

// verifies reports whether secret matches id's stored hash.
func verifies(t *testing.T, m *clients.Manager, id, secret string) bool {
	t.Helper()
	c := mustGet(t, m, id)
	return m.Hasher.Compare(context.Background(), c.GetHashedSecret(), []byte(secret)) == nil
}

// assertNotOnDisk fails if s occurs in any file of the database directory
// (the main file, the WAL and the shared memory file).
func assertNotOnDisk(t *testing.T, dir, s string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	read := 0
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		read += len(data)
		if bytes.Contains(data, []byte(s)) {
			t.Errorf("%s holds the clear secret", e.Name())
		}
	}
	if read == 0 {
		t.Fatal("no database bytes to search")
	}
}

func TestManagerCreate(t *testing.T) {
	ctx := context.Background()
	jwks := rsaJWKS(t)
	tests := []struct {
		name       string
		client     func() *clients.Client
		secret     string
		wantPrefix string // of the stored hash; "" for none
		wantSecret bool   // a secret is returned
	}{
		{"confidential, generated secret", confidentialClient, "", "sha256$", true},
		{"confidential, chosen secret", confidentialClient, "chosen-secret", "$argon2id$v=19$m=19456,t=2,p=1$", true},
		{"client_secret_post, generated", webClient, "", "sha256$", true},
		{"public, no secret", publicClient, "", "", false},
		{"private_key_jwt, no secret", func() *clients.Client {
			return &clients.Client{ID: "signer", GrantTypes: []string{clients.GrantClientCredentials},
				TokenEndpointAuthMethod: clients.AuthMethodPrivateKey, JWKS: jwks}
		}, "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, dir := newManager(t)
			c := tc.client()
			c.SecretHash = "sha256$ignored" // Create replaces whatever the caller set
			secret := mustCreate(t, m, c, tc.secret)

			if (secret != "") != tc.wantSecret {
				t.Fatalf("Create returned secret %q, want one: %v", secret, tc.wantSecret)
			}
			if tc.secret != "" && secret != tc.secret {
				t.Fatalf("Create returned %q, want the chosen secret back", secret)
			}
			if tc.secret == "" && tc.wantSecret && !secretPattern.MatchString(secret) {
				t.Fatalf("generated secret %q is not 43 URL-safe characters", secret)
			}

			stored := mustGet(t, m, c.ID)
			switch {
			case tc.wantPrefix == "" && stored.SecretHash != "":
				t.Fatalf("stored hash = %q, want none", stored.SecretHash)
			case !strings.HasPrefix(stored.SecretHash, tc.wantPrefix):
				t.Fatalf("stored hash = %q, want prefix %q", stored.SecretHash, tc.wantPrefix)
			}
			if stored.SecretHash != c.SecretHash {
				t.Fatalf("stored hash %q, Create left %q in the client", stored.SecretHash, c.SecretHash)
			}
			if secret != "" {
				if !verifies(t, m, c.ID, secret) {
					t.Fatal("the returned secret does not verify against the stored hash")
				}
				if verifies(t, m, c.ID, secret+"x") || verifies(t, m, c.ID, "") {
					t.Fatal("a wrong secret verifies")
				}
				assertNotOnDisk(t, dir, secret)
				all, err := m.List(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range all {
					if strings.Contains(c.SecretHash, secret) || strings.Contains(c.Name, secret) {
						t.Fatalf("listed client %s holds the clear secret", c.ID)
					}
				}
			}
		})
	}
}

func TestManagerCreateFails(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		client func() *clients.Client
		secret string
		want   string // in the error
	}{
		{"public with a secret", publicClient, "chosen", "secret"},
		{"invalid grant", func() *clients.Client {
			c := confidentialClient()
			c.GrantTypes = []string{"implicit"}
			return c
		}, "", "grant_types[0]"},
		{"relative redirect URI", func() *clients.Client {
			c := webClient()
			c.RedirectURIs = []string{"/cb"}
			return c
		}, "chosen", "redirect_uris[0]"},
		{"empty id", func() *clients.Client {
			c := confidentialClient()
			c.ID = ""
			return c
		}, "", "id"},
		{"unknown auth method", func() *clients.Client {
			c := confidentialClient()
			c.TokenEndpointAuthMethod = "tls_client_auth"
			return c
		}, "", "token_endpoint_auth_method"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, dir := newManager(t)
			c := tc.client()
			secret, err := m.Create(ctx, c, tc.secret)
			if err == nil {
				t.Fatal("Create = nil, want an error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Create = %q, want it to name %s", err, tc.want)
			}
			if secret != "" {
				t.Fatalf("a failed Create returned secret %q", secret)
			}
			all, err := m.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(all) != 0 {
				t.Fatalf("a failed Create stored %d clients", len(all))
			}
			if c.ID != "" {
				if _, err := m.Get(ctx, c.ID); !errors.Is(err, fosite.ErrNotFound) {
					t.Fatalf("Get after a failed Create = %v, want ErrNotFound", err)
				}
			}
			if tc.secret != "" {
				assertNotOnDisk(t, dir, tc.secret)
			}
		})
	}
}

func TestManagerCreateDuplicate(t *testing.T) {
	ctx := context.Background()
	m, _ := newManager(t)
	first := mustCreate(t, m, confidentialClient(), "")
	before := mustGet(t, m, "backend").SecretHash

	second, err := m.Create(ctx, confidentialClient(), "")
	if !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("second Create = %v, want ErrAlreadyExists", err)
	}
	if second != "" {
		t.Fatalf("a failed Create returned secret %q", second)
	}
	if after := mustGet(t, m, "backend").SecretHash; after != before {
		t.Fatalf("the duplicate Create changed the stored hash")
	}
	if !verifies(t, m, "backend", first) {
		t.Fatal("the first secret stopped working")
	}
}

func TestManagerUpdate(t *testing.T) {
	ctx := context.Background()

	t.Run("keeps the secret hash", func(t *testing.T) {
		m, _ := newManager(t)
		secret := mustCreate(t, m, webClient(), "")
		before := mustGet(t, m, "web")

		// As the admin API or the CLI would: a client decoded from JSON,
		// so without a hash.
		c := webClient()
		c.SecretHash = ""
		c.Name = "Renamed"
		c.RedirectURIs = []string{"https://new.example.com/cb"}
		if err := m.Update(ctx, c); err != nil {
			t.Fatalf("Update: %v", err)
		}
		after := mustGet(t, m, "web")
		if after.SecretHash != before.SecretHash {
			t.Fatalf("hash %q became %q", before.SecretHash, after.SecretHash)
		}
		if after.Name != "Renamed" || len(after.RedirectURIs) != 1 || after.RedirectURIs[0] != "https://new.example.com/cb" {
			t.Fatalf("Update did not store the change: %+v", after)
		}
		if !after.CreatedAt.Equal(before.CreatedAt) {
			t.Fatalf("CreatedAt %v became %v", before.CreatedAt, after.CreatedAt)
		}
		if !verifies(t, m, "web", secret) {
			t.Fatal("the secret stopped working")
		}
	})

	t.Run("to public drops the secret", func(t *testing.T) {
		m, _ := newManager(t)
		secret := mustCreate(t, m, webClient(), "")
		c := webClient()
		c.TokenEndpointAuthMethod = clients.AuthMethodNone
		if err := m.Update(ctx, c); err != nil {
			t.Fatalf("Update: %v", err)
		}
		if got := mustGet(t, m, "web").SecretHash; got != "" {
			t.Fatalf("public client kept hash %q", got)
		}
		if verifies(t, m, "web", secret) {
			t.Fatal("the old secret still verifies")
		}
	})

	t.Run("invalid change stores nothing", func(t *testing.T) {
		m, _ := newManager(t)
		mustCreate(t, m, webClient(), "")
		before := mustGet(t, m, "web")
		c := webClient()
		c.SecretHash = ""
		c.RedirectURIs = []string{"https://x.example.com/cb#frag"}
		err := m.Update(ctx, c)
		if err == nil || !strings.Contains(err.Error(), "redirect_uris[0]") {
			t.Fatalf("Update = %v, want a redirect_uris[0] problem", err)
		}
		after := mustGet(t, m, "web")
		if after.RedirectURIs[0] != before.RedirectURIs[0] || after.SecretHash != before.SecretHash {
			t.Fatalf("a failed Update changed the client: %+v", after)
		}
	})

	t.Run("unknown client", func(t *testing.T) {
		m, _ := newManager(t)
		if err := m.Update(ctx, webClient()); !errors.Is(err, fosite.ErrNotFound) {
			t.Fatalf("Update = %v, want ErrNotFound", err)
		}
	})
}

func TestManagerDelete(t *testing.T) {
	ctx := context.Background()
	m, _ := newManager(t)
	mustCreate(t, m, confidentialClient(), "")
	mustCreate(t, m, publicClient(), "")

	if err := m.Delete(ctx, "backend"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := m.Get(ctx, "backend"); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
	}
	if err := m.Delete(ctx, "backend"); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("second Delete = %v, want ErrNotFound", err)
	}
	all, err := m.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all[0].ID != "mobile" {
		t.Fatalf("List after Delete = %v, want only mobile", all)
	}
	// The id is free again.
	mustCreate(t, m, confidentialClient(), "")
}

func TestManagerList(t *testing.T) {
	ctx := context.Background()
	m, _ := newManager(t)
	for _, c := range []*clients.Client{webClient(), confidentialClient(), publicClient()} {
		mustCreate(t, m, c, "")
	}
	all, err := m.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range all {
		ids = append(ids, c.ID)
	}
	if got := strings.Join(ids, ","); got != "backend,mobile,web" {
		t.Fatalf("List = %s, want backend,mobile,web (sorted)", got)
	}
}
