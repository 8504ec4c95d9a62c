package conformance

import (
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/storage"
)

func browserTests() []subtest {
	return []subtest{
		{"LoginSessions", testLoginSessions},
		{"Consents", testConsents},
		{"AuthorizeChallenges", testAuthorizeChallenges},
	}
}

func createUser(t *testing.T, s storage.Store, name string) {
	t.Helper()
	require.NoError(t, s.UpsertUser(ctx(t), &storage.User{Username: name, PasswordHash: "$2a$04$abcdefghijklmnopqrstuu5Pp3Wc0/5nQk6pH0sQ7k0wH7h6oJ1Ri"}))
}

func testLoginSessions(t *testing.T, s storage.Store) {
	createUser(t, s, "alice")
	ls := &storage.LoginSession{ID: "session-secret-id", Username: "alice", AuthTime: now(), ExpiresAt: now().Add(time.Hour)}
	require.NoError(t, s.CreateLoginSession(ctx(t), ls))
	got, err := s.GetLoginSession(ctx(t), ls.ID)
	require.NoError(t, err)
	require.Equal(t, "alice", got.Username)
	require.True(t, ls.AuthTime.Equal(got.AuthTime), "auth time")
	require.Equal(t, []string{"pwd"}, got.AMR, "a session without amr was a password sign-in")

	mfa := &storage.LoginSession{ID: "mfa-session", Username: "alice", AuthTime: now(), ExpiresAt: now().Add(time.Hour), AMR: []string{"pwd", "otp", "mfa"}}
	require.NoError(t, s.CreateLoginSession(ctx(t), mfa))
	got, err = s.GetLoginSession(ctx(t), mfa.ID)
	require.NoError(t, err)
	require.Equal(t, mfa.AMR, got.AMR, "the verified factors come back")

	_, err = s.GetLoginSession(ctx(t), "another-id")
	requireNotFound(t, err, "unknown session")

	expired := &storage.LoginSession{ID: "old", Username: "alice", AuthTime: now().Add(-2 * time.Hour), ExpiresAt: now().Add(-time.Hour)}
	require.NoError(t, s.CreateLoginSession(ctx(t), expired))
	_, err = s.GetLoginSession(ctx(t), "old")
	requireNotFound(t, err, "expired session")
	n, err := s.DeleteExpired(ctx(t), now())
	require.NoError(t, err)
	require.GreaterOrEqual(t, n, int64(1), "the expired session is cleaned up")

	require.NoError(t, s.DeleteLoginSession(ctx(t), ls.ID))
	_, err = s.GetLoginSession(ctx(t), ls.ID)
	requireNotFound(t, err, "deleted session")
	require.NoError(t, s.DeleteLoginSession(ctx(t), ls.ID), "deleting twice is fine")

	// Deleting the user ends its sessions.
	require.NoError(t, s.CreateLoginSession(ctx(t), ls))
	require.NoError(t, s.DeleteUser(ctx(t), "alice"))
	_, err = s.GetLoginSession(ctx(t), ls.ID)
	requireNotFound(t, err, "session of a deleted user")
}

func testConsents(t *testing.T, s storage.Store) {
	createUser(t, s, "bob")
	createClient(t, s, "app")
	_, err := s.GetConsent(ctx(t), "bob", "app")
	requireNotFound(t, err, "no consent yet")
	require.NoError(t, s.SaveConsent(ctx(t), "bob", "app", []string{"openid", "email"}))
	got, err := s.GetConsent(ctx(t), "bob", "app")
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"openid", "email"}, got)
	require.NoError(t, s.SaveConsent(ctx(t), "bob", "app", []string{"openid"}))
	got, err = s.GetConsent(ctx(t), "bob", "app")
	require.NoError(t, err)
	require.Equal(t, []string{"openid"}, []string(got), "a new decision replaces the old")

	require.NoError(t, s.DeleteConsents(ctx(t), "bob"))
	_, err = s.GetConsent(ctx(t), "bob", "app")
	requireNotFound(t, err, "forgotten consent")

	require.NoError(t, s.SaveConsent(ctx(t), "bob", "app", []string{"openid"}))
	require.NoError(t, s.DeleteClient(ctx(t), "app"))
	_, err = s.GetConsent(ctx(t), "bob", "app")
	requireNotFound(t, err, "consent of a deleted client")
}

func testAuthorizeChallenges(t *testing.T, s storage.Store) {
	c := createClient(t, s, "app")
	ar := newAuthorizeRequest(c, "req-1", "", now().Add(time.Hour))
	ar.Session = nil // fosite's NewAuthorizeRequest sets none
	require.NoError(t, s.CreateAuthorizeChallenge(ctx(t), "challenge-1", ar, now().Add(10*time.Minute)))
	got, err := s.GetAuthorizeChallenge(ctx(t), "challenge-1")
	require.NoError(t, err)
	require.Equal(t, "req-1", got.GetID())
	require.Equal(t, ar.GetRedirectURI().String(), got.GetRedirectURI().String())
	require.Equal(t, ar.GetState(), got.GetState())
	require.Equal(t, ar.GetResponseTypes(), got.GetResponseTypes())
	require.Equal(t, ar.GetRequestForm(), got.GetRequestForm())

	_, err = s.GetAuthorizeChallenge(ctx(t), "challenge-2")
	requireNotFound(t, err, "unknown challenge")

	old := newAuthorizeRequest(c, "req-2", "", now().Add(time.Hour))
	require.NoError(t, s.CreateAuthorizeChallenge(ctx(t), "challenge-old", old, now().Add(-time.Second)))
	_, err = s.GetAuthorizeChallenge(ctx(t), "challenge-old")
	requireNotFound(t, err, "expired challenge")

	require.NoError(t, s.DeleteAuthorizeChallenge(ctx(t), "challenge-1"))
	_, err = s.GetAuthorizeChallenge(ctx(t), "challenge-1")
	requireNotFound(t, err, "decided challenge")
	requireNotFound(t, s.DeleteAuthorizeChallenge(ctx(t), "challenge-1"), "deciding a challenge twice")
}

// RunRefreshGrace checks the refresh_token_grace_period behaviour on a
// store opened with the given grace period.
func RunRefreshGrace(t *testing.T, newStore func(t *testing.T, grace time.Duration) storage.Store) {
	t.Run("RotatedTokenWorksDuringGrace", func(t *testing.T) {
		s := newStore(t, time.Hour)
		c := createClient(t, s, "app")
		req := newRequest(c, "grant-1", "carol", now().Add(time.Hour))
		require.NoError(t, s.CreateAccessTokenSession(ctx(t), "at-1", req))
		require.NoError(t, s.CreateRefreshTokenSession(ctx(t), "rt-1", "at-1", req))
		require.NoError(t, s.RotateRefreshToken(ctx(t), "grant-1", "rt-1"))
		require.NoError(t, s.CreateAccessTokenSession(ctx(t), "at-2", req))
		require.NoError(t, s.CreateRefreshTokenSession(ctx(t), "rt-2", "at-2", req))

		_, err := s.GetRefreshTokenSession(ctx(t), "rt-1", nil)
		require.NoError(t, err, "a rotated token stays active during the grace period")
		_, err = s.GetAccessTokenSession(ctx(t), "at-1", nil)
		requireNotFound(t, err, "the access token issued with the rotated refresh token")

		// A concurrent refresh with the same token inside the period
		// succeeds and must not delete what the first refresh issued.
		require.NoError(t, s.RotateRefreshToken(ctx(t), "grant-1", "rt-1"))
		_, err = s.GetAccessTokenSession(ctx(t), "at-2", nil)
		require.NoError(t, err, "the other refresh's access token survives")

		require.NoError(t, s.RevokeRefreshToken(ctx(t), "grant-1"))
		_, err = s.GetRefreshTokenSession(ctx(t), "rt-1", nil)
		require.ErrorIs(t, err, fosite.ErrInactiveToken, "revocation ends the grace period")
	})
	t.Run("RotatedTokenInactiveAfterGrace", func(t *testing.T) {
		s := newStore(t, time.Nanosecond)
		c := createClient(t, s, "app")
		req := newRequest(c, "grant-2", "dave", now().Add(time.Hour))
		require.NoError(t, s.CreateRefreshTokenSession(ctx(t), "rt-1", "", req))
		require.NoError(t, s.RotateRefreshToken(ctx(t), "grant-2", "rt-1"))
		time.Sleep(time.Millisecond)
		got, err := s.GetRefreshTokenSession(ctx(t), "rt-1", nil)
		require.ErrorIs(t, err, fosite.ErrInactiveToken)
		require.NotNil(t, got, "the requester comes with ErrInactiveToken")
		require.ErrorIs(t, s.RotateRefreshToken(ctx(t), "grant-2", "rt-1"), fosite.ErrInactiveToken)
	})
}

func pagingTests() []subtest {
	return []subtest{
		{"ListClientsPage", testListClientsPage},
		{"ListUsersPage", testListUsersPage},
		{"ListAndDeleteConsents", testListAndDeleteConsents},
		{"RegistrationTokenHash", testRegistrationTokenHash},
		{"ClientJWTSecret", testClientJWTSecret},
		{"CreateUser", testCreateUser},
		{"ClosedStore", testClosedStore},
	}
}

func testListClientsPage(t *testing.T, s storage.Store) {
	for _, id := range []string{"c", "a", "e", "b", "d"} {
		createClient(t, s, id)
	}
	var got []string
	after := ""
	for i := 0; i < 5; i++ {
		page, err := s.ListClientsPage(ctx(t), after, 2)
		require.NoError(t, err)
		if len(page) == 0 {
			break
		}
		require.LessOrEqual(t, len(page), 2)
		for _, c := range page {
			got = append(got, c.ID)
		}
		after = page[len(page)-1].ID
	}
	require.Equal(t, []string{"a", "b", "c", "d", "e"}, got)
	all, err := s.ListClientsPage(ctx(t), "", 0)
	require.NoError(t, err)
	require.Len(t, all, 5, "limit 0 lists everything")
}

func testListUsersPage(t *testing.T, s storage.Store) {
	for _, u := range []string{"carol", "alice", "bob"} {
		createUser(t, s, u)
	}
	page, err := s.ListUsersPage(ctx(t), "alice", 1)
	require.NoError(t, err)
	require.Len(t, page, 1)
	require.Equal(t, "bob", page[0].Username)
	page, err = s.ListUsersPage(ctx(t), "carol", 10)
	require.NoError(t, err)
	require.Empty(t, page)
}

func testListAndDeleteConsents(t *testing.T, s storage.Store) {
	createUser(t, s, "alice")
	createClient(t, s, "b-app")
	createClient(t, s, "a-app")
	require.NoError(t, s.SaveConsent(ctx(t), "alice", "b-app", []string{"openid"}))
	require.NoError(t, s.SaveConsent(ctx(t), "alice", "a-app", []string{"openid", "email"}))
	list, err := s.ListConsents(ctx(t), "alice")
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.Equal(t, "a-app", list[0].ClientID)
	require.ElementsMatch(t, []string{"openid", "email"}, list[0].Scopes)

	require.NoError(t, s.DeleteConsent(ctx(t), "alice", "a-app"))
	requireNotFound(t, s.DeleteConsent(ctx(t), "alice", "a-app"), "deleting a forgotten consent")
	list, err = s.ListConsents(ctx(t), "alice")
	require.NoError(t, err)
	require.Len(t, list, 1)
	list, err = s.ListConsents(ctx(t), "nobody")
	require.NoError(t, err)
	require.Empty(t, list)
}

func testRegistrationTokenHash(t *testing.T, s storage.Store) {
	c := testClient("dyn")
	c.RegistrationTokenHash = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	require.NoError(t, s.CreateClient(ctx(t), c))
	got, err := s.GetClient(ctx(t), "dyn")
	require.NoError(t, err)
	require.Equal(t, c.RegistrationTokenHash, got.(*clients.Client).RegistrationTokenHash)
	c.RegistrationTokenHash = ""
	require.NoError(t, s.UpdateClient(ctx(t), c))
	got, err = s.GetClient(ctx(t), "dyn")
	require.NoError(t, err)
	require.Empty(t, got.(*clients.Client).RegistrationTokenHash, "an update can clear it")
}

// testClientJWTSecret: a client_secret_jwt client's clear secret comes
// back from every read (it verifies the client's assertions), follows an
// update, and goes when the client leaves the method.
func testClientJWTSecret(t *testing.T, s storage.Store) {
	c := testClient("hmac")
	c.TokenEndpointAuthMethod = clients.AuthMethodSecretJWT
	c.JWTSecret = "first-secret-of-32-bytes-at-least-xxxx"
	require.NoError(t, s.CreateClient(ctx(t), c))
	got, err := s.GetClient(ctx(t), "hmac")
	require.NoError(t, err)
	require.Equal(t, c.JWTSecret, got.(*clients.Client).JWTSecret)

	c.JWTSecret = "second-secret-of-32-bytes-at-least-yyy"
	require.NoError(t, s.UpdateClient(ctx(t), c))
	list, err := s.ListClients(ctx(t))
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, c.JWTSecret, list[0].JWTSecret, "the update replaced it")

	c.TokenEndpointAuthMethod, c.JWTSecret = clients.AuthMethodBasic, ""
	require.NoError(t, s.UpdateClient(ctx(t), c))
	got, err = s.GetClient(ctx(t), "hmac")
	require.NoError(t, err)
	require.Empty(t, got.(*clients.Client).JWTSecret, "an update can clear it")
}

func testCreateUser(t *testing.T, s storage.Store) {
	u := &storage.User{Username: "erin", PasswordHash: "$2a$04$abcdefghijklmnopqrstuu5Pp3Wc0/5nQk6pH0sQ7k0wH7h6oJ1Ri"}
	require.NoError(t, s.CreateUser(ctx(t), u))
	err := s.CreateUser(ctx(t), &storage.User{Username: "erin", PasswordHash: "x"})
	require.ErrorIs(t, err, storage.ErrAlreadyExists)
	got, err := s.GetUser(ctx(t), "erin")
	require.NoError(t, err)
	require.Equal(t, u.PasswordHash, got.PasswordHash, "a refused create changes nothing")
}

// testClosedStore: with the database gone every kind of call reports
// ErrUnavailable, transactions included, never success or a raw error.
func testClosedStore(t *testing.T, s storage.Store) {
	createClient(t, s, "app")
	createUser(t, s, "alice")
	require.NoError(t, s.Close())
	_, err := s.GetClient(ctx(t), "app")
	require.ErrorIs(t, err, storage.ErrUnavailable, "GetClient")
	_, err = s.RevokeSubjectTokens(ctx(t), "alice")
	require.ErrorIs(t, err, storage.ErrUnavailable, "RevokeSubjectTokens")
	require.ErrorIs(t, s.DeleteUser(ctx(t), "alice"), storage.ErrUnavailable, "DeleteUser")
	require.ErrorIs(t, s.UpsertUser(ctx(t), &storage.User{Username: "bob", PasswordHash: "x"}), storage.ErrUnavailable, "UpsertUser")
	_, err = s.BeginTX(ctx(t))
	require.ErrorIs(t, err, storage.ErrUnavailable, "BeginTX")
}
