package server_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/ory/fosite"
	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/storage"
)

// An exchanged token is a token of its client like any other: introspected
// (with act), revoked by its client at the revocation endpoint without
// touching the subject's grant; and revoking the subject token's grant
// revokes it, and what was exchanged from it in turn, while a refresh of
// the subject's grant does not.
func TestTokenExchangeRevocation(t *testing.T) {
	ts := newExchangeFixture(t)
	delegate := func(t *testing.T, subject string, audience string) string {
		t.Helper()
		return ts.exchangeOK(t, "gateway", map[string]string{"subject_token": subject, "subject_token_type": ttAccess,
			"actor_token": ts.clientCredentials(t, "gateway", "read"), "actor_token_type": ttAccess, "audience": audience})["access_token"].(string)
	}
	revoke := func(t *testing.T, clientID, token string) {
		t.Helper()
		r := ts.post(t, "/oauth2/revoke", "form", map[string]string{"token": token}, ts.as(clientID))
		require.Equal(t, http.StatusOK, r.Status, "revoke: %s", r.Body)
	}

	t.Run("revoking the exchanged token leaves the subject's grant", func(t *testing.T) {
		alice := issueGrant(t, ts, "gateway", "read", "offline_access")
		x := delegate(t, alice.Access, billingAPI)
		require.Equal(t, map[string]any{"sub": "gateway"}, ts.introspected(t, x)["act"])
		revoke(t, "gateway", x)
		require.False(t, ts.active(t, x))
		require.True(t, ts.active(t, alice.Access))
		require.True(t, ts.active(t, alice.Refresh))
	})

	t.Run("another client may not revoke it", func(t *testing.T) {
		alice := issueGrant(t, ts, "gateway", "read")
		x := delegate(t, alice.Access, billingAPI)
		r := ts.post(t, "/oauth2/revoke", "form", map[string]string{"token": x}, ts.as("other-client"))
		requireError(t, r, http.StatusBadRequest, "unauthorized_client")
		require.True(t, ts.active(t, x))
	})

	t.Run("revoking the subject's grant revokes the chain", func(t *testing.T) {
		alice := issueGrant(t, ts, "gateway", "read", "offline_access")
		first := delegate(t, alice.Access, "api")
		second := ts.exchangeOK(t, "api", map[string]string{"subject_token": first, "subject_token_type": ttAccess})["access_token"].(string)
		refresh := ts.exchangeOK(t, "api", map[string]string{"subject_token": first, "subject_token_type": ttAccess,
			"requested_token_type": ttRefresh, "scope": "read offline_access"})["access_token"].(string)
		require.True(t, ts.active(t, second))
		require.True(t, ts.active(t, refresh))

		// The subject's grant is refreshed: exchanged tokens live on.
		renewed := ts.refreshOK(t, "gateway", alice.Refresh)
		require.True(t, ts.active(t, first), "a refresh of the subject's grant is not a revocation")
		require.True(t, ts.active(t, second))

		revoke(t, "gateway", renewed.Refresh)
		for name, tok := range map[string]string{"first": first, "second": second, "refresh": refresh} {
			require.False(t, ts.active(t, tok), "%s exchanged token after its origin's grant was revoked", name)
		}
		requireError(t, ts.refresh(t, "api", refresh), http.StatusBadRequest, "invalid_grant")
	})

	t.Run("the subject's grant revoked by an administrator", func(t *testing.T) {
		own := issueGrant(t, ts, "gateway", "read")
		x := delegate(t, own.Access, billingAPI)
		n, err := ts.Store.RevokeClientTokens(t.Context(), "gateway")
		require.NoError(t, err)
		require.Positive(t, n)
		require.False(t, ts.active(t, x))
	})
}

// An exchanged refresh token is refused where the policy does not allow
// it, needs offline_access, and works at the refresh grant where it does;
// revoking the subject's grant revokes it.
func TestTokenExchangeRefreshToken(t *testing.T) {
	ts := newExchangeFixture(t)
	sub := issueGrant(t, ts, "api", "read")
	r := ts.exchangeAs(t, "api", map[string]string{"subject_token": sub.Access, "subject_token_type": ttAccess, "requested_token_type": ttRefresh})
	requireError(t, r, http.StatusBadRequest, "invalid_scope")

	sub = issueGrant(t, ts, "api", "read", "offline_access")
	out := ts.exchangeOK(t, "api", map[string]string{"subject_token": sub.Access, "subject_token_type": ttAccess, "requested_token_type": ttRefresh})
	rt := out["access_token"].(string)
	in := ts.introspected(t, rt)
	require.Equal(t, "refresh_token", in["token_use"])
	require.Equal(t, "alice", in["sub"])

	// Refreshed, the exchanged grant stays tied to the subject's.
	renewed := ts.refreshOK(t, "api", rt)
	require.Equal(t, "alice", ts.introspected(t, renewed.Access)["sub"])

	ts.post(t, "/oauth2/revoke", "form", map[string]string{"token": sub.Refresh}, ts.as("api"))
	require.False(t, ts.active(t, renewed.Access))
	requireError(t, ts.refresh(t, "api", renewed.Refresh), http.StatusBadRequest, "invalid_grant")
}

// revokeDuringExchange revokes alice's grants just before the token of a
// token exchange is stored: the revocation of the subject's grant races
// the exchange, and loses nothing.
type revokeDuringExchange struct {
	storage.Store
	armed *atomic.Bool
}

func (s revokeDuringExchange) CreateAccessTokenSession(ctx context.Context, signature string, r fosite.Requester) error {
	if s.armed.Load() && r.GetRequestForm().Get("grant_type") == grantTokenExchange {
		if _, err := s.Store.RevokeSubjectTokens(ctx, "alice"); err != nil {
			return err
		}
	}
	return s.Store.CreateAccessTokenSession(ctx, signature, r)
}

func TestTokenExchangeSubjectRevokedDuringExchange(t *testing.T) {
	armed := new(atomic.Bool)
	ts := newExchangeFixture(t, withStoreWrapper(func(st storage.Store) storage.Store { return revokeDuringExchange{st, armed} }))
	alice := issueGrant(t, ts, "gateway", "read")
	actor := ts.clientCredentials(t, "gateway", "read")
	armed.Store(true)
	r := ts.exchangeAs(t, "gateway", map[string]string{"subject_token": alice.Access, "subject_token_type": ttAccess,
		"actor_token": actor, "actor_token_type": ttAccess})
	requireError(t, r, http.StatusBadRequest, "invalid_request")
	require.Contains(t, r.json(t)["error_description"], "revoked during the exchange")
	n, err := ts.Store.RevokeClientTokens(t.Context(), "gateway")
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "only the actor's grant was left; the exchanged token was revoked with its own grant")
}
