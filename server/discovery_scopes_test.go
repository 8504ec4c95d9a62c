package server_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/storage"
)

// TestDiscoveryListsClientScopes: scopes_supported names every scope a
// client may request (the test clients' read and write), besides the
// standard ones, but not a scope every client that has it marks private.
func TestDiscoveryListsClientScopes(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	m := clients.Manager{Store: ts.Store, Hasher: clients.NewHasher(10)}
	for _, c := range []*clients.Client{
		{ID: "internal-a", TokenEndpointAuthMethod: clients.AuthMethodBasic, GrantTypes: []string{"client_credentials"},
			Scopes: []string{"read", "internal:admin", "shared"}, PrivateScopes: []string{"internal:admin", "shared"}},
		{ID: "internal-b", TokenEndpointAuthMethod: clients.AuthMethodBasic, GrantTypes: []string{"client_credentials"},
			Scopes: []string{"shared"}},
	} {
		secret, err := m.Create(context.Background(), c, "")
		require.NoError(t, err)
		ts.secrets[c.ID] = secret
	}
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		r := ts.get(t, path)
		require.Equal(t, http.StatusOK, r.Status)
		var got []string
		for _, v := range r.json(t)["scopes_supported"].([]any) {
			got = append(got, v.(string))
		}
		require.Equal(t, []string{"email", "groups", "offline_access", "openid", "profile", "read", "shared", "write"}, got,
			"internal:admin is private to its only client; shared is open in internal-b")
	}

	// The client still may request its private scope.
	tok := ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "client_credentials", "scope": "internal:admin"},
		basicAuth("internal-a", ts.secrets["internal-a"]))
	require.Equal(t, http.StatusOK, tok.Status, "%s", tok.Body)
}

// TestPrivateScopesMustBeScopes: a private scope the client cannot ask for
// is a mistake, named by its field.
func TestPrivateScopesMustBeScopes(t *testing.T) {
	err := clients.Validate(&clients.Client{ID: "x", TokenEndpointAuthMethod: clients.AuthMethodNone,
		GrantTypes: []string{"refresh_token"}, Scopes: []string{"read"}, PrivateScopes: []string{"write"}})
	require.ErrorContains(t, err, "private_scopes[0]")
}

// listFails is a store whose client list is unavailable.
type listFails struct{ storage.Store }

func (listFails) ListClients(context.Context) ([]*clients.Client, error) { return nil, errInjected }

// TestDiscoveryReportsStorageFailure: without the client list, discovery
// answers 503 rather than a scopes_supported that leaves scopes out.
func TestDiscoveryReportsStorageFailure(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withStoreWrapper(func(st storage.Store) storage.Store { return listFails{st} }))
	requireError(t, ts.get(t, "/.well-known/openid-configuration"), http.StatusServiceUnavailable, "temporarily_unavailable")
}
