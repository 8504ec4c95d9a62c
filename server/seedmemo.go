package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"runtime/debug"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/passhash"
	"github.com/latchauth/latch/storage"
	"github.com/latchauth/latch/users"
)

// Restarts without re-hashing config.yaml's plaintext secrets.
//
// A client secret or password written in plaintext in config.yaml is stored
// as its argon2id hash, and each start must learn whether the plaintext
// still matches that hash. Checking with argon2id costs 19 MiB and tens of
// milliseconds per secret (three secrets took a start from 70 ms to 640 ms
// and its peak RSS from 28 to 89 MB), and the first request of such a
// client paid one more run. Instead, whenever a start has verified or made
// a hash the slow way, it stores a memo beside it:
//
//	HMAC-SHA256(K, kind, id, stored hash, plaintext)
//
// and a later start that finds its memo equal to the one it computes keeps
// the stored hash and tells the client Hasher the pair is verified; no
// argon2id runs, and none at the client's first request either.
//
// Why this is safe: K is derived from secrets.system as config.yaml or the
// environment gives it, and never stored: without secrets.system there is
// no memo, and every start checks the slow way. So the database alone (a
// stolen copy, a backup) offers nothing to test guesses against faster
// than argon2id; whoever holds K holds the file that holds the plaintexts.
// The memo covers the stored hash, so a secret changed by the CLI or the
// admin API (a new hash) or a rehash voids it; it covers kind and id, so a
// memo copied to another row never matches; a changed secrets.system
// voids them all, at the cost of one slow start. Memos are compared in
// constant time.
type seedMemo struct {
	key   []byte
	store storage.SeedMemos
}

// newSeedMemo is the memo of f's seeding, or nil when f has no
// secrets.system or st cannot keep memos.
func newSeedMemo(f config.File, st storage.Store) *seedMemo {
	ms, ok := st.(storage.SeedMemos)
	if !ok || f.Secrets.System == "" {
		return nil
	}
	return &seedMemo{key: derive([]byte(f.Secrets.System), "latch config seed memo"), store: ms}
}

// name is the settings name of the memo of (kind, id): a hash, so that any
// id fits the column.
func (m *seedMemo) name(kind, id string) string {
	sum := sha256.Sum256([]byte(kind + "\x00" + id))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// sum is the memo of a plaintext and the hash stored for it, each field
// length-prefixed so that no two tuples share an input.
func (m *seedMemo) sum(kind, id, hash, secret string) []byte {
	mac := hmac.New(sha256.New, m.key)
	for _, field := range []string{kind, id, hash, secret} {
		mac.Write(binary.BigEndian.AppendUint32(nil, uint32(len(field))))
		mac.Write([]byte(field))
	}
	return mac.Sum(nil)
}

// matches reports whether the memo stored for (kind, id) says secret is
// the secret of hash. A hash that is not in today's format never matches,
// so that the slow path rehashes it.
func (m *seedMemo) matches(ctx context.Context, kind, id, hash, secret string) bool {
	if m == nil || hash == "" || passhash.NeedsRehash(hash) {
		return false
	}
	stored, err := m.store.SeedMemo(ctx, m.name(kind, id))
	if err != nil || stored == "" {
		return false // the slow path decides, and reports a broken store
	}
	got, err := base64.RawURLEncoding.DecodeString(stored)
	return err == nil && hmac.Equal(got, m.sum(kind, id, hash, secret))
}

// record stores the memo that secret is the secret of hash, which the
// caller has just verified or made.
func (m *seedMemo) record(ctx context.Context, kind, id, hash, secret string) error {
	if m == nil || hash == "" {
		return nil
	}
	memo := base64.RawURLEncoding.EncodeToString(m.sum(kind, id, hash, secret))
	return m.store.SetSeedMemo(ctx, m.name(kind, id), memo)
}

// seedUsers seeds list as users.Seed does, except that a plaintext
// password whose memo matches keeps its stored hash without an argon2id
// check. Users go one at a time, so that the memory of one slow check is
// returned before the next (config.Validate has refused repeated names).
func seedUsers(ctx context.Context, list []config.User, st storage.Store, memo *seedMemo) error {
	for _, u := range list {
		slow := u.Password != ""
		if stored, err := st.GetUser(ctx, u.Username); err == nil && slow &&
			memo.matches(ctx, "user", u.Username, stored.PasswordHash, u.Password) {
			u.PasswordHash, u.Password, slow = stored.PasswordHash, "", false
		}
		if err := users.Seed(ctx, st, []config.User{u}); err != nil {
			return err
		}
		if !slow {
			continue
		}
		releaseHashMemory()
		if memo == nil {
			continue
		}
		stored, err := st.GetUser(ctx, u.Username)
		if err == nil {
			err = memo.record(ctx, "user", u.Username, stored.PasswordHash, u.Password)
		}
		if err != nil {
			return fmt.Errorf("users: seed %q: %w", u.Username, err)
		}
	}
	return nil
}

// releaseHashMemory returns the 19 MiB of an argon2id run to the operating
// system at once. Seeding runs them one after another at start, when the
// heap is small and the collector would not yet reuse their memory, so
// three secrets took the peak RSS from 28 to 89 MB; released, the peak is
// one run's.
func releaseHashMemory() { debug.FreeOSMemory() }

// seedClient seeds c with its config.yaml secret as Manager.Seed does,
// except that a secret whose memo matches is not checked with argon2id.
// Either way the client Hasher learns the pair, so that the client's first
// request does not run argon2id either.
func seedClient(ctx context.Context, c *clients.Client, secret string, mgr *clients.Manager, memo *seedMemo) error {
	if secret == "" || mgr.Hasher == nil {
		return mgr.Seed(ctx, c, secret)
	}
	known := false
	if old, err := mgr.Get(ctx, c.ID); err == nil && memo.matches(ctx, "client", c.ID, old.SecretHash, secret) {
		mgr.Hasher.Remember(old.SecretHash, secret)
		known = true
	}
	if err := mgr.Seed(ctx, c, secret); err != nil {
		return err
	}
	mgr.Hasher.Remember(c.SecretHash, secret)
	if known {
		return nil
	}
	releaseHashMemory()
	if err := memo.record(ctx, "client", c.ID, c.SecretHash, secret); err != nil {
		return fmt.Errorf("client %s: %w", c.ID, err)
	}
	return nil
}
