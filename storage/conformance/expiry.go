package conformance

import (
	"fmt"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/storage"
)

// expiryTests cover DeleteExpired, the janitor's clean-up.
func expiryTests() []subtest {
	return []subtest{
		{"DeleteExpired", testDeleteExpired},
		{"DeleteExpiredPARContext", testDeleteExpiredPARContext},
		{"DeleteExpiredKeepsTokensWithoutExpiry", testDeleteExpiredKeepsTokensWithoutExpiry},
		{"DeleteExpiredInstant", testDeleteExpiredInstant},
		{"DeleteExpiredInBatches", testDeleteExpiredInBatches},
	}
}

// withExpiry sets the expiry of each token type of req's session.
func withExpiry[R fosite.Requester](req R, exp map[fosite.TokenType]time.Time) R {
	for tt, at := range exp {
		if at.IsZero() {
			delete(req.GetSession().(*openid.DefaultSession).ExpiresAt, tt)
			continue
		}
		req.GetSession().SetExpiresAt(tt, at)
	}
	return req
}

// lookup reads one record; the prefix of its key says which kind.
type lookup struct {
	key string
	get func() error
}

func gets(t *testing.T, s storage.Store, keys ...string) []lookup {
	var out []lookup
	for _, key := range keys {
		var get func() error
		switch key[:3] {
		case "at-":
			get = func() error { _, err := s.GetAccessTokenSession(ctx(t), key, openid.NewDefaultSession()); return err }
		case "rt-":
			get = func() error { _, err := s.GetRefreshTokenSession(ctx(t), key, openid.NewDefaultSession()); return err }
		case "ac-":
			get = func() error { _, err := s.GetAuthorizeCodeSession(ctx(t), key, openid.NewDefaultSession()); return err }
		case "pk-":
			get = func() error { _, err := s.GetPKCERequestSession(ctx(t), key, openid.NewDefaultSession()); return err }
		case "id-":
			get = func() error {
				_, err := s.GetOpenIDConnectSession(ctx(t), key, &fosite.Request{Session: openid.NewDefaultSession()})
				return err
			}
		case "pa-":
			get = func() error { _, err := s.GetPARSession(ctx(t), key); return err }
		default:
			t.Fatalf("no lookup for %s", key)
		}
		out = append(out, lookup{key, get})
	}
	return out
}

func testDeleteExpired(t *testing.T, s storage.Store) {
	c := createClient(t, s, "app")
	t0 := now()
	past, future := t0.Add(-time.Hour), t0.Add(time.Hour)
	// Each request has exactly one kind of expiry in the past, so a
	// backend that files a row under the wrong kind's expiry is caught.
	atPast := map[fosite.TokenType]time.Time{fosite.AccessToken: past, fosite.RefreshToken: future, fosite.AuthorizeCode: future, fosite.PushedAuthorizeRequestContext: future}
	rtPast := map[fosite.TokenType]time.Time{fosite.AccessToken: future, fosite.RefreshToken: past, fosite.AuthorizeCode: future, fosite.PushedAuthorizeRequestContext: future}
	codePast := map[fosite.TokenType]time.Time{fosite.AccessToken: future, fosite.RefreshToken: future, fosite.AuthorizeCode: past, fosite.PushedAuthorizeRequestContext: past}
	reqA := withExpiry(newRequest(c, "ra", "alice", future), atPast)
	reqB := withExpiry(newRequest(c, "rb", "alice", future), rtPast)
	codeC := withExpiry(newAuthorizeRequest(c, "rc", "alice", future), codePast)
	codeA := withExpiry(newAuthorizeRequest(c, "rd", "alice", future), atPast)

	require.NoError(t, s.CreateAccessTokenSession(ctx(t), "at-expired", reqA))
	require.NoError(t, s.CreateAccessTokenSession(ctx(t), "at-live", reqB))
	require.NoError(t, s.CreateRefreshTokenSession(ctx(t), "rt-expired", "at-live", reqB))
	require.NoError(t, s.CreateRefreshTokenSession(ctx(t), "rt-live", "at-expired", reqA))
	for _, x := range []struct {
		key string
		req *fosite.AuthorizeRequest
	}{{"expired", codeC}, {"live", codeA}} {
		require.NoError(t, s.CreateAuthorizeCodeSession(ctx(t), "ac-"+x.key, x.req))
		require.NoError(t, s.CreatePKCERequestSession(ctx(t), "pk-"+x.key, x.req))
		require.NoError(t, s.CreateOpenIDConnectSession(ctx(t), "id-"+x.key, x.req))
		require.NoError(t, s.CreatePARSession(ctx(t), "pa-"+x.key, x.req))
	}
	// An inactive refresh token and a used code expire like any other.
	reqE := withExpiry(newRequest(c, "re", "alice", future), rtPast)
	require.NoError(t, s.CreateRefreshTokenSession(ctx(t), "rt-expired-inactive", "", reqE))
	require.NoError(t, s.RevokeRefreshToken(ctx(t), "re"))
	require.NoError(t, s.InvalidateAuthorizeCodeSession(ctx(t), "ac-expired"))
	const expiredRecords = 7 // access, 2 refresh, code, PKCE, OIDC, PAR

	require.NoError(t, s.SetClientAssertionJWT(ctx(t), "jti-live", future))
	require.NoError(t, s.MarkJWTUsedForTime(ctx(t), "bearer-live", future))
	require.NoError(t, s.SetClientAssertionJWT(ctx(t), "jti-expired", past))
	require.NoError(t, s.MarkJWTUsedForTime(ctx(t), "bearer-expired", past))

	n, err := s.DeleteExpired(ctx(t), t0)
	require.NoError(t, err)
	// Expired JTIs may already have gone when the next one was set (fosite's
	// memory store cleans up that way), so they are counted at most.
	require.GreaterOrEqual(t, n, int64(expiredRecords), "DeleteExpired count: every expired token, code and session")
	require.LessOrEqual(t, n, int64(expiredRecords+2), "DeleteExpired count: nothing unexpired")

	for _, l := range gets(t, s, "at-expired", "rt-expired", "rt-expired-inactive", "ac-expired", "pk-expired", "id-expired", "pa-expired") {
		requireNotFound(t, l.get(), l.key+" after DeleteExpired")
	}
	for _, l := range gets(t, s, "at-live", "rt-live", "ac-live", "pk-live", "id-live", "pa-live") {
		require.NoErrorf(t, l.get(), "%s after DeleteExpired", l.key)
	}
	require.ErrorIs(t, s.ClientAssertionJWTValid(ctx(t), "jti-live"), fosite.ErrJTIKnown, "an unexpired JTI survives DeleteExpired")
	used, err := s.IsJWTUsed(ctx(t), "bearer-live")
	require.NoError(t, err)
	require.True(t, used, "an unexpired JWT bearer JTI survives DeleteExpired")
	require.NoError(t, s.ClientAssertionJWTValid(ctx(t), "jti-expired"))

	n, err = s.DeleteExpired(ctx(t), t0)
	require.NoError(t, err)
	require.Equal(t, int64(0), n, "a second DeleteExpired finds nothing")
}

// testDeleteExpiredPARContext stores a PAR request the way fosite's PAR
// handler does: only the PushedAuthorizeRequestContext expiry is set (the
// code's expiry is set later, at the authorization endpoint). It must still
// expire, and the unexpired one must survive.
func testDeleteExpiredPARContext(t *testing.T, s storage.Store) {
	c := createClient(t, s, "app")
	t0 := now()
	for key, exp := range map[string]time.Time{"par-expired": t0.Add(-time.Minute), "par-live": t0.Add(time.Minute)} {
		areq := newAuthorizeRequest(c, key, "", t0)
		areq.Session = openid.NewDefaultSession()
		areq.Session.SetExpiresAt(fosite.PushedAuthorizeRequestContext, exp)
		require.NoError(t, s.CreatePARSession(ctx(t), key, areq))
	}
	_, err := s.DeleteExpired(ctx(t), t0)
	require.NoError(t, err)
	_, err = s.GetPARSession(ctx(t), "par-expired")
	requireNotFound(t, err, "a PAR context past its PushedAuthorizeRequestContext expiry, after DeleteExpired")
	_, err = s.GetPARSession(ctx(t), "par-live")
	require.NoError(t, err, "a PAR context before its PushedAuthorizeRequestContext expiry survives DeleteExpired")
}

// testDeleteExpiredKeepsTokensWithoutExpiry: with a refresh token lifespan
// of -1 fosite sets no refresh expiry at all; such a token never expires.
func testDeleteExpiredKeepsTokensWithoutExpiry(t *testing.T, s storage.Store) {
	c := createClient(t, s, "app")
	t0 := now()
	req := withExpiry(newRequest(c, "grant", "alice", t0.Add(time.Hour)), map[fosite.TokenType]time.Time{fosite.RefreshToken: {}})
	require.True(t, req.GetSession().GetExpiresAt(fosite.RefreshToken).IsZero())
	require.NoError(t, s.CreateRefreshTokenSession(ctx(t), "rt-forever", "at", req))

	n, err := s.DeleteExpired(ctx(t), t0)
	require.NoError(t, err)
	require.Equal(t, int64(0), n)
	requireActive(t, s, "rt-forever", "grant")
}

// testDeleteExpiredInstant: expiry is an instant, not a wall-clock reading.
// A janitor's now has nanoseconds and may be in local time; an expiry may
// have been set in another zone. Half a second either side decides.
func testDeleteExpiredInstant(t *testing.T, s storage.Store) {
	c := createClient(t, s, "app")
	exp := now().Add(time.Hour).In(time.FixedZone("UTC+5", 5*3600))
	req := newRequest(c, "grant", "alice", exp)
	require.NoError(t, s.CreateAccessTokenSession(ctx(t), "at-1", req))
	require.NoError(t, s.SetClientAssertionJWT(ctx(t), "jti-1", exp))

	west := time.FixedZone("UTC-7", -7*3600)
	n, err := s.DeleteExpired(ctx(t), exp.Add(-500*time.Millisecond).In(west))
	require.NoError(t, err)
	require.Equal(t, int64(0), n, "half a second before the expiry nothing has expired")
	requireAccess(t, s, "at-1", true)

	n, err = s.DeleteExpired(ctx(t), exp.Add(500*time.Millisecond).In(west))
	require.NoError(t, err)
	require.Equal(t, int64(2), n, "half a second after the expiry the token and the JTI have expired")
	requireAccess(t, s, "at-1", false)
}

// testDeleteExpiredInBatches: the janitor's way deletes at most batch rows
// per transaction, reports each batch, and still removes every expired row
// and nothing else.
func testDeleteExpiredInBatches(t *testing.T, s storage.Store) {
	c := createClient(t, s, "app")
	t0 := now()
	past, future := t0.Add(-time.Hour), t0.Add(time.Hour)
	const expired = 7
	for i := 0; i < expired; i++ {
		req := newRequest(c, fmt.Sprintf("gone-%d", i), "alice", past)
		require.NoError(t, s.CreateAccessTokenSession(ctx(t), fmt.Sprintf("at-gone-%d", i), req))
	}
	require.NoError(t, s.CreateAccessTokenSession(ctx(t), "at-live", newRequest(c, "live", "alice", future)))
	require.NoError(t, s.SetClientAssertionJWT(ctx(t), "jti-gone", past))

	var batches []int64
	perTable := map[string]int64{}
	n, err := s.DeleteExpiredInBatches(ctx(t), t0, 3, func(table string, n int64) {
		batches = append(batches, n)
		perTable[table] += n
	})
	require.NoError(t, err)
	require.Equal(t, int64(expired+1), n, "every expired token and the JTI")
	require.Equal(t, []int64{3, 3, 1, 1}, batches, "batches of at most 3 rows, each reported")
	require.Len(t, perTable, 2, "two tables had expired rows: %v", perTable)
	for table, got := range perTable {
		require.NotEmpty(t, table)
		require.Contains(t, []int64{expired, 1}, got, "rows deleted from %s", table)
	}
	requireAccess(t, s, "at-live", true)
	requireAccess(t, s, "at-gone-0", false)

	n, err = s.DeleteExpiredInBatches(ctx(t), t0, 3, nil)
	require.NoError(t, err)
	require.Equal(t, int64(0), n, "a second pass finds nothing")
}
