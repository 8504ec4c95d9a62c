package conformance

import (
	"errors"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/storage"
)

// tokenTests cover access and refresh tokens, rotation and transactions.
func tokenTests() []subtest {
	return []subtest{
		{"AccessToken", testAccessToken},
		{"AccessTokenNilSession", testAccessTokenNilSession},
		{"RefreshToken", testRefreshToken},
		{"TokenReadsCurrentClient", testTokenReadsCurrentClient},
		{"RotateRefreshToken", testRotateRefreshToken},
		{"RotateRefreshTokenTwice", testRotateRefreshTokenTwice},
		{"TransactionCommit", testTransactionCommit},
		{"TransactionRollback", testTransactionRollback},
		{"TransactionRollbackRotation", testTransactionRollbackRotation},
		{"TransactionRollbackAfterError", testTransactionRollbackAfterError},
	}
}

// requireInactive fails unless a refresh token read answers
// fosite.ErrInactiveToken together with its request: fosite's reuse
// detection revokes the grant through the returned request's ID.
func requireInactive(t *testing.T, s storage.Store, signature, requestID string) {
	t.Helper()
	got, err := s.GetRefreshTokenSession(ctx(t), signature, openid.NewDefaultSession())
	require.Truef(t, errors.Is(err, fosite.ErrInactiveToken), "refresh token %s: want ErrInactiveToken, got %v", signature, err)
	require.NotNilf(t, got, "refresh token %s: ErrInactiveToken must come with the request", signature)
	require.Equalf(t, requestID, got.GetID(), "request ID of inactive refresh token %s", signature)
}

func requireActive(t *testing.T, s storage.Store, signature, requestID string) {
	t.Helper()
	got, err := s.GetRefreshTokenSession(ctx(t), signature, openid.NewDefaultSession())
	require.NoErrorf(t, err, "refresh token %s should be active", signature)
	require.Equalf(t, requestID, got.GetID(), "request ID of refresh token %s", signature)
}

func requireAccess(t *testing.T, s storage.Store, signature string, present bool) {
	t.Helper()
	_, err := s.GetAccessTokenSession(ctx(t), signature, openid.NewDefaultSession())
	if present {
		require.NoErrorf(t, err, "access token %s should be readable", signature)
	} else {
		requireNotFound(t, err, "access token "+signature)
	}
}

func testAccessToken(t *testing.T, s storage.Store) {
	c := createClient(t, s, "app")
	req := newRequest(c, "req-1", "alice", now().Add(time.Hour))
	require.NoError(t, s.CreateAccessTokenSession(ctx(t), "at-1", req))

	// fosite hands in the session to hydrate (the token endpoint validates
	// expiry on it right after the read), so it must come back filled.
	sess := openid.NewDefaultSession()
	got, err := s.GetAccessTokenSession(ctx(t), "at-1", sess)
	require.NoError(t, err)
	requireRequest(t, req, got, fosite.AccessToken)
	requireSession(t, req.Session, sess, fosite.AccessToken)
	requireSession(t, req.Session, got.GetSession(), fosite.AccessToken)
	require.Equal(t, "alice", sess.IDTokenClaims().Subject, "ID token claims come back too")

	_, err = s.GetAccessTokenSession(ctx(t), "at-unknown", openid.NewDefaultSession())
	requireNotFound(t, err, "GetAccessTokenSession unknown")

	// A request with nothing but the essentials (client credentials without
	// scope) comes back with empty lists, not a list of one empty string.
	bare := &fosite.Request{ID: "req-bare", RequestedAt: now(), Client: c, Session: newSession("", now().Add(time.Hour))}
	require.NoError(t, s.CreateAccessTokenSession(ctx(t), "at-bare", bare))
	got, err = s.GetAccessTokenSession(ctx(t), "at-bare", openid.NewDefaultSession())
	require.NoError(t, err)
	require.Empty(t, got.GetRequestedScopes(), "requested scopes of a request without scope")
	require.Empty(t, got.GetGrantedScopes(), "granted scopes of a request without scope")
	require.Empty(t, got.GetGrantedAudience(), "granted audience of a request without audience")
	require.Empty(t, got.GetRequestForm(), "form of a request without form")
	require.Equal(t, "", got.GetSession().GetSubject())

	err = s.CreateAccessTokenSession(ctx(t), "at-1", newRequest(c, "req-2", "bob", now().Add(time.Hour)))
	require.Truef(t, errors.Is(err, storage.ErrAlreadyExists), "CreateAccessTokenSession twice: want ErrAlreadyExists, got %v", err)
	got, err = s.GetAccessTokenSession(ctx(t), "at-1", openid.NewDefaultSession())
	require.NoError(t, err)
	require.Equal(t, "req-1", got.GetID(), "the failed create left the first token as it was")

	require.NoError(t, s.DeleteAccessTokenSession(ctx(t), "at-1"))
	requireAccess(t, s, "at-1", false)
	requireNilOrNotFound(t, s.DeleteAccessTokenSession(ctx(t), "at-1"), "DeleteAccessTokenSession of a deleted token")
}

// testAccessTokenNilSession: fosite's revocation handler reads with a nil
// session; the store makes one (Options.NewSession).
func testAccessTokenNilSession(t *testing.T, s storage.Store) {
	c := createClient(t, s, "app")
	req := newRequest(c, "req-1", "alice", now().Add(time.Hour))
	require.NoError(t, s.CreateAccessTokenSession(ctx(t), "at-1", req))
	require.NoError(t, s.CreateRefreshTokenSession(ctx(t), "rt-1", "at-1", req))

	got, err := s.GetAccessTokenSession(ctx(t), "at-1", nil)
	require.NoError(t, err)
	requireRequest(t, req, got, fosite.AccessToken)
	got, err = s.GetRefreshTokenSession(ctx(t), "rt-1", nil)
	require.NoError(t, err)
	requireRequest(t, req, got, fosite.RefreshToken)
}

func testRefreshToken(t *testing.T, s storage.Store) {
	c := createClient(t, s, "app")
	req := newRequest(c, "req-1", "alice", now().Add(time.Hour))
	req.Session.SetExpiresAt(fosite.RefreshToken, now().Add(720*time.Hour))
	require.NoError(t, s.CreateAccessTokenSession(ctx(t), "at-1", req))
	require.NoError(t, s.CreateRefreshTokenSession(ctx(t), "rt-1", "at-1", req))

	sess := openid.NewDefaultSession()
	got, err := s.GetRefreshTokenSession(ctx(t), "rt-1", sess)
	require.NoError(t, err)
	requireRequest(t, req, got, fosite.RefreshToken)
	requireSession(t, req.Session, sess, fosite.RefreshToken)
	requireSession(t, req.Session, sess, fosite.AccessToken)

	_, err = s.GetRefreshTokenSession(ctx(t), "rt-unknown", openid.NewDefaultSession())
	requireNotFound(t, err, "GetRefreshTokenSession unknown")

	err = s.CreateRefreshTokenSession(ctx(t), "rt-1", "at-2", newRequest(c, "req-2", "bob", now().Add(time.Hour)))
	require.Truef(t, errors.Is(err, storage.ErrAlreadyExists), "CreateRefreshTokenSession twice: want ErrAlreadyExists, got %v", err)
	requireActive(t, s, "rt-1", "req-1")

	require.NoError(t, s.DeleteRefreshTokenSession(ctx(t), "rt-1"))
	_, err = s.GetRefreshTokenSession(ctx(t), "rt-1", openid.NewDefaultSession())
	requireNotFound(t, err, "GetRefreshTokenSession after delete")
	requireAccess(t, s, "at-1", true)
	requireNilOrNotFound(t, s.DeleteRefreshTokenSession(ctx(t), "rt-1"), "DeleteRefreshTokenSession of a deleted token")

	// fosite's reuse detection deletes the inactive token it was shown.
	require.NoError(t, s.CreateRefreshTokenSession(ctx(t), "rt-2", "at-1", req))
	require.NoError(t, s.RevokeRefreshToken(ctx(t), "req-1"))
	requireInactive(t, s, "rt-2", "req-1")
	require.NoError(t, s.DeleteRefreshTokenSession(ctx(t), "rt-2"))
	_, err = s.GetRefreshTokenSession(ctx(t), "rt-2", openid.NewDefaultSession())
	requireNotFound(t, err, "GetRefreshTokenSession after deleting an inactive token")
}

// testTokenReadsCurrentClient: a token names its client; a read loads the
// client as it is now, so an edit (or a deletion) takes effect at once.
func testTokenReadsCurrentClient(t *testing.T, s storage.Store) {
	c := createClient(t, s, "app")
	req := newRequest(c, "req-1", "alice", now().Add(time.Hour))
	require.NoError(t, s.CreateAccessTokenSession(ctx(t), "at-1", req))

	u := testClient("app")
	u.Scopes = []string{"openid"}
	u.Name = "Edited"
	require.NoError(t, s.UpdateClient(ctx(t), u))

	got, err := s.GetAccessTokenSession(ctx(t), "at-1", openid.NewDefaultSession())
	require.NoError(t, err)
	gc, ok := got.GetClient().(*clients.Client)
	require.Truef(t, ok, "client of a token is %T, want *clients.Client", got.GetClient())
	require.Equal(t, "Edited", gc.Name, "the token's client is read back as it is now")
	require.Equal(t, fosite.Arguments{"openid"}, gc.GetScopes())
	require.Equal(t, c.SecretHash, gc.SecretHash)
}

func testRotateRefreshToken(t *testing.T, s storage.Store) {
	c := createClient(t, s, "app")
	exp := now().Add(time.Hour)
	req := newRequest(c, "grant", "alice", exp)
	require.NoError(t, s.CreateAccessTokenSession(ctx(t), "at-1", req))
	require.NoError(t, s.CreateRefreshTokenSession(ctx(t), "rt-1", "at-1", req))
	// Another grant of the same client and subject must not be touched.
	other := newRequest(c, "other", "alice", exp)
	require.NoError(t, s.CreateAccessTokenSession(ctx(t), "at-other", other))
	require.NoError(t, s.CreateRefreshTokenSession(ctx(t), "rt-other", "at-other", other))

	require.NoError(t, s.RotateRefreshToken(ctx(t), "grant", "rt-1"))
	requireInactive(t, s, "rt-1", "grant")
	requireAccess(t, s, "at-1", false)

	// The refresh flow then stores the new pair under the same request ID.
	require.NoError(t, s.CreateAccessTokenSession(ctx(t), "at-2", req))
	require.NoError(t, s.CreateRefreshTokenSession(ctx(t), "rt-2", "at-2", req))
	requireActive(t, s, "rt-2", "grant")
	requireAccess(t, s, "at-2", true)
	requireInactive(t, s, "rt-1", "grant")

	// The inactive token still carries its whole request: reuse detection
	// needs its ID, client and session.
	sess := openid.NewDefaultSession()
	got, err := s.GetRefreshTokenSession(ctx(t), "rt-1", sess)
	require.True(t, errors.Is(err, fosite.ErrInactiveToken))
	requireRequest(t, req, got, fosite.RefreshToken)

	requireActive(t, s, "rt-other", "other")
	requireAccess(t, s, "at-other", true)
}

func testTransactionCommit(t *testing.T, s storage.Store) {
	c := createClient(t, s, "app")
	req := newRequest(c, "req-1", "alice", now().Add(time.Hour))

	txCtx, err := s.BeginTX(ctx(t))
	require.NoError(t, err)
	require.NoError(t, s.CreateAccessTokenSession(txCtx, "at-1", req))
	require.NoError(t, s.CreateRefreshTokenSession(txCtx, "rt-1", "at-1", req))
	// Inside the transaction its own writes are visible.
	got, err := s.GetAccessTokenSession(txCtx, "at-1", openid.NewDefaultSession())
	require.NoError(t, err, "a transaction reads its own writes")
	require.Equal(t, "req-1", got.GetID())
	_, err = s.GetRefreshTokenSession(txCtx, "rt-1", openid.NewDefaultSession())
	require.NoError(t, err, "a transaction reads its own writes")
	_, err = s.GetClient(txCtx, "app")
	require.NoError(t, err, "a transaction reads what was committed before it")
	require.NoError(t, s.Commit(txCtx))

	requireAccess(t, s, "at-1", true)
	requireActive(t, s, "rt-1", "req-1")
}

func testTransactionRollback(t *testing.T, s storage.Store) {
	c := createClient(t, s, "app")
	req := newRequest(c, "req-1", "alice", now().Add(time.Hour))

	txCtx, err := s.BeginTX(ctx(t))
	require.NoError(t, err)
	require.NoError(t, s.CreateAccessTokenSession(txCtx, "at-1", req))
	_, err = s.GetAccessTokenSession(txCtx, "at-1", openid.NewDefaultSession())
	require.NoError(t, err, "a transaction reads its own writes")
	require.NoError(t, s.Rollback(txCtx))

	requireAccess(t, s, "at-1", false)
	// The store works on after a rollback.
	require.NoError(t, s.CreateAccessTokenSession(ctx(t), "at-2", req))
	requireAccess(t, s, "at-2", true)
}

// testTransactionRollbackRotation: fosite rotates inside a transaction and
// rolls back when storing the new pair fails; the old pair must be as it
// was, or the user is logged out by a failed refresh.
func testTransactionRollbackRotation(t *testing.T, s storage.Store) {
	c := createClient(t, s, "app")
	req := newRequest(c, "grant", "alice", now().Add(time.Hour))
	require.NoError(t, s.CreateAccessTokenSession(ctx(t), "at-1", req))
	require.NoError(t, s.CreateRefreshTokenSession(ctx(t), "rt-1", "at-1", req))

	txCtx, err := s.BeginTX(ctx(t))
	require.NoError(t, err)
	require.NoError(t, s.RotateRefreshToken(txCtx, "grant", "rt-1"))
	_, err = s.GetRefreshTokenSession(txCtx, "rt-1", openid.NewDefaultSession())
	require.Truef(t, errors.Is(err, fosite.ErrInactiveToken), "inside the transaction the rotation is visible: got %v", err)
	require.NoError(t, s.CreateAccessTokenSession(txCtx, "at-2", req))
	require.NoError(t, s.Rollback(txCtx))

	requireActive(t, s, "rt-1", "grant")
	requireAccess(t, s, "at-1", true)
	requireAccess(t, s, "at-2", false)
}

// testRotateRefreshTokenTwice: two refreshes with one token (a replay, or a
// client retrying) must not both rotate it, or one refresh token would
// spend into two live grants. The loser learns the token is no longer
// active, which fosite answers with "retry" or reuse detection.
func testRotateRefreshTokenTwice(t *testing.T, s storage.Store) {
	c := createClient(t, s, "app")
	issue(t, s, c, "grant", "alice", "at-1", "rt-1")
	require.NoError(t, s.RotateRefreshToken(ctx(t), "grant", "rt-1"))
	err := s.RotateRefreshToken(ctx(t), "grant", "rt-1")
	requireRotationLost(t, err)
	requireInactive(t, s, "rt-1", "grant")
}

// requireRotationLost accepts the errors a store may give the loser of a
// rotation race: the token is inactive (or gone), or the database refused
// the concurrent transaction.
func requireRotationLost(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err, "rotating an already rotated refresh token must fail")
	require.Truef(t, errors.Is(err, fosite.ErrInactiveToken) || errors.Is(err, fosite.ErrNotFound) || errors.Is(err, fosite.ErrSerializationFailure),
		"rotating an already rotated refresh token: want ErrInactiveToken, ErrNotFound or ErrSerializationFailure, got %v", err)
}

// testTransactionRollbackAfterError: fosite rolls back when a write in its
// transaction fails (PostgreSQL has then aborted the transaction); the
// rollback must succeed, undo the earlier writes and leave the store usable.
func testTransactionRollbackAfterError(t *testing.T, s storage.Store) {
	c := createClient(t, s, "app")
	req := newRequest(c, "req-1", "alice", now().Add(time.Hour))
	require.NoError(t, s.CreateAccessTokenSession(ctx(t), "at-existing", req))

	txCtx, err := s.BeginTX(ctx(t))
	require.NoError(t, err)
	require.NoError(t, s.CreateAccessTokenSession(txCtx, "at-new", req))
	err = s.CreateAccessTokenSession(txCtx, "at-existing", req)
	require.Truef(t, errors.Is(err, storage.ErrAlreadyExists), "duplicate inside a transaction: want ErrAlreadyExists, got %v", err)
	require.NoError(t, s.Rollback(txCtx), "Rollback after a failed write")

	requireAccess(t, s, "at-new", false)
	requireAccess(t, s, "at-existing", true)
	require.NoError(t, s.CreateAccessTokenSession(ctx(t), "at-after", req), "the store works on")
	requireAccess(t, s, "at-after", true)
}
