package conformance

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/storage"
)

func throttleTests() []subtest {
	return []subtest{
		{"ThrottleCounters", testThrottleCounters},
		{"ThrottleCountsConcurrentFailures", testThrottleConcurrentFailures},
		{"LoginSessionManagement", testLoginSessionManagement},
		{"PasswordChangeEndsSessions", testPasswordChangeEndsSessions},
	}
}

func testThrottleCounters(t *testing.T, s storage.Store) {
	t0 := now()
	hour := t0.Add(time.Hour)
	require.NoError(t, s.CountFailure(ctx(t), t0, storage.ThrottleFailure{Key: "k1", ExpiresAt: hour}, storage.ThrottleFailure{Key: "k2", ExpiresAt: hour}))
	require.NoError(t, s.CountFailure(ctx(t), t0.Add(time.Second), storage.ThrottleFailure{Key: "k1", ExpiresAt: hour.Add(time.Second)}))

	got, err := s.ThrottleCounts(ctx(t), []string{"k1", "k2", "k3"}, t0.Add(time.Second))
	require.NoError(t, err)
	require.Len(t, got, 2, "k3 has no counter")
	require.Equal(t, 2, got["k1"].Failures)
	require.True(t, got["k1"].LastFailure.Equal(t0.Add(time.Second)), "last failure %v", got["k1"].LastFailure)
	require.Equal(t, 1, got["k2"].Failures)

	// Past k2's expiry it counts nothing, and a new failure starts at one.
	after := hour.Add(time.Millisecond)
	got, err = s.ThrottleCounts(ctx(t), []string{"k1", "k2"}, after)
	require.NoError(t, err)
	require.Equal(t, map[string]storage.ThrottleCount{"k1": got["k1"]}, got, "only k1 is left")
	require.NoError(t, s.CountFailure(ctx(t), after, storage.ThrottleFailure{Key: "k2", ExpiresAt: after.Add(time.Hour)}))
	got, err = s.ThrottleCounts(ctx(t), []string{"k2"}, after)
	require.NoError(t, err)
	require.Equal(t, 1, got["k2"].Failures, "an expired counter starts again")

	require.NoError(t, s.ForgetFailures(ctx(t), "k2", "never-counted"))
	got, err = s.ThrottleCounts(ctx(t), []string{"k2"}, after)
	require.NoError(t, err)
	require.Empty(t, got)

	n, err := s.DeleteExpired(ctx(t), hour.Add(2*time.Second))
	require.NoError(t, err)
	require.Equal(t, int64(1), n, "k1 expired and is cleaned up")
}

func testThrottleConcurrentFailures(t *testing.T, s storage.Store) {
	const n = 16
	t0 := now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.CountFailure(ctx(t), t0, storage.ThrottleFailure{Key: "shared", ExpiresAt: t0.Add(time.Hour)})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	got, err := s.ThrottleCounts(ctx(t), []string{"shared"}, t0)
	require.NoError(t, err)
	require.Equal(t, n, got["shared"].Failures, "every concurrent failure counts")
}

func testLoginSessionManagement(t *testing.T, s storage.Store) {
	createUser(t, s, "alice")
	createUser(t, s, "bob")
	t0 := now()
	for _, ls := range []*storage.LoginSession{
		{ID: "alice-1", Username: "alice", AuthTime: t0, ExpiresAt: t0.Add(time.Hour)},
		{ID: "alice-2", Username: "alice", AuthTime: t0.Add(time.Second), ExpiresAt: t0.Add(time.Hour)},
		{ID: "alice-old", Username: "alice", AuthTime: t0.Add(-2 * time.Hour), ExpiresAt: t0.Add(-time.Hour)},
		{ID: "bob-1", Username: "bob", AuthTime: t0, ExpiresAt: t0.Add(time.Hour)},
	} {
		require.NoError(t, s.CreateLoginSession(ctx(t), ls))
	}
	list, err := s.ListLoginSessions(ctx(t), "alice")
	require.NoError(t, err)
	require.Len(t, list, 2, "the expired session is not listed")
	require.Equal(t, "alice", list[0].Username)
	require.True(t, list[0].AuthTime.Equal(t0), "oldest first")
	require.Len(t, list[0].Handle, 64)
	require.NotEqual(t, "alice-1", list[0].Handle, "the handle is not the session ID")

	all, err := s.ListAllLoginSessions(ctx(t))
	require.NoError(t, err)
	require.Len(t, all, 3)

	n, err := s.EndLoginSessions(ctx(t), "alice")
	require.NoError(t, err)
	require.Equal(t, int64(2), n, "two live sessions ended")
	_, err = s.GetLoginSession(ctx(t), "alice-2")
	requireNotFound(t, err, "an ended session")
	_, err = s.GetLoginSession(ctx(t), "bob-1")
	require.NoError(t, err, "another user's session stays")

	n, err = s.EndLoginSessions(ctx(t), "nobody")
	require.NoError(t, err)
	require.Zero(t, n)

	n, err = s.EndAllLoginSessions(ctx(t))
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	all, err = s.ListAllLoginSessions(ctx(t))
	require.NoError(t, err)
	require.Empty(t, all)
}

func testPasswordChangeEndsSessions(t *testing.T, s storage.Store) {
	createUser(t, s, "carol")
	ls := &storage.LoginSession{ID: "carol-1", Username: "carol", AuthTime: now(), ExpiresAt: now().Add(time.Hour)}
	require.NoError(t, s.CreateLoginSession(ctx(t), ls))

	u, err := s.GetUser(ctx(t), "carol")
	require.NoError(t, err)
	u.Name = "Carol"
	require.NoError(t, s.UpsertUser(ctx(t), u))
	_, err = s.GetLoginSession(ctx(t), ls.ID)
	require.NoError(t, err, "a profile change keeps the session")

	u.PasswordHash = "$2a$04$zyxwvutsrqponmlkjihgfeu5Pp3Wc0/5nQk6pH0sQ7k0wH7h6oJ1Ri"
	require.NoError(t, s.UpsertUser(ctx(t), u))
	_, err = s.GetLoginSession(ctx(t), ls.ID)
	requireNotFound(t, err, "a session after a password change")
}
