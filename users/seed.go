// Package users owns Latch's built-in users beyond their storage: seeding
// them from config.yaml, checking a username and password for the login
// page and the password grant (with rate limiting of failed logins), and
// the OIDC claims a user contributes to ID tokens and userinfo.
//
// Usernames are compared exactly as stored: "Alice" and "alice" are two
// users, in the store, the limiter and the claims alike.
package users

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/passhash"
	"github.com/latchauth/latch/storage"
)

// Seed upserts the users declared in config.yaml. Each user's profile
// (email, name, groups, claims) and password are replaced by the file's, as
// for clients: the file is the source of truth for the users it lists.
// Users not in the list are left alone.
//
// PasswordHash is stored as given. Password is hashed with passhash.Hash,
// except when the stored hash already verifies it and is in the current
// format: then it is kept, so a restart does not re-hash every password
// (tens of milliseconds each), and a user whose row would not change is
// not written at all. The clear password is never stored or logged.
//
// Seed stops at the first invalid user or storage error; the users before
// it are already written.
func Seed(ctx context.Context, st storage.UserStore, list []config.User) error {
	seen := make(map[string]bool, len(list))
	for i := range list {
		cu := &list[i]
		if err := check(cu); err != nil {
			return fmt.Errorf("users: users[%d]: %w", i, err)
		}
		if seen[cu.Username] {
			return fmt.Errorf("users: users[%d]: username %q is listed twice", i, cu.Username)
		}
		seen[cu.Username] = true
		if err := seedOne(ctx, st, cu); err != nil {
			return fmt.Errorf("users: seed %q: %w", cu.Username, err)
		}
	}
	return nil
}

func check(cu *config.User) error {
	switch {
	case cu.Username == "":
		return errors.New("username is empty")
	case cu.Password != "" && cu.PasswordHash != "":
		return fmt.Errorf("user %q: set password or password_hash, not both", cu.Username)
	case cu.Password == "" && cu.PasswordHash == "":
		return fmt.Errorf("user %q: password or password_hash is required", cu.Username)
	case cu.PasswordHash != "" && !passhash.IsHash(cu.PasswordHash):
		return fmt.Errorf("user %q: password_hash is not a bcrypt or argon2id hash", cu.Username)
	}
	return nil
}

func seedOne(ctx context.Context, st storage.UserStore, cu *config.User) error {
	stored, err := st.GetUser(ctx, cu.Username)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	hash := cu.PasswordHash
	if hash == "" {
		if stored != nil && !passhash.NeedsRehash(stored.PasswordHash) &&
			passhash.Verify(stored.PasswordHash, cu.Password) == nil {
			hash = stored.PasswordHash
		} else if hash, err = passhash.Hash(cu.Password); err != nil {
			return err
		}
	}
	u := &storage.User{
		Username:      cu.Username,
		PasswordHash:  hash,
		Email:         cu.Email,
		EmailVerified: cu.EmailVerified,
		Name:          cu.Name,
		Groups:        cu.Groups,
		Claims:        cu.Claims,
	}
	if stored != nil {
		if same(stored, u) {
			return nil // keeps UpdatedAt meaning "last changed"
		}
		u.CreatedAt = stored.CreatedAt
	}
	return st.UpsertUser(ctx, u)
}

// same reports whether writing b over a would change nothing. Groups and
// claims are compared as JSON, the form they are stored in, so that a YAML
// 1 and a stored 1.0 are equal.
func same(a, b *storage.User) bool {
	if a.PasswordHash != b.PasswordHash || a.Email != b.Email || a.EmailVerified != b.EmailVerified || a.Name != b.Name {
		return false
	}
	return jsonEqual(nonNil(a.Groups), nonNil(b.Groups)) && jsonEqual(nonNilMap(a.Claims), nonNilMap(b.Claims))
}

func jsonEqual(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}
