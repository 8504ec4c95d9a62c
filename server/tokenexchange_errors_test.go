package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/storage"
)

// Every error of RFC 8693 §2.2.2 and of the request's shape (§2.1), each
// the RFC's JSON with status 400 (401 for client authentication), never
// a 500: invalid_request for the request and for an unacceptable subject
// or actor token, invalid_target for a target the policy does not list,
// invalid_scope beyond the subject token, unauthorized_client for a
// client without the grant.
func TestTokenExchangeErrors(t *testing.T) {
	ts := newExchangeFixture(t)
	alice := issueGrant(t, ts, "gateway", "read")
	actor := ts.clientCredentials(t, "gateway", "read")
	revoked := issueGrant(t, ts, "gateway", "read")
	require.Equal(t, http.StatusOK, ts.post(t, "/oauth2/revoke", "form", map[string]string{"token": revoked.Refresh}, ts.as("gateway")).Status)
	expired := mintGrant(t, ts, "gateway", time.Now().Add(-2*time.Hour), "read")
	othersToken := issueGrant(t, ts, "web-client", "read") // issued to web-client, not naming gateway
	dpopBound := dpopBoundToken(t, ts, "gateway")

	ok := map[string]string{"subject_token": alice.Access, "subject_token_type": ttAccess, "actor_token": actor, "actor_token_type": ttAccess}
	with := func(changes map[string]string) map[string]string { return fieldsWith(ok, changes) }
	tests := []struct {
		name   string
		fields map[string]string
		code   string
		hint   string // in error_description
	}{
		{"no subject_token", with(map[string]string{"subject_token": ""}), "invalid_request", "'subject_token' parameter is missing"},
		{"no subject_token_type", with(map[string]string{"subject_token_type": ""}), "invalid_request", "'subject_token_type' parameter is missing"},
		{"unsupported subject_token_type", with(map[string]string{"subject_token_type": "urn:ietf:params:oauth:token-type:saml2"}), "invalid_request", "not a token type this server accepts"},
		{"refresh token as subject", with(map[string]string{"subject_token": alice.Refresh, "subject_token_type": ttRefresh}), "invalid_request", "not a token type this server accepts"},
		{"actor_token without its type", with(map[string]string{"actor_token_type": ""}), "invalid_request", "'actor_token_type' parameter is required"},
		{"actor_token_type without a token", with(map[string]string{"actor_token": ""}), "invalid_request", "must not be sent without an 'actor_token'"},
		{"unknown subject token", with(map[string]string{"subject_token": "ory_at_nothing.nothing"}), "invalid_request", "not an active access token"},
		{"revoked subject token", with(map[string]string{"subject_token": revoked.Access}), "invalid_request", "not an active access token"},
		{"expired subject token", with(map[string]string{"subject_token": expired.Access}), "invalid_request", "not an active access token"},
		{"subject token of another client", with(map[string]string{"subject_token": othersToken.Access}), "invalid_request", "neither issued to this client"},
		{"DPoP-bound subject token", with(map[string]string{"subject_token": dpopBound}), "invalid_request", "DPoP-bound"},
		{"invalid actor token", with(map[string]string{"actor_token": "ory_at_nothing.nothing"}), "invalid_request", "'actor_token' is not acceptable"},
		{"subject as a JWT that is not one", with(map[string]string{"subject_token_type": ttJWT}), "invalid_request", "not a JWT"},
		{"subject token too long", with(map[string]string{"subject_token": strings.Repeat("a", 9000)}), "invalid_request", "longer than"},
		{"unsupported requested_token_type", with(map[string]string{"requested_token_type": "urn:example:token"}), "invalid_request", "not one this server issues"},
		{"target not allowed", with(map[string]string{"audience": "https://evil.example.com"}), "invalid_target", "does not list"},
		{"scope beyond the subject", with(map[string]string{"scope": "write"}), "invalid_scope", "not granted to the subject token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ts.exchangeAs(t, "gateway", tt.fields)
			requireError(t, r, http.StatusBadRequest, tt.code)
			require.Contains(t, r.json(t)["error_description"], tt.hint)
		})
	}

	t.Run("a repeated parameter", func(t *testing.T) {
		form := url.Values{"grant_type": {grantTokenExchange}, "subject_token": {alice.Access, alice.Access},
			"subject_token_type": {ttAccess}, "actor_token": {actor}, "actor_token_type": {ttAccess}}
		r := ts.raw(t, http.MethodPost, "/oauth2/token", "application/x-www-form-urlencoded", form.Encode(), ts.as("gateway"))
		requireError(t, r, http.StatusBadRequest, "invalid_request")
	})
	t.Run("a client without the grant", func(t *testing.T) {
		r := ts.exchangeAs(t, "basic-client", with(nil))
		requireError(t, r, http.StatusBadRequest, "unauthorized_client")
	})
	t.Run("no client authentication", func(t *testing.T) {
		fields := with(map[string]string{"grant_type": grantTokenExchange, "client_id": "gateway"})
		requireError(t, ts.post(t, "/oauth2/token", "form", fields, noAuth), http.StatusUnauthorized, "invalid_client")
	})
	t.Run("a wrong client secret", func(t *testing.T) {
		fields := with(map[string]string{"grant_type": grantTokenExchange})
		requireError(t, ts.post(t, "/oauth2/token", "form", fields, basicAuth("gateway", "wrong")), http.StatusUnauthorized, "invalid_client")
	})
	// A refused exchange spends nothing: the subject token still works.
	require.True(t, ts.active(t, alice.Access))
}

// dpopBoundToken is a client credentials token of clientID bound to a
// DPoP key.
func dpopBoundToken(t *testing.T, ts *testServer, clientID string) string {
	t.Helper()
	key := newDPoPClient(t)
	r := ts.tokenWithProofs(t, map[string]string{"grant_type": "client_credentials", "scope": "read"}, ts.as(clientID),
		key.proof(t, http.MethodPost, ts.URL+"/oauth2/token", proofOpts{}))
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, "DPoP", r.json(t)["token_type"])
	return r.json(t)["access_token"].(string)
}

// The policy is kept by the admin API as the client's JSON, and refused
// there like anywhere else when it does not match the grant.
func TestTokenExchangePolicyAdminAPI(t *testing.T) {
	ts := newTestServer(t, withAdminToken(adminToken))
	body := map[string]any{"client_id": "svc", "grant_types": []string{grantTokenExchange},
		"token_exchange": map[string]any{"audiences": []string{billingAPI}, "impersonation": true}}
	got := ts.adminOK(t, http.MethodPost, "/admin/clients", body, http.StatusCreated)
	require.Equal(t, map[string]any{"audiences": []any{billingAPI}, "impersonation": true}, got["token_exchange"])

	r := ts.admin(t, http.MethodPost, "/admin/clients", map[string]any{"client_id": "svc2", "grant_types": []string{grantTokenExchange}})
	require.Equal(t, http.StatusBadRequest, r.Status, "%s", r.Body)
	require.Contains(t, string(r.Body), "token_exchange")

	r = ts.admin(t, http.MethodPost, "/admin/clients", map[string]any{"client_id": "svc3", "token_endpoint_auth_method": clients.AuthMethodNone,
		"grant_types": []string{grantTokenExchange}, "token_exchange": map[string]any{"audiences": []string{}}})
	require.Equal(t, http.StatusBadRequest, r.Status, "%s", r.Body)
	require.Contains(t, string(r.Body), "needs a confidential client")
}

// A store failure while the subject token is looked up or the new token
// stored is 503 temporarily_unavailable, never a refusal of the token nor
// a success.
func TestTokenExchangeStorageFailure(t *testing.T) {
	failLookup, failRevoke, failWrite := new(atomic.Bool), new(atomic.Bool), new(atomic.Bool)
	ts := newExchangeFixture(t, withStoreWrapper(func(st storage.Store) storage.Store {
		return faultyStore{Store: st, failLookup: failLookup, failRevoke: failRevoke, failWrite: failWrite}
	}))
	fields := map[string]string{"subject_token": issueGrant(t, ts, "gateway", "read").Access, "subject_token_type": ttAccess,
		"actor_token": ts.clientCredentials(t, "gateway", "read"), "actor_token_type": ttAccess}
	for name, fail := range map[string]*atomic.Bool{"lookup": failLookup, "write": failWrite} {
		t.Run(name, func(t *testing.T) {
			fail.Store(true)
			defer fail.Store(false)
			requireError(t, ts.exchangeAs(t, "gateway", fields), http.StatusServiceUnavailable, "temporarily_unavailable")
		})
	}
	ts.exchangeOK(t, "gateway", fields)
}
