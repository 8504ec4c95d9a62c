package conformance

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/storage"
)

// revocationTests cover RFC 7009 revocation by request ID and Latch's bulk
// revocation by client and by subject.
func revocationTests() []subtest {
	return []subtest{
		{"RevokeRefreshToken", testRevokeRefreshToken},
		{"RevokeAccessToken", testRevokeAccessToken},
		{"RevokeRotatedChain", testRevokeRotatedChain},
		{"RevokeUnknownRequest", testRevokeUnknownRequest},
		{"RevokeClientTokens", testRevokeClientTokens},
		{"RevokeSubjectTokens", testRevokeSubjectTokens},
		{"DeleteUserRevokes", testDeleteUserRevokes},
	}
}

// issue stores an access and a refresh token of one grant.
func issue(t *testing.T, s storage.Store, c *clients.Client, requestID, subject, at, rt string) {
	t.Helper()
	req := newRequest(c, requestID, subject, now().Add(time.Hour))
	require.NoError(t, s.CreateAccessTokenSession(ctx(t), at, req))
	require.NoError(t, s.CreateRefreshTokenSession(ctx(t), rt, at, req))
}

func testRevokeRefreshToken(t *testing.T, s storage.Store) {
	c := createClient(t, s, "app")
	issue(t, s, c, "grant", "alice", "at-1", "rt-1")
	// A second refresh token of the same grant (two refreshes racing in a
	// grace period leave two).
	issue(t, s, c, "grant", "alice", "at-2", "rt-2")
	issue(t, s, c, "other", "alice", "at-other", "rt-other")

	require.NoError(t, s.RevokeRefreshToken(ctx(t), "grant"))
	requireInactive(t, s, "rt-1", "grant")
	requireInactive(t, s, "rt-2", "grant")
	requireActive(t, s, "rt-other", "other")
	requireAccess(t, s, "at-other", true)

	require.NoError(t, s.RevokeRefreshToken(ctx(t), "grant"), "revoking a revoked grant again")
	requireInactive(t, s, "rt-1", "grant")
}

func testRevokeAccessToken(t *testing.T, s storage.Store) {
	c := createClient(t, s, "app")
	issue(t, s, c, "grant", "alice", "at-1", "rt-1")
	issue(t, s, c, "grant", "alice", "at-2", "rt-2")
	issue(t, s, c, "other", "alice", "at-other", "rt-other")

	require.NoError(t, s.RevokeAccessToken(ctx(t), "grant"))
	requireAccess(t, s, "at-1", false)
	requireAccess(t, s, "at-2", false)
	requireAccess(t, s, "at-other", true)
	requireActive(t, s, "rt-other", "other")

	require.NoError(t, s.RevokeAccessToken(ctx(t), "grant"), "revoking a revoked grant again")
}

// testRevokeRotatedChain: revocation by request ID reaches every token the
// grant ever had, not only the latest pair.
func testRevokeRotatedChain(t *testing.T, s storage.Store) {
	c := createClient(t, s, "app")
	issue(t, s, c, "grant", "alice", "at-1", "rt-1")
	issue(t, s, c, "other", "alice", "at-other", "rt-other")

	require.NoError(t, s.RotateRefreshToken(ctx(t), "grant", "rt-1"))
	issue(t, s, c, "grant", "alice", "at-2", "rt-2")
	requireActive(t, s, "rt-2", "grant")

	require.NoError(t, s.RevokeRefreshToken(ctx(t), "grant"))
	require.NoError(t, s.RevokeAccessToken(ctx(t), "grant"))
	requireInactive(t, s, "rt-1", "grant")
	requireInactive(t, s, "rt-2", "grant")
	requireAccess(t, s, "at-1", false)
	requireAccess(t, s, "at-2", false)

	requireActive(t, s, "rt-other", "other")
	requireAccess(t, s, "at-other", true)
}

func testRevokeUnknownRequest(t *testing.T, s storage.Store) {
	c := createClient(t, s, "app")
	issue(t, s, c, "grant", "alice", "at-1", "rt-1")
	require.NoError(t, s.RevokeRefreshToken(ctx(t), "nope"), "RevokeRefreshToken of an unknown request ID")
	require.NoError(t, s.RevokeAccessToken(ctx(t), "nope"), "RevokeAccessToken of an unknown request ID")
	requireActive(t, s, "rt-1", "grant")
	requireAccess(t, s, "at-1", true)
}

func testRevokeClientTokens(t *testing.T, s storage.Store) {
	app := createClient(t, s, "app")
	other := createClient(t, s, "other")
	issue(t, s, app, "g1", "alice", "at-1", "rt-1")
	issue(t, s, app, "g2", "bob", "at-2", "rt-2")
	issue(t, s, other, "g3", "alice", "at-3", "rt-3")

	n, err := s.RevokeClientTokens(ctx(t), "app")
	require.NoError(t, err)
	require.Equal(t, int64(2), n, "RevokeClientTokens counts grants, not rows")
	requireInactive(t, s, "rt-1", "g1")
	requireInactive(t, s, "rt-2", "g2")
	requireAccess(t, s, "at-1", false)
	requireAccess(t, s, "at-2", false)
	requireActive(t, s, "rt-3", "g3")
	requireAccess(t, s, "at-3", true)

	_, err = s.GetClient(ctx(t), "app")
	require.NoError(t, err, "RevokeClientTokens keeps the client")

	n, err = s.RevokeClientTokens(ctx(t), "nobody")
	require.NoError(t, err, "RevokeClientTokens of a client without tokens")
	require.Equal(t, int64(0), n)
	requireActive(t, s, "rt-3", "g3")
}

func testRevokeSubjectTokens(t *testing.T, s storage.Store) {
	app := createClient(t, s, "app")
	other := createClient(t, s, "other")
	issue(t, s, app, "g1", "alice", "at-1", "rt-1")
	issue(t, s, other, "g2", "alice", "at-2", "rt-2")
	issue(t, s, app, "g3", "bob", "at-3", "rt-3")
	issue(t, s, app, "g4", "alice2", "at-4", "rt-4")

	n, err := s.RevokeSubjectTokens(ctx(t), "alice")
	require.NoError(t, err)
	require.Equal(t, int64(2), n, "RevokeSubjectTokens counts grants, not rows")
	requireInactive(t, s, "rt-1", "g1")
	requireInactive(t, s, "rt-2", "g2")
	requireAccess(t, s, "at-1", false)
	requireAccess(t, s, "at-2", false)
	requireActive(t, s, "rt-3", "g3")
	requireAccess(t, s, "at-3", true)
	requireActive(t, s, "rt-4", "g4")
	requireAccess(t, s, "at-4", true)

	n, err = s.RevokeSubjectTokens(ctx(t), "nobody")
	require.NoError(t, err, "RevokeSubjectTokens of a subject without tokens")
	require.Equal(t, int64(0), n)
}

// testDeleteUserRevokes: deleting a user ends their grants with them.
func testDeleteUserRevokes(t *testing.T, s storage.Store) {
	app := createClient(t, s, "app")
	createUser(t, s, "alice")
	createUser(t, s, "bob")
	issue(t, s, app, "g1", "alice", "at-1", "rt-1")
	issue(t, s, app, "g2", "bob", "at-2", "rt-2")
	require.NoError(t, s.SaveConsent(ctx(t), "alice", "app", []string{"openid"}))

	require.NoError(t, s.DeleteUser(ctx(t), "alice"))
	requireInactive(t, s, "rt-1", "g1")
	requireAccess(t, s, "at-1", false)
	_, err := s.GetConsent(ctx(t), "alice", "app")
	requireNotFound(t, err, "consent of a deleted user")
	requireActive(t, s, "rt-2", "g2")
	requireAccess(t, s, "at-2", true)
}
