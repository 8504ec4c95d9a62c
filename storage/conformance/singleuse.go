package conformance

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/storage"
)

// singleUseTests: every single-use thing is spent by a write that only
// one of several concurrent uses can make, and the store tells the others
// with the sentinel fosite or the server reacts to. The reads that come
// before (fosite's) may all succeed; the write decides.
func singleUseTests() []subtest {
	return []subtest{
		{"SingleUseCodeExchangeOneWinner", testCodeExchangeOneWinner},
		{"SingleUsePARSessionOneWinner", testPARSessionOneWinner},
		{"SingleUseChallengeOneWinner", testChallengeOneWinner},
		{"SingleUseDeviceCodeOneWinner", testDeviceCodeOneWinner},
		{"SingleUseJTIOneWinner", testJTIOneWinner},
		{"RefreshRevokedToldFromUsed", testRefreshRevokedToldFromUsed},
	}
}

// racers is how many concurrent uses each test releases at once.
const racers = 12

// Together runs fn(0) … fn(n-1) on n goroutines released at the same
// moment (each waits on one channel, closed once all stand ready) and
// returns when all are done: the way to race n uses of one single-use
// thing.
func Together(n int, fn func(i int)) {
	start := make(chan struct{})
	var ready, done sync.WaitGroup
	for i := range n {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			fn(i)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
}

// raceUses runs use(i) for every racer at once and returns their errors.
func raceUses(use func(i int) error) []error {
	errs := make([]error, racers)
	Together(racers, func(i int) { errs[i] = use(i) })
	return errs
}

// requireOneWinner fails unless exactly one use succeeded and every other
// failed with lost. It returns the winner's index.
func requireOneWinner(t *testing.T, errs []error, lost error, what string) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		if err == nil {
			require.Equalf(t, -1, winner, "%s: uses %d and %d both succeeded", what, winner, i)
			winner = i
			continue
		}
		require.Truef(t, errors.Is(err, lost), "%s: a losing use must fail with %v, got %v", what, lost, err)
	}
	require.NotEqualf(t, -1, winner, "%s: no use succeeded: %v", what, errs)
	return winner
}

// testCodeExchangeOneWinner is what fosite's code exchange asks of the
// store, by 12 exchanges of one code at once: in one transaction,
// invalidate the code and store the access token. One commits; every
// other gets ErrInvalidatedAuthorizeCode and stores nothing.
func testCodeExchangeOneWinner(t *testing.T, s storage.Store) {
	c := createClient(t, s, "app")
	areq := newAuthorizeRequest(c, "req-1", "alice", now().Add(10*time.Minute))
	require.NoError(t, s.CreateAuthorizeCodeSession(ctx(t), "code-1", areq))
	errs := raceUses(func(i int) (err error) {
		txCtx, err := s.BeginTX(ctx(t))
		if err != nil {
			return err
		}
		defer func() {
			if err != nil {
				err = errors.Join(err, s.Rollback(txCtx))
			}
		}()
		if err := s.InvalidateAuthorizeCodeSession(txCtx, "code-1"); err != nil {
			return err
		}
		if err := s.CreateAccessTokenSession(txCtx, fmt.Sprintf("at-%d", i), newRequest(c, "req-1", "alice", now().Add(time.Hour))); err != nil {
			return err
		}
		return s.Commit(txCtx)
	})
	winner := requireOneWinner(t, errs, fosite.ErrInvalidatedAuthorizeCode, "exchanging one code")
	for i := range racers {
		requireAccess(t, s, fmt.Sprintf("at-%d", i), i == winner)
	}
}

// testPARSessionOneWinner: fosite reads a pushed request, then deletes
// it; of 12 uses that all read it, one delete wins.
func testPARSessionOneWinner(t *testing.T, s storage.Store) {
	c := createClient(t, s, "app")
	const uri = "urn:ietf:params:oauth:request_uri:once"
	require.NoError(t, s.CreatePARSession(ctx(t), uri, newAuthorizeRequest(c, "req-1", "", now().Add(time.Minute))))
	errs := raceUses(func(int) error {
		if _, err := s.GetPARSession(ctx(t), uri); err != nil {
			return err
		}
		return s.DeletePARSession(ctx(t), uri)
	})
	requireOneWinner(t, errs, fosite.ErrNotFound, "using one request_uri")
}

// testChallengeOneWinner: a login or consent decision claims its
// challenge by deleting it; of 12 decisions at once, one does.
func testChallengeOneWinner(t *testing.T, s storage.Store) {
	c := createClient(t, s, "app")
	ar := newAuthorizeRequest(c, "req-1", "", now().Add(time.Minute))
	require.NoError(t, s.CreateAuthorizeChallenge(ctx(t), "challenge-1", ar, now().Add(10*time.Minute)))
	errs := raceUses(func(int) error {
		if _, err := s.GetAuthorizeChallenge(ctx(t), "challenge-1"); err != nil {
			return err
		}
		return s.DeleteAuthorizeChallenge(ctx(t), "challenge-1")
	})
	requireOneWinner(t, errs, fosite.ErrNotFound, "deciding one challenge")
}

// testDeviceCodeOneWinner: of 12 polls that all found the device code
// approved, one redeems it.
func testDeviceCodeOneWinner(t *testing.T, s storage.Store) {
	c := createClient(t, s, "app")
	require.NoError(t, s.CreateDeviceCode(ctx(t), newDeviceCode(c, "dev-1", "dc-1", "BCDFGHJK", now().Add(10*time.Minute))))
	approve(t, s, "BCDFGHJK", "alice")
	errs := raceUses(func(int) error {
		return s.InvalidateDeviceCode(ctx(t), "dc-1")
	})
	requireOneWinner(t, errs, fosite.ErrNotFound, "redeeming one device code")
}

// testJTIOneWinner: 12 uses of one JWT ID at once, as fosite checks and
// then records it: one records it, the others learn it is known.
func testJTIOneWinner(t *testing.T, s storage.Store) {
	exp := now().Add(time.Hour)
	errs := raceUses(func(int) error {
		if used, err := s.IsJWTUsed(ctx(t), "jti-1"); err != nil || used {
			return errors.Join(err, fosite.ErrJTIKnown)
		}
		return s.MarkJWTUsedForTime(ctx(t), "jti-1", exp)
	})
	requireOneWinner(t, errs, fosite.ErrJTIKnown, "using one jti")
}

// testRefreshRevokedToldFromUsed: a revoked refresh token reads as
// storage.ErrRevoked, a rotated one as plain ErrInactiveToken; both are
// ErrInactiveToken with their request, for fosite's reuse detection.
func testRefreshRevokedToldFromUsed(t *testing.T, s storage.Store) {
	c := createClient(t, s, "app")
	issue(t, s, c, "grant-1", "alice", "at-1", "rt-1")
	issue(t, s, c, "grant-2", "alice", "at-2", "rt-2")
	require.NoError(t, s.RotateRefreshToken(ctx(t), "grant-1", "rt-1"))
	require.NoError(t, s.RevokeRefreshToken(ctx(t), "grant-2"))

	_, err := s.GetRefreshTokenSession(ctx(t), "rt-1", openid.NewDefaultSession())
	require.Falsef(t, errors.Is(err, storage.ErrRevoked), "a rotated token was used, not revoked: %v", err)
	requireInactive(t, s, "rt-1", "grant-1")
	_, err = s.GetRefreshTokenSession(ctx(t), "rt-2", openid.NewDefaultSession())
	require.Truef(t, errors.Is(err, storage.ErrRevoked), "a revoked token: want ErrRevoked, got %v", err)
	requireInactive(t, s, "rt-2", "grant-2")
	require.ErrorIs(t, s.RotateRefreshToken(ctx(t), "grant-2", "rt-2"), storage.ErrRevoked, "rotating a revoked token")

	// Revoking the grant after a rotation: the used token stays used.
	require.NoError(t, s.RevokeRefreshToken(ctx(t), "grant-1"))
	_, err = s.GetRefreshTokenSession(ctx(t), "rt-1", openid.NewDefaultSession())
	require.False(t, errors.Is(err, storage.ErrRevoked), "a used token stays used: %v", err)
}
