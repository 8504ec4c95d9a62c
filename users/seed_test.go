package users_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/passhash"
	"github.com/latchauth/latch/storage"
	"github.com/latchauth/latch/users"
)

// newStore opens a fresh migrated SQLite store in its own directory and
// returns it with that directory.
func newStore(t *testing.T) (*storage.GormStore, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := storage.Open(t.Context(), storage.Options{Driver: "sqlite", DSN: filepath.Join(dir, "u.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return st, dir
}

func getUser(t *testing.T, st storage.UserStore, name string) *storage.User {
	t.Helper()
	u, err := st.GetUser(t.Context(), name)
	if err != nil {
		t.Fatalf("GetUser(%q): %v", name, err)
	}
	return u
}

func mustHash(t *testing.T, secret string) string {
	t.Helper()
	h, err := passhash.Hash(secret)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestSeed(t *testing.T) {
	bc, err := bcrypt.GenerateFromPassword([]byte("bob-password"), 4)
	if err != nil {
		t.Fatal(err)
	}
	argon := mustHash(t, "carol-password")
	tests := []struct {
		name     string
		in       config.User
		password string // the password that must verify afterwards
		wantHash string // "" = any fresh argon2id hash
	}{
		{
			name: "password",
			in: config.User{Username: "alice", Password: "alice-password", Email: "alice@example.com", EmailVerified: true,
				Name: "Alice Example", Groups: []string{"admins"}, Claims: map[string]any{"department": "engineering"}},
			password: "alice-password",
		},
		{name: "bcrypt password_hash", in: config.User{Username: "bob", PasswordHash: string(bc)}, password: "bob-password", wantHash: string(bc)},
		{name: "argon2id password_hash", in: config.User{Username: "carol", PasswordHash: argon}, password: "carol-password", wantHash: argon},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, _ := newStore(t)
			if err := users.Seed(t.Context(), st, []config.User{tt.in}); err != nil {
				t.Fatal(err)
			}
			u := getUser(t, st, tt.in.Username)
			if tt.wantHash != "" && u.PasswordHash != tt.wantHash {
				t.Errorf("stored hash %q, want it as given %q", u.PasswordHash, tt.wantHash)
			}
			if tt.wantHash == "" && passhash.NeedsRehash(u.PasswordHash) {
				t.Errorf("stored hash %q is not a current argon2id hash", u.PasswordHash)
			}
			if err := passhash.Verify(u.PasswordHash, tt.password); err != nil {
				t.Errorf("stored hash does not verify the password: %v", err)
			}
			if u.Email != tt.in.Email || u.EmailVerified != tt.in.EmailVerified || u.Name != tt.in.Name ||
				len(u.Groups) != len(tt.in.Groups) || len(u.Claims) != len(tt.in.Claims) {
				t.Errorf("stored profile %+v does not match %+v", u, tt.in)
			}
			a := &users.Authenticator{Store: st}
			if _, err := a.Authenticate(t.Context(), tt.in.Username, tt.password, "192.0.2.1:1234"); err != nil {
				t.Errorf("Authenticate after Seed: %v", err)
			}
		})
	}
}

func TestSeedKeepsOrReplacesHash(t *testing.T) {
	alice := config.User{Username: "alice", Password: "first-password", Email: "alice@example.com",
		Groups: []string{"a"}, Claims: map[string]any{"n": 1, "nested": map[string]any{"k": []any{"v"}}}}
	st, _ := newStore(t)
	ctx := t.Context()
	if err := users.Seed(ctx, st, []config.User{alice}); err != nil {
		t.Fatal(err)
	}
	first := getUser(t, st, "alice")

	t.Run("re-seed keeps the hash and the row", func(t *testing.T) {
		if err := users.Seed(ctx, st, []config.User{alice}); err != nil {
			t.Fatal(err)
		}
		again := getUser(t, st, "alice")
		if again.PasswordHash != first.PasswordHash {
			t.Fatal("re-seeding the same password re-hashed it")
		}
		if !again.UpdatedAt.Equal(first.UpdatedAt) {
			t.Errorf("an unchanged user was rewritten: UpdatedAt %v -> %v", first.UpdatedAt, again.UpdatedAt)
		}
	})
	t.Run("changed profile keeps the hash", func(t *testing.T) {
		changed := alice
		changed.Email = "alice@example.org"
		if err := users.Seed(ctx, st, []config.User{changed}); err != nil {
			t.Fatal(err)
		}
		u := getUser(t, st, "alice")
		if u.PasswordHash != first.PasswordHash || u.Email != "alice@example.org" {
			t.Fatalf("got hash changed=%v email %q", u.PasswordHash != first.PasswordHash, u.Email)
		}
		if !u.CreatedAt.Equal(first.CreatedAt) {
			t.Errorf("CreatedAt moved: %v -> %v", first.CreatedAt, u.CreatedAt)
		}
	})
	t.Run("changed password re-hashes", func(t *testing.T) {
		changed := alice
		changed.Password = "second-password"
		if err := users.Seed(ctx, st, []config.User{changed}); err != nil {
			t.Fatal(err)
		}
		u := getUser(t, st, "alice")
		if u.PasswordHash == first.PasswordHash {
			t.Fatal("hash unchanged after a password change")
		}
		if passhash.Verify(u.PasswordHash, "second-password") != nil || passhash.Verify(u.PasswordHash, "first-password") == nil {
			t.Fatal("new hash does not verify the new password only")
		}
	})
	t.Run("bcrypt hash of the same password is upgraded", func(t *testing.T) {
		bc, _ := bcrypt.GenerateFromPassword([]byte("third-password"), 4)
		withHash := alice
		withHash.Password, withHash.PasswordHash = "", string(bc)
		if err := users.Seed(ctx, st, []config.User{withHash}); err != nil {
			t.Fatal(err)
		}
		if getUser(t, st, "alice").PasswordHash != string(bc) {
			t.Fatal("password_hash not taken as is")
		}
		withPassword := alice
		withPassword.Password = "third-password"
		if err := users.Seed(ctx, st, []config.User{withPassword}); err != nil {
			t.Fatal(err)
		}
		h := getUser(t, st, "alice").PasswordHash
		if passhash.NeedsRehash(h) || passhash.Verify(h, "third-password") != nil {
			t.Fatalf("bcrypt hash %q not replaced by a current argon2id hash", h)
		}
	})
}

func TestSeedRejects(t *testing.T) {
	tests := []struct {
		name string
		list []config.User
		want string
	}{
		{"no username", []config.User{{Password: "x"}}, "username is empty"},
		{"no password", []config.User{{Username: "a"}}, "password or password_hash is required"},
		{"both", []config.User{{Username: "a", Password: "x", PasswordHash: mustHash(t, "x")}}, "not both"},
		{"bad hash", []config.User{{Username: "a", PasswordHash: "plaintext"}}, "not a bcrypt or argon2id hash"},
		{"twice", []config.User{{Username: "a", Password: "x"}, {Username: "a", Password: "y"}}, "listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, _ := newStore(t)
			err := users.Seed(t.Context(), st, tt.list)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Seed = %v, want an error containing %q", err, tt.want)
			}
			for _, u := range tt.list {
				if u.Password != "" && strings.Contains(err.Error(), u.Password) {
					t.Errorf("error %q contains the password", err)
				}
			}
		})
	}
}

func TestSeedStorageError(t *testing.T) {
	st, _ := newStore(t)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	err := users.Seed(t.Context(), st, []config.User{{Username: "a", Password: "x"}})
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("Seed on a closed store = %v, want storage.ErrUnavailable", err)
	}
}

// TestSeedNoClearPassword: the clear password is in no file of the
// database, neither while it is open (main file, WAL, shared memory) nor
// after it is closed and checkpointed.
func TestSeedNoClearPassword(t *testing.T) {
	const secret = "Zq7-unmistakable-clear-password-9xK"
	st, dir := newStore(t)
	list := []config.User{{Username: "dave", Password: secret}}
	for range 2 { // the second seed takes the keep-the-hash path
		if err := users.Seed(t.Context(), st, list); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := (&users.Authenticator{Store: st}).Authenticate(t.Context(), "dave", secret, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	scan := func(when string) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) == 0 {
			t.Fatal("no database files")
		}
		for _, e := range entries {
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(data, []byte(secret)) {
				t.Errorf("%s: %s contains the clear password", when, e.Name())
			}
		}
	}
	scan("open")
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	scan("closed")
}

func TestSeedContextCanceled(t *testing.T) {
	st, _ := newStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := users.Seed(ctx, st, []config.User{{Username: "a", Password: "x"}}); err == nil {
		t.Fatal("Seed with a canceled context succeeded")
	}
}

func TestSeedWithAChangedPasswordEndsTheUsersSessions(t *testing.T) {
	alice := aliceUser()
	st := seeded(t, alice, bobUser())
	ctx := t.Context()
	now := time.Now().UTC()
	for _, ls := range []*storage.LoginSession{
		{ID: "alice-browser", Username: "alice", AuthTime: now, ExpiresAt: now.Add(time.Hour)},
		{ID: "bob-browser", Username: "bob", AuthTime: now, ExpiresAt: now.Add(time.Hour)},
	} {
		if err := st.CreateLoginSession(ctx, ls); err != nil {
			t.Fatal(err)
		}
	}
	live := func(id string) bool {
		_, err := st.GetLoginSession(ctx, id)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	// A restart with the same file changes nothing.
	if err := users.Seed(ctx, st, []config.User{alice, bobUser()}); err != nil {
		t.Fatal(err)
	}
	if !live("alice-browser") {
		t.Fatal("re-seeding the same password ended alice's session")
	}
	alice.Password = "alice-new-password"
	if err := users.Seed(ctx, st, []config.User{alice, bobUser()}); err != nil {
		t.Fatal(err)
	}
	if live("alice-browser") || !live("bob-browser") {
		t.Fatalf("after alice's password changed in the file: alice signed in %v, bob %v", live("alice-browser"), live("bob-browser"))
	}
}
