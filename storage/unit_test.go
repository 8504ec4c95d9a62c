package storage

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/latchauth/latch/clients"
)

func openTestFile(t *testing.T) *GormStore {
	t.Helper()
	st, err := Open(t.Context(), Options{Driver: "sqlite", DSN: filepath.Join(t.TempDir(), "u.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return st
}

// grant stores an access and a refresh token of one grant of a new client.
func grant(t *testing.T, st *GormStore, id string) {
	t.Helper()
	c := &clients.Client{ID: "c-" + id, GrantTypes: []string{"client_credentials", "refresh_token"}, SecretHash: clients.HashGenerated("x")}
	if err := st.CreateClient(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	sess := openid.NewDefaultSession()
	sess.SetExpiresAt(fosite.AccessToken, time.Now().Add(time.Hour))
	sess.SetExpiresAt(fosite.RefreshToken, time.Now().Add(time.Hour))
	req := &fosite.Request{ID: id, Client: c, Session: sess, RequestedAt: time.Now()}
	if err := st.CreateAccessTokenSession(t.Context(), "at-"+id, req); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateRefreshTokenSession(t.Context(), "rt-"+id, "at-"+id, req); err != nil {
		t.Fatal(err)
	}
}

func accessExists(t *testing.T, st *GormStore, ctx context.Context, sig string) bool {
	t.Helper()
	_, err := st.GetAccessTokenSession(ctx, sig, openid.NewDefaultSession())
	if err != nil && !errors.Is(err, fosite.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

// TestUnitCommitsOnce: a revocation's two writes under a unit are held
// back, then written as one, in one commit.
func TestUnitCommitsOnce(t *testing.T) {
	st := openTestFile(t)
	grant(t, st, "g1")
	before := st.wal.commits.Load()

	ctx, finish := st.Unit(t.Context())
	if err := st.RevokeRefreshToken(ctx, "g1"); err != nil {
		t.Fatal(err)
	}
	if err := st.RevokeAccessToken(ctx, "g1"); err != nil {
		t.Fatal(err)
	}
	if !accessExists(t, st, t.Context(), "at-g1") {
		t.Fatal("a held-back write is visible before the unit ends")
	}
	if _, err := st.BeginTX(ctx); !errors.Is(err, errUnitTx) {
		t.Fatalf("BeginTX under a unit: %v", err)
	}
	if err := finish(nil); err != nil {
		t.Fatal(err)
	}
	if accessExists(t, st, t.Context(), "at-g1") {
		t.Fatal("the revocation did not commit")
	}
	if _, err := st.GetRefreshTokenSession(t.Context(), "rt-g1", openid.NewDefaultSession()); !errors.Is(err, fosite.ErrInactiveToken) {
		t.Fatalf("refresh token after the unit: %v, want inactive", err)
	}
	if got := st.wal.commits.Load() - before; got != 1 {
		t.Fatalf("%d commits for the unit, want 1", got)
	}
}

// TestUnitRollsBack: finish with an error drops the unit's writes and
// returns that error; a unit that never wrote commits nothing.
func TestUnitRollsBack(t *testing.T) {
	st := openTestFile(t)
	grant(t, st, "g2")
	ctx, finish := st.Unit(t.Context())
	if err := st.RevokeAccessToken(ctx, "g2"); err != nil {
		t.Fatal(err)
	}
	failed := errors.New("the handler failed")
	if err := finish(failed); !errors.Is(err, failed) {
		t.Fatalf("finish = %v", err)
	}
	if !accessExists(t, st, t.Context(), "at-g2") {
		t.Fatal("a failed unit deleted the token")
	}

	before := st.wal.commits.Load()
	ctx, finish = st.Unit(t.Context())
	accessExists(t, st, ctx, "at-g2")
	if err := finish(nil); err != nil {
		t.Fatal(err)
	}
	if st.wal.commits.Load() != before {
		t.Fatal("a unit that only read committed something")
	}
}

// TestUnitIsAtomic: when one write of a unit fails, the others are undone
// with it, and the writes batched beside it are not.
func TestUnitIsAtomic(t *testing.T) {
	st := openTestFile(t)
	grant(t, st, "g4")
	grant(t, st, "g5")
	ctx, finish := st.Unit(t.Context())
	if err := st.RevokeAccessToken(ctx, "g4"); err != nil {
		t.Fatal(err)
	}
	// A second access token under an existing signature: the insert fails
	// on the primary key, after the delete above ran in the same write.
	c, err := st.GetClient(t.Context(), "c-g4")
	if err != nil {
		t.Fatal(err)
	}
	sess := openid.NewDefaultSession()
	sess.SetExpiresAt(fosite.AccessToken, time.Now().Add(time.Hour))
	if err := st.CreateAccessTokenSession(ctx, "at-g5", &fosite.Request{ID: "g4", Client: c, Session: sess}); err != nil {
		t.Fatal(err)
	}
	other := make(chan error, 1)
	// The write beside it must not touch at-g5: deleting it first would
	// let the unit's insert succeed.
	go func() { other <- st.RevokeRefreshToken(t.Context(), "g5") }()
	if err := finish(nil); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("finish = %v, want ErrAlreadyExists", err)
	}
	if !accessExists(t, st, t.Context(), "at-g4") {
		t.Fatal("the failed unit's delete was kept")
	}
	if err := <-other; err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetRefreshTokenSession(t.Context(), "rt-g5", openid.NewDefaultSession()); !errors.Is(err, fosite.ErrInactiveToken) {
		t.Fatalf("a write beside the failed unit was lost: refresh token lookup = %v", err)
	}
}

// TestBatchedWritesFailAlone: of concurrent writes batched together, one
// that breaks a constraint fails alone.
func TestBatchedWritesFailAlone(t *testing.T) {
	st := openTestFile(t)
	grant(t, st, "g6")
	c, err := st.GetClient(t.Context(), "c-g6")
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 64)
	for i := range 64 {
		go func() {
			sess := openid.NewDefaultSession()
			sess.SetExpiresAt(fosite.AccessToken, time.Now().Add(time.Hour))
			sig := fmt.Sprintf("at-batch-%d", i)
			if i == 13 {
				sig = "at-g6" // taken
			}
			errs <- st.CreateAccessTokenSession(t.Context(), sig, &fosite.Request{ID: sig, Client: c, Session: sess})
		}()
	}
	failed := 0
	for range 64 {
		if err := <-errs; err != nil {
			if !errors.Is(err, ErrAlreadyExists) {
				t.Fatal(err)
			}
			failed++
		}
	}
	if failed != 1 {
		t.Fatalf("%d writes failed, want 1", failed)
	}
	for i := range 64 {
		if i != 13 && !accessExists(t, st, t.Context(), fmt.Sprintf("at-batch-%d", i)) {
			t.Fatalf("write %d was lost", i)
		}
	}
}

// TestBatcherAfterClose: a write after Close fails as unavailable.
func TestBatcherAfterClose(t *testing.T) {
	st := openTestFile(t)
	grant(t, st, "g7")
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.RevokeAccessToken(t.Context(), "g7"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("after Close: %v", err)
	}
}

// TestClientMemo: under a memo a client is read once; without, every time.
func TestClientMemo(t *testing.T) {
	st := openTestFile(t)
	grant(t, st, "g3")
	ctx := WithClientMemo(t.Context())
	if _, err := st.GetClient(ctx, "c-g3"); err != nil {
		t.Fatal(err)
	}
	if err := st.writePool.Exec("DELETE FROM clients WHERE id = ?", "c-g3").Error; err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetClient(ctx, "c-g3"); err != nil {
		t.Fatalf("the memo read the database again: %v", err)
	}
	st.ForgetClient(t.Context(), "c-g3") // the store's own cache, not the memo
	if _, err := st.GetClient(t.Context(), "c-g3"); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("without a memo: %v, want not found", err)
	}
}

// TestFirstWritesDoNotDeadlock: on a new store, the same write statements
// run at once outside and inside transactions (a revocation beside a
// refresh). With statements prepared on the write pool, the first
// preparation of a statement could wait for the one write connection
// while the transaction holding it waited for that preparation.
func TestFirstWritesDoNotDeadlock(t *testing.T) {
	for round := range 10 {
		st := openTestFile(t)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		errs := make(chan error, 32)
		for i := range 32 {
			go func() {
				id := fmt.Sprintf("r%d-%d", round, i)
				if i%2 == 0 {
					errs <- st.RevokeAccessToken(ctx, id)
					return
				}
				txCtx, err := st.BeginTX(ctx)
				if err != nil {
					errs <- err
					return
				}
				if err := st.RevokeRefreshToken(txCtx, id); err != nil {
					_ = st.Rollback(txCtx)
					errs <- err
					return
				}
				if err := st.RevokeAccessToken(txCtx, id); err != nil {
					_ = st.Rollback(txCtx)
					errs <- err
					return
				}
				errs <- st.Commit(txCtx)
			}()
		}
		for range 32 {
			if err := <-errs; err != nil {
				cancel()
				t.Fatalf("round %d: %v", round, err)
			}
		}
		cancel()
	}
}

// TestReadsSeeWritesAcrossCheckpoints: the background checkpoints run on
// the read pool; none may leave a read connection on an old snapshot.
// Writers and readers run for several checkpoint intervals, and every
// write must be visible to every read after it.
func TestReadsSeeWritesAcrossCheckpoints(t *testing.T) {
	st := openTestFile(t)
	deadline := time.Now().Add(4 * checkpointInterval)
	errs := make(chan error, 8)
	for w := range 8 {
		go func() {
			for i := 0; time.Now().Before(deadline); i++ {
				id := fmt.Sprintf("cp%d-%d", w, i)
				c := &clients.Client{ID: "c-" + id, GrantTypes: []string{"client_credentials"}, SecretHash: clients.HashGenerated("x")}
				if err := st.CreateClient(t.Context(), c); err != nil {
					errs <- err
					return
				}
				sess := openid.NewDefaultSession()
				sess.SetExpiresAt(fosite.AccessToken, time.Now().Add(time.Hour))
				if err := st.CreateAccessTokenSession(t.Context(), "at-"+id, &fosite.Request{ID: id, Client: c, Session: sess}); err != nil {
					errs <- err
					return
				}
				if _, err := st.GetAccessTokenSession(t.Context(), "at-"+id, openid.NewDefaultSession()); err != nil {
					errs <- fmt.Errorf("%s right after it was stored: %w", id, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestClientCache: a client is trusted for clientCacheTTL, a change
// through the store shows at once, callers get copies, and ForgetClient
// drops an entry.
func TestClientCache(t *testing.T) {
	st := openTestFile(t)
	grant(t, st, "cc1")
	get := func() (*clients.Client, error) {
		c, err := st.GetClient(t.Context(), "c-cc1")
		if err != nil {
			return nil, err
		}
		return c.(*clients.Client), nil
	}
	c, err := get()
	if err != nil {
		t.Fatal(err)
	}
	c.Scopes = append(c.Scopes[:0], "changed-by-a-caller")
	again, err := get()
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Scopes) > 0 && again.Scopes[0] == "changed-by-a-caller" {
		t.Fatal("a caller's change reached the cache")
	}

	// A change through the store is seen at once.
	again.Name = "Renamed"
	if err := st.UpdateClient(t.Context(), again); err != nil {
		t.Fatal(err)
	}
	if got, _ := get(); got.Name != "Renamed" {
		t.Fatalf("after UpdateClient: name %q", got.Name)
	}

	// A change behind the store's back (another process) is seen within
	// the TTL, and at once after ForgetClient.
	if err := st.writePool.Exec("UPDATE clients SET secret_hash = ? WHERE id = ?", "sha256$other", "c-cc1").Error; err != nil {
		t.Fatal(err)
	}
	if got, _ := get(); got.SecretHash == "sha256$other" {
		t.Log("the cache had expired already (a slow machine)")
	}
	st.ForgetClient(t.Context(), "c-cc1")
	if got, _ := get(); got.SecretHash != "sha256$other" {
		t.Fatal("ForgetClient did not drop the entry")
	}
	if err := st.writePool.Exec("DELETE FROM clients WHERE id = ?", "c-cc1").Error; err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(clientCacheTTL + time.Second)
	for {
		if _, err := get(); errors.Is(err, fosite.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a client deleted by another process is still served after %v", clientCacheTTL+time.Second)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClosedStoreReadsFail: reads of a closed store fail as unavailable;
// none panics (GORM answers a failed preparation with an empty sql.Row).
func TestClosedStoreReadsFail(t *testing.T) {
	st := openTestFile(t)
	grant(t, st, "closed")
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetAccessTokenSession(t.Context(), "at-closed", openid.NewDefaultSession()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("GetAccessTokenSession on a closed store: %v", err)
	}
	if err := st.checkpoint(t.Context()); err == nil {
		t.Fatal("a checkpoint of a closed store succeeded")
	}
}
