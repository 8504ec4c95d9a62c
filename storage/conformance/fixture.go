package conformance

import (
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/storage"
)

// fixtureTests cover ExpireNow, the one storage method that exists for
// test fixtures (latchtest.Expire, /dev/expire).
func fixtureTests() []subtest {
	return []subtest{
		{"ExpireNowTokensAndCodes", testExpireNowTokensAndCodes},
		{"ExpireNowDeviceCode", testExpireNowDeviceCode},
		{"ExpireNowUnknown", testExpireNowUnknown},
	}
}

// testExpireNowTokensAndCodes: after ExpireNow the session fosite decodes
// says the token expired (that is what fosite's validation reads), only
// the kind of that table changes, the other rows of the grant keep their
// expiry, and the janitor takes the row.
func testExpireNowTokensAndCodes(t *testing.T, s storage.Store) {
	c := createClient(t, s, "app")
	future := now().Add(time.Hour)
	req := newRequest(c, "grant-1", "alice", future)
	require.NoError(t, s.CreateAccessTokenSession(ctx(t), "at-1", req))
	require.NoError(t, s.CreateRefreshTokenSession(ctx(t), "rt-1", "at-1", req))
	require.NoError(t, s.CreateAuthorizeCodeSession(ctx(t), "ac-1", newAuthorizeRequest(c, "grant-2", "alice", future)))

	cases := []struct {
		signature string
		kind      fosite.TokenType
		get       func(sig string) (fosite.Requester, error)
	}{
		{"at-1", fosite.AccessToken, func(sig string) (fosite.Requester, error) {
			return s.GetAccessTokenSession(ctx(t), sig, openid.NewDefaultSession())
		}},
		{"rt-1", fosite.RefreshToken, func(sig string) (fosite.Requester, error) {
			return s.GetRefreshTokenSession(ctx(t), sig, openid.NewDefaultSession())
		}},
		{"ac-1", fosite.AuthorizeCode, func(sig string) (fosite.Requester, error) {
			return s.GetAuthorizeCodeSession(ctx(t), sig, openid.NewDefaultSession())
		}},
	}
	for _, tc := range cases {
		before := now()
		require.NoError(t, s.ExpireNow(ctx(t), tc.signature), "ExpireNow %s", tc.signature)
		got, err := tc.get(tc.signature)
		require.NoError(t, err, "the row is still readable after ExpireNow %s", tc.signature)
		exp := got.GetSession().GetExpiresAt(tc.kind)
		require.False(t, exp.IsZero(), "%s: the session keeps an expiry", tc.signature)
		require.False(t, exp.After(time.Now().UTC()), "%s: the session expiry %s is not in the future", tc.signature, exp)
		require.False(t, exp.Before(before.Add(-time.Second)), "%s: the expiry %s is now, not long ago", tc.signature, exp)
		require.Equal(t, "alice", got.GetSession().GetSubject(), "%s: the rest of the session is kept", tc.signature)
		require.Equal(t, []string(req.GetGrantedScopes()), []string(got.GetGrantedScopes()), "%s: the request is kept", tc.signature)
	}

	// The refresh row's access expiry is not its kind: untouched.
	rt, err := s.GetRefreshTokenSession(ctx(t), "rt-1", openid.NewDefaultSession())
	require.NoError(t, err)
	require.WithinDuration(t, future, rt.GetSession().GetExpiresAt(fosite.AccessToken), time.Second)

	n, err := s.DeleteExpired(ctx(t), time.Now().Add(time.Second))
	require.NoError(t, err)
	require.GreaterOrEqual(t, n, int64(3), "the janitor sees the new expires_at")
	_, err = s.GetAccessTokenSession(ctx(t), "at-1", openid.NewDefaultSession())
	requireNotFound(t, err, "expired access token after DeleteExpired")
}

func testExpireNowDeviceCode(t *testing.T, s storage.Store) {
	c := createClient(t, s, "tv")
	require.NoError(t, s.CreateDeviceCode(ctx(t), newDeviceCode(c, "dev-1", "dc-1", "BCDFGHJK", now().Add(10*time.Minute))))
	require.NoError(t, s.ExpireNow(ctx(t), "dc-1"))
	_, err := s.GetDeviceCodeByUserCode(ctx(t), "BCDFGHJK")
	requireNotFound(t, err, "the user code of an expired device code")
	dc, _, err := s.PollDeviceCode(ctx(t), "dc-1", time.Now(), 0, openid.NewDefaultSession())
	require.NoError(t, err)
	require.False(t, time.Now().Before(dc.ExpiresAt), "a poll sees the device code expired: %s", dc.ExpiresAt)
}

func testExpireNowUnknown(t *testing.T, s storage.Store) {
	requireNotFound(t, s.ExpireNow(ctx(t), "no-such-signature"), "ExpireNow of an unknown signature")
}
