package conformance

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/storage"
)

// The back-channel logout contract (OIDC Back-Channel Logout 1.0): every
// way a login session ends queues one delivery per client that took part
// in it, in the transaction that ends it; a delivery is claimed by one
// caller at a time; and nothing grows without bound.

func backchannelTests() []subtest {
	return []subtest{
		{"BackchannelQueueLifecycle", testBackchannelQueueLifecycle},
		{"BackchannelEveryWaySessionsEnd", testBackchannelEveryWaySessionsEnd},
		{"BackchannelBounds", testBackchannelBounds},
		{"BackchannelConcurrentClaims", testBackchannelConcurrentClaims},
		{"BackchannelCleanUp", testBackchannelCleanUp},
	}
}

func logoutStore(t *testing.T, s storage.Store) storage.BackchannelLogouts {
	t.Helper()
	q, ok := s.(storage.BackchannelLogouts)
	if !ok {
		t.Skip("the store has no back-channel logout queue")
	}
	return q
}

// participate signs username in with a new session in which each of
// clientIDs got a code.
func participate(t *testing.T, s storage.Store, id, username string, clientIDs ...string) *storage.LoginSession {
	t.Helper()
	ls := &storage.LoginSession{ID: id, Username: username, AuthTime: now(), ExpiresAt: now().Add(time.Hour)}
	require.NoError(t, s.CreateLoginSession(ctx(t), ls))
	for _, c := range clientIDs {
		require.NoError(t, logoutStore(t, s).RecordSessionClient(ctx(t), ls, c))
	}
	return ls
}

// claimAll claims every delivery due at the given instant and returns
// them by client (of one session).
func claimAll(t *testing.T, q storage.BackchannelLogouts, at time.Time) map[string]storage.LogoutDelivery {
	t.Helper()
	ds, err := q.ClaimLogoutDeliveries(ctx(t), at, 1000, time.Minute)
	require.NoError(t, err)
	out := map[string]storage.LogoutDelivery{}
	for _, d := range ds {
		_, dup := out[d.ClientID]
		require.False(t, dup, "one delivery per client and session")
		out[d.ClientID] = d
	}
	return out
}

func testBackchannelQueueLifecycle(t *testing.T, s storage.Store) {
	q := logoutStore(t, s)
	createUser(t, s, "alice")
	createClient(t, s, "rp-a")
	createClient(t, s, "rp-b")
	ls := participate(t, s, "session-1", "alice", "rp-a", "rp-b", "rp-a") // again: still one

	require.Empty(t, claimAll(t, q, time.Now()), "nothing is queued while the session lasts")
	require.NoError(t, s.DeleteLoginSession(ctx(t), ls.ID))
	// The store stamps deliveries with its own clock; from here on the
	// suite's instants are after it.
	at := time.Now().UTC()
	n, err := q.CountLogoutDeliveries(ctx(t))
	require.NoError(t, err)
	require.EqualValues(t, 2, n)

	got := claimAll(t, q, at)
	require.Len(t, got, 2)
	a := got["rp-a"]
	require.Equal(t, "alice", a.Subject)
	require.Equal(t, storage.SessionHandle(ls.ID), a.SessionHandle, "the session by its stored handle, never its clear ID")
	require.NotEqual(t, ls.ID, a.SessionHandle)
	require.Equal(t, 1, a.Attempts)
	require.NotEmpty(t, a.ID)
	require.NotEqual(t, a.ID, got["rp-b"].ID, "each delivery its own ID (the jti)")
	require.Empty(t, claimAll(t, q, at), "a claimed delivery is not claimed again within its lease")

	// A retry makes it due again at the time given, as attempt 2.
	require.NoError(t, q.RetryLogoutDelivery(ctx(t), a, at.Add(10*time.Second)))
	require.Empty(t, claimAll(t, q, at.Add(5*time.Second)))
	again := claimAll(t, q, at.Add(10*time.Second))
	require.Len(t, again, 1)
	require.Equal(t, 2, again["rp-a"].Attempts)
	require.Equal(t, a.ID, again["rp-a"].ID, "a retry keeps the delivery's ID")

	// A stale claim (the first attempt, finishing late) changes nothing.
	require.NoError(t, q.DeleteLogoutDelivery(ctx(t), a))
	n, err = q.CountLogoutDeliveries(ctx(t))
	require.NoError(t, err)
	require.EqualValues(t, 2, n, "only the current claim may finish a delivery")
	require.NoError(t, q.DeleteLogoutDelivery(ctx(t), again["rp-a"]))
	require.NoError(t, q.DeleteLogoutDelivery(ctx(t), got["rp-b"]))
	n, err = q.CountLogoutDeliveries(ctx(t))
	require.NoError(t, err)
	require.Zero(t, n)

	// An abandoned claim (a worker that died) is due again after its lease.
	participate(t, s, "session-2", "alice", "rp-a")
	require.NoError(t, s.DeleteLoginSession(ctx(t), "session-2"))
	at = time.Now().UTC()
	require.Len(t, claimAll(t, q, at), 1)
	require.Empty(t, claimAll(t, q, at.Add(30*time.Second)))
	taken := claimAll(t, q, at.Add(time.Minute))
	require.Len(t, taken, 1)
	require.Equal(t, 2, taken["rp-a"].Attempts)

	// Ending a session again, or one without clients, queues nothing more.
	require.NoError(t, s.DeleteLoginSession(ctx(t), "session-2"))
	participate(t, s, "session-3", "alice")
	require.NoError(t, s.DeleteLoginSession(ctx(t), "session-3"))
	n, err = q.CountLogoutDeliveries(ctx(t))
	require.NoError(t, err)
	require.EqualValues(t, 1, n)

	// A deleted client takes its deliveries with it.
	require.NoError(t, s.DeleteClient(ctx(t), "rp-a"))
	n, err = q.CountLogoutDeliveries(ctx(t))
	require.NoError(t, err)
	require.Zero(t, n)
}

func testBackchannelEveryWaySessionsEnd(t *testing.T, s storage.Store) {
	q := logoutStore(t, s)
	createClient(t, s, "rp")
	queued := func(t *testing.T) []string {
		t.Helper()
		var subs []string
		ds, err := q.ClaimLogoutDeliveries(ctx(t), time.Now().Add(time.Minute), 1000, time.Minute)
		require.NoError(t, err)
		for _, d := range ds {
			subs = append(subs, d.Subject)
			require.NoError(t, q.DeleteLogoutDelivery(ctx(t), d))
		}
		return subs
	}
	ends := []struct {
		name string
		end  func(t *testing.T, user string, ls *storage.LoginSession)
		want int // deliveries queued (of two sessions, each with rp)
	}{
		{"DeleteLoginSession", func(t *testing.T, _ string, ls *storage.LoginSession) {
			require.NoError(t, s.DeleteLoginSession(ctx(t), ls.ID))
		}, 1},
		{"EndLoginSessions", func(t *testing.T, user string, _ *storage.LoginSession) {
			n, err := s.EndLoginSessions(ctx(t), user)
			require.NoError(t, err)
			require.EqualValues(t, 2, n)
		}, 2},
		{"RevokeSubject", func(t *testing.T, user string, _ *storage.LoginSession) {
			_, n, err := s.RevokeSubject(ctx(t), user)
			require.NoError(t, err)
			require.EqualValues(t, 2, n)
		}, 2},
		{"EndSessionView", func(t *testing.T, user string, ls *storage.LoginSession) {
			require.NoError(t, s.EndSessionView(ctx(t), user, storage.SessionHandle(ls.ID)))
		}, 1},
		{"ChangePassword", func(t *testing.T, user string, ls *storage.LoginSession) {
			require.NoError(t, s.ChangePassword(ctx(t), user, "$2a$04$abcdefghijklmnopqrstuu5Pp3Wc0/5nQk6pH0sQ7k0wH7h6oJ1Rx", ls.ID))
		}, 1}, // the session kept is not ended
		{"UpsertUserNewPassword", func(t *testing.T, user string, _ *storage.LoginSession) {
			require.NoError(t, s.UpsertUser(ctx(t), &storage.User{Username: user, PasswordHash: "$2a$04$abcdefghijklmnopqrstuu5Pp3Wc0/5nQk6pH0sQ7k0wH7h6oJ1Ry"}))
		}, 2},
		{"DeleteUser", func(t *testing.T, user string, _ *storage.LoginSession) {
			require.NoError(t, s.DeleteUser(ctx(t), user))
		}, 2},
	}
	for i, e := range ends {
		t.Run(e.name, func(t *testing.T) {
			user := fmt.Sprintf("user-%d", i)
			createUser(t, s, user)
			ls := participate(t, s, user+"-s1", user, "rp")
			participate(t, s, user+"-s2", user, "rp")
			e.end(t, user, ls)
			subs := queued(t)
			require.Len(t, subs, e.want)
			for _, sub := range subs {
				require.Equal(t, user, sub)
			}
		})
	}
	// An expired session's clients are not told: the session was over.
	createUser(t, s, "late")
	old := &storage.LoginSession{ID: "old", Username: "late", AuthTime: now().Add(-2 * time.Hour), ExpiresAt: now().Add(-time.Hour)}
	require.NoError(t, s.CreateLoginSession(ctx(t), old))
	require.NoError(t, q.RecordSessionClient(ctx(t), old, "rp"))
	_, err := s.EndLoginSessions(ctx(t), "late")
	require.NoError(t, err)
	require.Empty(t, queued(t))
}

func testBackchannelBounds(t *testing.T, s storage.Store) {
	q := logoutStore(t, s)
	createUser(t, s, "alice")
	ids := make([]string, storage.MaxSessionClients+3)
	for i := range ids {
		ids[i] = fmt.Sprintf("rp-%03d", i)
		createClient(t, s, ids[i])
	}
	ls := participate(t, s, "busy", "alice", ids...)
	require.NoError(t, s.DeleteLoginSession(ctx(t), ls.ID))
	n, err := q.CountLogoutDeliveries(ctx(t))
	require.NoError(t, err)
	require.EqualValues(t, storage.MaxSessionClients, n, "a session names at most MaxSessionClients clients")
	require.Zero(t, q.LogoutDeliveriesDropped())
}

func testBackchannelConcurrentClaims(t *testing.T, s storage.Store) {
	q := logoutStore(t, s)
	createUser(t, s, "alice")
	var clientIDs []string
	for i := range 12 {
		id := fmt.Sprintf("rp-%d", i)
		createClient(t, s, id)
		clientIDs = append(clientIDs, id)
	}
	participate(t, s, "s", "alice", clientIDs...)
	require.NoError(t, s.DeleteLoginSession(ctx(t), "s"))

	// Eight instances claim at once: each delivery goes to exactly one.
	var (
		mu   sync.Mutex
		seen []string
		wg   sync.WaitGroup
	)
	at := time.Now()
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ds, err := q.ClaimLogoutDeliveries(ctx(t), at, 100, time.Minute)
			if err != nil {
				t.Errorf("claim: %v", err)
				return
			}
			mu.Lock()
			for _, d := range ds {
				seen = append(seen, d.ClientID)
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Strings(seen)
	sort.Strings(clientIDs)
	require.Equal(t, clientIDs, seen, "every delivery claimed once, none twice")
}

func testBackchannelCleanUp(t *testing.T, s storage.Store) {
	q := logoutStore(t, s)
	createUser(t, s, "alice")
	createClient(t, s, "rp")
	participate(t, s, "ended", "alice", "rp")
	require.NoError(t, s.DeleteLoginSession(ctx(t), "ended"))
	participate(t, s, "live", "alice", "rp")

	// Within the deliveries' lifespan the janitor leaves both alone ...
	_, err := s.DeleteExpired(ctx(t), now().Add(time.Minute))
	require.NoError(t, err)
	n, err := q.CountLogoutDeliveries(ctx(t))
	require.NoError(t, err)
	require.EqualValues(t, 1, n)

	// ... after it, the stale delivery and the expired session's
	// participation are gone: ending that session now queues nothing.
	_, err = s.DeleteExpired(ctx(t), now().Add(storage.LogoutDeliveryLifespan+2*time.Hour))
	require.NoError(t, err)
	n, err = q.CountLogoutDeliveries(ctx(t))
	require.NoError(t, err)
	require.Zero(t, n)
}
