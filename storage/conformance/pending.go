package conformance

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/storage"
)

// pendingTests cover what unauthenticated callers can make a store keep:
// only the parameters a flow reads, and counts per client and per origin.
func pendingTests() []subtest {
	return []subtest{
		{"StoredFormKeepsOnlyFlowParameters", testStoredFormKeepsOnlyFlowParameters},
		{"CountPending", testCountPending},
		{"CountRegisteredClients", testCountRegisteredClients},
	}
}

func testStoredFormKeepsOnlyFlowParameters(t *testing.T, s storage.Store) {
	c := createClient(t, s, "app")
	ar := newAuthorizeRequest(c, "req-1", "", now().Add(time.Hour))
	want := ar.GetRequestForm().Encode()
	ar.Form.Set("junk", strings.Repeat("x", 30<<10))
	ar.Form.Set("password", "hunter2")
	ar.Form.Set("client_secret", "s3cret")
	require.NoError(t, s.CreateAuthorizeChallenge(ctx(t), "challenge-1", ar, now().Add(time.Minute)))
	got, err := s.GetAuthorizeChallenge(ctx(t), "challenge-1")
	require.NoError(t, err)
	require.Equal(t, want, got.GetRequestForm().Encode(), "the flow's parameters, nothing else")
}

func testCountPending(t *testing.T, s storage.Store) {
	app, other := createClient(t, s, "app"), createClient(t, s, "other")
	fromA, fromB := storage.WithOrigin(ctx(t), "203.0.113.1"), storage.WithOrigin(ctx(t), "2001:db8::/64")
	later, past := now().Add(time.Hour), now().Add(-time.Second)
	require.NoError(t, s.CreateAuthorizeChallenge(fromA, "c1", newAuthorizeRequest(app, "r1", "", later), later))
	require.NoError(t, s.CreateAuthorizeChallenge(fromA, "c2", newAuthorizeRequest(app, "r2", "", later), later))
	require.NoError(t, s.CreateAuthorizeChallenge(fromA, "c3", newAuthorizeRequest(app, "r3", "", later), past))
	require.NoError(t, s.CreateAuthorizeChallenge(fromB, "c4", newAuthorizeRequest(app, "r4", "", later), later))
	require.NoError(t, s.CreateAuthorizeChallenge(fromA, "c5", newAuthorizeRequest(other, "r5", "", later), later))
	byClient, byOrigin, err := s.CountPending(ctx(t), storage.PendingChallenge, "app", "203.0.113.1", now())
	require.NoError(t, err)
	require.Equal(t, [2]int64{3, 3}, [2]int64{byClient, byOrigin}, "unexpired rows of the client and of the origin")

	require.NoError(t, s.CreatePARSession(fromB, "urn:par:1", newAuthorizeRequest(app, "r6", "", later)))
	byClient, byOrigin, err = s.CountPending(ctx(t), storage.PendingPAR, "app", "2001:db8::/64", now())
	require.NoError(t, err)
	require.Equal(t, [2]int64{1, 1}, [2]int64{byClient, byOrigin})

	require.NoError(t, s.CreateDeviceCode(fromA, newDeviceCode(app, "d1", "dc-1", "BCDFGHJK", later)))
	require.NoError(t, s.CreateDeviceCode(fromA, newDeviceCode(app, "d2", "dc-2", "BCDFGHJL", later)))
	approve(t, s, "BCDFGHJL", "alice")
	byClient, byOrigin, err = s.CountPending(ctx(t), storage.PendingDevice, "app", "203.0.113.1", now())
	require.NoError(t, err)
	require.Equal(t, [2]int64{1, 1}, [2]int64{byClient, byOrigin}, "a decided device authorization waits no more")
}

func testCountRegisteredClients(t *testing.T, s storage.Store) {
	createClient(t, s, "made-by-an-administrator")
	for _, r := range []struct{ id, origin string }{{"dyn-1", "203.0.113.1"}, {"dyn-2", "203.0.113.1"}, {"dyn-3", "198.51.100.2"}} {
		c := testClient(r.id)
		c.RegistrationTokenHash = strings.Repeat("ab", 32)
		require.NoError(t, s.CreateClient(storage.WithOrigin(ctx(t), r.origin), c))
	}
	total, byOrigin, err := s.CountRegisteredClients(ctx(t), "203.0.113.1", time.Now().Add(-time.Hour))
	require.NoError(t, err)
	require.Equal(t, [2]int64{3, 2}, [2]int64{total, byOrigin})
	_, byOrigin, err = s.CountRegisteredClients(ctx(t), "203.0.113.1", time.Now().Add(time.Minute))
	require.NoError(t, err)
	require.Zero(t, byOrigin, "only registrations since the given time count")
}
