package conformance

import (
	"net/url"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/storage"
)

// deviceTests cover RFC 8628 device authorizations: the codes, the
// person's decision, polling, single use, clean-up and revocation.
func deviceTests() []subtest {
	return []subtest{
		{"DeviceCodeCreateAndGet", testDeviceCodeCreateAndGet},
		{"DeviceCodeApprove", testDeviceCodeApprove},
		{"DeviceCodeDeny", testDeviceCodeDeny},
		{"DeviceCodePoll", testDeviceCodePoll},
		{"DeviceCodeSingleUse", testDeviceCodeSingleUse},
		{"DeviceCodeExpiry", testDeviceCodeExpiry},
		{"DeviceCodeRevocation", testDeviceCodeRevocation},
		{"DeviceCodeClientDeleted", testDeviceCodeClientDeleted},
		{"DeviceCodeCountPending", testDeviceCodeCountPending},
	}
}

// newDeviceCode is a pending device authorization of c, as the device
// authorization endpoint stores it.
func newDeviceCode(c fosite.Client, requestID, signature, userCode string, exp time.Time) *storage.DeviceCode {
	return &storage.DeviceCode{
		Signature: signature,
		UserCode:  userCode,
		Request: &fosite.Request{
			ID:                requestID,
			RequestedAt:       now().Add(-time.Second),
			Client:            c,
			RequestedScope:    fosite.Arguments{"openid", "profile", "offline_access"},
			GrantedScope:      fosite.Arguments{},
			RequestedAudience: fosite.Arguments{"https://api.example.com"},
			GrantedAudience:   fosite.Arguments{},
			Form: url.Values{
				"client_id":     {c.GetID()},
				"scope":         {"openid profile offline_access"},
				"client_secret": {"never stored"},
			},
			Session: openid.NewDefaultSession(),
		},
		Interval:  5 * time.Second,
		ExpiresAt: exp,
	}
}

// approve approves the device code of userCode for subject.
func approve(t *testing.T, s storage.Store, userCode, subject string) {
	t.Helper()
	require.NoError(t, s.ApproveDeviceCode(ctx(t), userCode, []string{"openid", "offline_access"},
		[]string{"https://api.example.com"}, newSession(subject, now().Add(time.Hour))))
}

// poll polls signature once, politely (never too fast).
func poll(t *testing.T, s storage.Store, signature string) *storage.DeviceCode {
	t.Helper()
	dc, _, err := s.PollDeviceCode(ctx(t), signature, now(), 0, openid.NewDefaultSession())
	require.NoError(t, err, "PollDeviceCode %s", signature)
	return dc
}

func testDeviceCodeCreateAndGet(t *testing.T, s storage.Store) {
	c := createClient(t, s, "tv")
	exp := now().Add(10 * time.Minute)
	dc := newDeviceCode(c, "dev-1", "dc-1", "BCDFGHJK", exp)
	require.NoError(t, s.CreateDeviceCode(ctx(t), dc))

	got, err := s.GetDeviceCodeByUserCode(ctx(t), "BCDFGHJK")
	require.NoError(t, err)
	require.Equal(t, "dc-1", got.Signature)
	require.Empty(t, got.UserCode, "the user code is stored hashed, never given back")
	require.Equal(t, storage.DevicePending, got.Status)
	require.True(t, got.Active)
	require.Equal(t, 5*time.Second, got.Interval)
	require.Nil(t, got.LastPolledAt, "never polled")
	require.True(t, exp.Equal(got.ExpiresAt), "expiry: want %v, got %v", exp, got.ExpiresAt)
	require.Equal(t, "dev-1", got.Request.GetID())
	require.Equal(t, "tv", got.Request.GetClient().GetID())
	require.IsType(t, &clients.Client{}, got.Request.GetClient())
	require.ElementsMatch(t, []string{"openid", "profile", "offline_access"}, got.Request.GetRequestedScopes())
	require.Empty(t, got.Request.GetGrantedScopes(), "nothing is granted before the person decides")
	require.Equal(t, []string{"https://api.example.com"}, []string(got.Request.GetRequestedAudience()))
	require.Equal(t, "tv", got.Request.GetRequestForm().Get("client_id"))
	require.Empty(t, got.Request.GetRequestForm().Get("client_secret"), "a client secret is never stored")

	_, err = s.GetDeviceCodeByUserCode(ctx(t), "BCDFGHJL")
	requireNotFound(t, err, "unknown user code")
	_, err = s.GetDeviceCodeByUserCode(ctx(t), "bcdfghjk")
	requireNotFound(t, err, "user codes are looked up as given: the caller normalizes")

	// A user code already stored is refused, so the caller draws another.
	err = s.CreateDeviceCode(ctx(t), newDeviceCode(c, "dev-2", "dc-2", "BCDFGHJK", exp))
	require.ErrorIs(t, err, storage.ErrAlreadyExists, "a second device code with the same user code")
	err = s.CreateDeviceCode(ctx(t), newDeviceCode(c, "dev-3", "dc-1", "XXXXXXXX", exp))
	require.ErrorIs(t, err, storage.ErrAlreadyExists, "a second device code with the same signature")

	_, _, err = s.PollDeviceCode(ctx(t), "dc-unknown", now(), 5*time.Second, openid.NewDefaultSession())
	requireNotFound(t, err, "polling an unknown device code")

	err = s.CreateDeviceCode(ctx(t), newDeviceCode(testClient("ghost"), "dev-4", "dc-4", "ZZZZZZZZ", exp))
	requireNotFound(t, err, "a device code of an unknown client")
}

func testDeviceCodeApprove(t *testing.T, s storage.Store) {
	c := createClient(t, s, "tv")
	require.NoError(t, s.CreateDeviceCode(ctx(t), newDeviceCode(c, "dev-1", "dc-1", "BCDFGHJK", now().Add(10*time.Minute))))

	dc := poll(t, s, "dc-1")
	require.Equal(t, storage.DevicePending, dc.Status, "pending before the decision")

	approve(t, s, "BCDFGHJK", "alice")
	_, err := s.GetDeviceCodeByUserCode(ctx(t), "BCDFGHJK")
	requireNotFound(t, err, "an approved user code cannot be entered again")
	requireNotFound(t, s.ApproveDeviceCode(ctx(t), "BCDFGHJK", nil, nil, newSession("mallory", now().Add(time.Hour))), "approving twice")
	requireNotFound(t, s.DenyDeviceCode(ctx(t), "BCDFGHJK"), "denying after approval")

	sess := openid.NewDefaultSession()
	dc, _, err = s.PollDeviceCode(ctx(t), "dc-1", now(), 0, sess)
	require.NoError(t, err)
	require.Equal(t, storage.DeviceApproved, dc.Status)
	require.True(t, dc.Active)
	require.Equal(t, "alice", sess.GetSubject(), "the session is decoded into the one handed in")
	require.Equal(t, "alice", sess.IDTokenClaims().Subject, "with its ID token claims")
	require.Equal(t, "alice", dc.Request.GetSession().GetSubject())
	require.ElementsMatch(t, []string{"openid", "offline_access"}, dc.Request.GetGrantedScopes())
	require.Equal(t, []string{"https://api.example.com"}, []string(dc.Request.GetGrantedAudience()))
	require.Equal(t, "dev-1", dc.Request.GetID())

	// An expired device code cannot be approved.
	require.NoError(t, s.CreateDeviceCode(ctx(t), newDeviceCode(c, "dev-2", "dc-2", "CCCCCCCC", now().Add(-time.Second))))
	_, err = s.GetDeviceCodeByUserCode(ctx(t), "CCCCCCCC")
	requireNotFound(t, err, "an expired user code")
	requireNotFound(t, s.ApproveDeviceCode(ctx(t), "CCCCCCCC", nil, nil, newSession("alice", now().Add(time.Hour))), "approving an expired device code")
	requireNotFound(t, s.ApproveDeviceCode(ctx(t), "DDDDDDDD", nil, nil, newSession("alice", now().Add(time.Hour))), "approving an unknown user code")
}

func testDeviceCodeDeny(t *testing.T, s storage.Store) {
	c := createClient(t, s, "tv")
	require.NoError(t, s.CreateDeviceCode(ctx(t), newDeviceCode(c, "dev-1", "dc-1", "BCDFGHJK", now().Add(10*time.Minute))))
	require.NoError(t, s.DenyDeviceCode(ctx(t), "BCDFGHJK"))
	requireNotFound(t, s.DenyDeviceCode(ctx(t), "BCDFGHJK"), "denying twice")
	requireNotFound(t, s.ApproveDeviceCode(ctx(t), "BCDFGHJK", nil, nil, newSession("alice", now().Add(time.Hour))), "approving after a deny")
	_, err := s.GetDeviceCodeByUserCode(ctx(t), "BCDFGHJK")
	requireNotFound(t, err, "a denied user code")

	dc := poll(t, s, "dc-1")
	require.Equal(t, storage.DeviceDenied, dc.Status)
	require.False(t, dc.Active, "a denied device code can never issue tokens")
	requireNotFound(t, s.InvalidateDeviceCode(ctx(t), "dc-1"), "redeeming a denied device code")
}

func testDeviceCodePoll(t *testing.T, s storage.Store) {
	c := createClient(t, s, "tv")
	require.NoError(t, s.CreateDeviceCode(ctx(t), newDeviceCode(c, "dev-1", "dc-1", "BCDFGHJK", now().Add(10*time.Minute))))
	t0 := now()

	dc, tooFast, err := s.PollDeviceCode(ctx(t), "dc-1", t0, 5*time.Second, nil)
	require.NoError(t, err)
	require.False(t, tooFast, "the first poll is never too fast")
	require.Equal(t, 5*time.Second, dc.Interval)
	require.NotNil(t, dc.LastPolledAt)
	require.True(t, t0.Equal(*dc.LastPolledAt), "last poll: want %v, got %v", t0, *dc.LastPolledAt)

	dc, tooFast, err = s.PollDeviceCode(ctx(t), "dc-1", t0.Add(time.Second), 5*time.Second, nil)
	require.NoError(t, err)
	require.True(t, tooFast, "a poll 1 s after the last, with a 5 s interval")
	require.Equal(t, 10*time.Second, dc.Interval, "slow_down grows the interval by 5 s")

	// The grown interval is stored: 6 s later is still too fast.
	dc, tooFast, err = s.PollDeviceCode(ctx(t), "dc-1", t0.Add(7*time.Second), 5*time.Second, nil)
	require.NoError(t, err)
	require.True(t, tooFast, "6 s after the last poll, with a 10 s interval")
	require.Equal(t, 15*time.Second, dc.Interval)

	dc, tooFast, err = s.PollDeviceCode(ctx(t), "dc-1", t0.Add(22*time.Second), 5*time.Second, nil)
	require.NoError(t, err)
	require.False(t, tooFast, "15 s after the last poll, with a 15 s interval")
	require.Equal(t, 15*time.Second, dc.Interval)
	require.True(t, t0.Add(22*time.Second).Equal(*dc.LastPolledAt))

	got, err := s.GetDeviceCodeByUserCode(ctx(t), "BCDFGHJK")
	require.NoError(t, err)
	require.Equal(t, 15*time.Second, got.Interval, "the interval is persisted")
	require.True(t, t0.Add(22*time.Second).Equal(*got.LastPolledAt), "the last poll is persisted")
}

func testDeviceCodeSingleUse(t *testing.T, s storage.Store) {
	c := createClient(t, s, "tv")
	require.NoError(t, s.CreateDeviceCode(ctx(t), newDeviceCode(c, "dev-1", "dc-1", "BCDFGHJK", now().Add(10*time.Minute))))
	requireNotFound(t, s.InvalidateDeviceCode(ctx(t), "dc-1"), "redeeming a pending device code")

	approve(t, s, "BCDFGHJK", "alice")
	require.NoError(t, s.InvalidateDeviceCode(ctx(t), "dc-1"))
	requireNotFound(t, s.InvalidateDeviceCode(ctx(t), "dc-1"), "redeeming a device code twice")
	requireNotFound(t, s.InvalidateDeviceCode(ctx(t), "dc-unknown"), "redeeming an unknown device code")

	dc := poll(t, s, "dc-1")
	require.False(t, dc.Active, "a redeemed device code is inactive")
	require.Equal(t, storage.DeviceApproved, dc.Status, "and keeps its decision")
	require.Equal(t, "alice", dc.Request.GetSession().GetSubject())
}

func testDeviceCodeExpiry(t *testing.T, s storage.Store) {
	c := createClient(t, s, "tv")
	t0 := now()
	require.NoError(t, s.CreateDeviceCode(ctx(t), newDeviceCode(c, "dev-1", "dc-expired", "BCDFGHJK", t0.Add(-time.Minute))))
	require.NoError(t, s.CreateDeviceCode(ctx(t), newDeviceCode(c, "dev-2", "dc-live", "CCCCCCCC", t0.Add(time.Minute))))

	// An expired device code can still be polled until the clean-up (the
	// device is told expired_token).
	dc := poll(t, s, "dc-expired")
	require.True(t, dc.ExpiresAt.Before(t0))

	n, err := s.DeleteExpired(ctx(t), t0)
	require.NoError(t, err)
	require.Equal(t, int64(1), n, "DeleteExpired removes the expired device code only")
	_, _, err = s.PollDeviceCode(ctx(t), "dc-expired", t0, 0, nil)
	requireNotFound(t, err, "an expired device code after DeleteExpired")
	poll(t, s, "dc-live")
	_, err = s.GetDeviceCodeByUserCode(ctx(t), "CCCCCCCC")
	require.NoError(t, err, "an unexpired device code survives DeleteExpired")
}

// testDeviceCodeRevocation: bulk revocation ends device codes not yet
// redeemed, and the tokens issued from a redeemed one, which are ordinary
// rows with the device grant's request ID.
func testDeviceCodeRevocation(t *testing.T, s storage.Store) {
	tv := createClient(t, s, "tv")
	other := createClient(t, s, "other")
	exp := now().Add(10 * time.Minute)
	// dev-1: redeemed by alice, tokens issued; dev-2: approved by alice,
	// not yet redeemed; dev-3: pending; dev-4: another client's, approved
	// by bob.
	require.NoError(t, s.CreateDeviceCode(ctx(t), newDeviceCode(tv, "dev-1", "dc-1", "BBBBBBBB", exp)))
	require.NoError(t, s.CreateDeviceCode(ctx(t), newDeviceCode(tv, "dev-2", "dc-2", "CCCCCCCC", exp)))
	require.NoError(t, s.CreateDeviceCode(ctx(t), newDeviceCode(tv, "dev-3", "dc-3", "DDDDDDDD", exp)))
	require.NoError(t, s.CreateDeviceCode(ctx(t), newDeviceCode(other, "dev-4", "dc-4", "FFFFFFFF", exp)))
	approve(t, s, "BBBBBBBB", "alice")
	approve(t, s, "CCCCCCCC", "alice")
	approve(t, s, "FFFFFFFF", "bob")
	require.NoError(t, s.InvalidateDeviceCode(ctx(t), "dc-1"))
	issue(t, s, tv, "dev-1", "alice", "at-1", "rt-1")
	issue(t, s, other, "g-bob", "bob", "at-bob", "rt-bob")

	n, err := s.RevokeSubjectTokens(ctx(t), "alice")
	require.NoError(t, err)
	require.Equal(t, int64(2), n, "alice's grants: the redeemed device grant and the approved device code")
	requireInactive(t, s, "rt-1", "dev-1")
	requireAccess(t, s, "at-1", false)
	requireNotFound(t, s.InvalidateDeviceCode(ctx(t), "dc-2"), "an approved device code after its subject's revocation")
	require.False(t, poll(t, s, "dc-2").Active)
	require.True(t, poll(t, s, "dc-3").Active, "a pending device code has no subject yet")
	require.True(t, poll(t, s, "dc-4").Active, "bob's device code")
	requireActive(t, s, "rt-bob", "g-bob")

	n, err = s.RevokeClientTokens(ctx(t), "tv")
	require.NoError(t, err)
	require.Equal(t, int64(1), n, "the client's pending device code")
	require.False(t, poll(t, s, "dc-3").Active)
	requireNotFound(t, s.ApproveDeviceCode(ctx(t), "DDDDDDDD", nil, nil, newSession("alice", exp)), "approving a revoked device code")
	_, err = s.GetDeviceCodeByUserCode(ctx(t), "DDDDDDDD")
	requireNotFound(t, err, "a revoked user code")

	n, err = s.RevokeClientTokens(ctx(t), "other")
	require.NoError(t, err)
	require.Equal(t, int64(2), n, "bob's approved device code and his other grant")
	require.False(t, poll(t, s, "dc-4").Active)
}

func testDeviceCodeClientDeleted(t *testing.T, s storage.Store) {
	c := createClient(t, s, "tv")
	require.NoError(t, s.CreateDeviceCode(ctx(t), newDeviceCode(c, "dev-1", "dc-1", "BCDFGHJK", now().Add(10*time.Minute))))
	require.NoError(t, s.DeleteClient(ctx(t), "tv"))
	_, _, err := s.PollDeviceCode(ctx(t), "dc-1", now(), 0, nil)
	requireNotFound(t, err, "a device code of a deleted client")
	_, err = s.GetDeviceCodeByUserCode(ctx(t), "BCDFGHJK")
	requireNotFound(t, err, "a user code of a deleted client")
}

// testDeviceCodeCountPending: the metric counts unexpired authorizations
// still waiting for a decision, not decided or expired ones.
func testDeviceCodeCountPending(t *testing.T, s storage.Store) {
	c := createClient(t, s, "tv")
	t0 := now()
	count := func() int64 {
		t.Helper()
		n, err := s.CountPendingDeviceCodes(ctx(t), t0)
		require.NoError(t, err)
		return n
	}
	require.Equal(t, int64(0), count(), "an empty store")
	require.NoError(t, s.CreateDeviceCode(ctx(t), newDeviceCode(c, "dev-1", "dc-1", "BCDFGHJK", t0.Add(time.Minute))))
	require.NoError(t, s.CreateDeviceCode(ctx(t), newDeviceCode(c, "dev-2", "dc-2", "CCCCCCCC", t0.Add(time.Minute))))
	require.NoError(t, s.CreateDeviceCode(ctx(t), newDeviceCode(c, "dev-3", "dc-3", "DDDDDDDD", t0.Add(-time.Minute))))
	require.Equal(t, int64(2), count(), "two pending, one expired")
	approve(t, s, "BCDFGHJK", "alice")
	require.Equal(t, int64(1), count(), "an approved one is no longer pending")
	require.NoError(t, s.DenyDeviceCode(ctx(t), "CCCCCCCC"))
	require.Equal(t, int64(0), count(), "nor a denied one")
}
