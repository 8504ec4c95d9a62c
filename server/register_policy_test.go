package server_test

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/server"
)

// registerFrom registers metadata as a caller at addr, behind the trusted
// loopback proxy the server was given (withTrustedLoopbackProxy).
func (ts *testServer) registerFrom(t *testing.T, addr, metadata string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.URL+registrationPath, strings.NewReader(metadata))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", addr)
	return ts.do(t, req)
}

// withTrustedLoopbackProxy believes X-Forwarded-For of requests from
// 127.0.0.1, so a test can speak for many caller addresses.
func withTrustedLoopbackProxy() option {
	return func(o *serverOptions) {
		o.cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	}
}

const webMetadata = `{"redirect_uris":["https://app.example.com/cb"],"client_name":"Web"}`

// Open registration with the default policy refuses the classic abuse:
// a client_credentials client with scopes of its choosing. Nothing is
// stored, and the answer names each field.
func TestOpenRegistrationRefusesScopesAndGrantsBeyondThePolicy(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withRegistration(""))
	before, err := ts.Store.ListClients(t.Context())
	require.NoError(t, err)
	for _, tc := range []struct{ name, body, field string }{
		{"client_credentials with any scope", `{"grant_types":["client_credentials"],"scope":"admin deploy write:all"}`, "grant_types[0]"},
		{"the same, scope named too", `{"grant_types":["client_credentials"],"scope":"admin deploy write:all"}`, "scope: 'admin deploy write:all' is not allowed"},
		{"a scope beside openid", `{"redirect_uris":["https://app.example.com/cb"],"scope":"openid admin"}`, "scope: 'admin' is not allowed"},
		{"the device grant", `{"grant_types":["urn:ietf:params:oauth:grant-type:device_code"],"token_endpoint_auth_method":"none"}`, "grant_types[0]"},
		{"the jwt-bearer grant", `{"grant_types":["urn:ietf:params:oauth:grant-type:jwt-bearer"]}`, "grant_types[0]"},
		{"the password grant", `{"grant_types":["password"]}`, "grant_types[0]: the password grant is not open"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.register(t, tc.body, "")
			requireError(t, r, http.StatusBadRequest, "invalid_client_metadata")
			require.Contains(t, r.json(t)["error_description"], tc.field)
		})
	}
	after, err := ts.Store.ListClients(t.Context())
	require.NoError(t, err)
	require.Len(t, after, len(before), "no refused registration left a client behind")

	t.Run("within the policy", func(t *testing.T) {
		r := ts.register(t, webMetadata, "")
		require.Equal(t, http.StatusCreated, r.Status, "body %s", r.Body)
		got := r.json(t)
		require.Equal(t, "openid profile email offline_access", got["scope"], "the OpenID Connect scopes the policy allows")
		require.Equal(t, []any{"authorization_code"}, got["grant_types"])
	})
}

// An RFC 7592 update is held to the policy the client registered under: a
// registration access token cannot widen what registration refused.
func TestRegistrationUpdateIsHeldToThePolicy(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withRegistration(""))
	reg := ts.registerOK(t, webMetadata)
	for _, tc := range []struct{ name, body, field string }{
		{"add client_credentials", `{"client_id":"` + reg.ClientID + `","redirect_uris":["https://app.example.com/cb"],"grant_types":["authorization_code","client_credentials"]}`, "grant_types[1]"},
		{"add a scope", `{"client_id":"` + reg.ClientID + `","redirect_uris":["https://app.example.com/cb"],"scope":"openid admin"}`, "scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.configure(t, http.MethodPut, reg.ClientID, reg.RegistrationAccessToken, tc.body)
			requireError(t, r, http.StatusBadRequest, "invalid_client_metadata")
			require.Contains(t, r.json(t)["error_description"], tc.field)
		})
	}
	c, err := (&clients.Manager{Store: ts.Store}).Get(t.Context(), reg.ClientID)
	require.NoError(t, err)
	require.Equal(t, []string{clients.GrantAuthorizationCode}, c.GrantTypes, "unchanged")

	r := ts.configure(t, http.MethodPut, reg.ClientID, reg.RegistrationAccessToken,
		`{"client_id":"`+reg.ClientID+`","redirect_uris":["https://app.example.com/cb"],"grant_types":["authorization_code","refresh_token"],"scope":"openid offline_access"}`)
	require.Equal(t, http.StatusOK, r.Status, "an update within the policy: %s", r.Body)
}

// Holders of the initial access token register under its wider policy,
// keep it on update, and get tokens with the scopes it allows.
func TestInitialAccessPolicyWidensRegistration(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withRegistration("initial-access-token"), withRegistrationPolicy(server.RegistrationPolicy{
		InitialAccessScopes:     []string{"deploy"},
		InitialAccessGrantTypes: []string{clients.GrantClientCredentials},
	}))
	reg := ts.registerOK(t, `{"grant_types":["client_credentials"],"scope":"deploy"}`)
	token := ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "client_credentials", "scope": "deploy"}, basicAuth(reg.ClientID, reg.ClientSecret))
	require.Equal(t, http.StatusOK, token.Status, "body %s", token.Body)
	require.Equal(t, "deploy", token.json(t)["scope"])

	r := ts.register(t, `{"grant_types":["client_credentials"],"scope":"admin"}`, "initial-access-token")
	requireError(t, r, http.StatusBadRequest, "invalid_client_metadata")
	r = ts.register(t, webMetadata, "initial-access-token")
	requireError(t, r, http.StatusBadRequest, "invalid_client_metadata")

	r = ts.configure(t, http.MethodPut, reg.ClientID, reg.RegistrationAccessToken,
		`{"client_id":"`+reg.ClientID+`","grant_types":["client_credentials"],"scope":"deploy","client_name":"CI"}`)
	require.Equal(t, http.StatusOK, r.Status, "the update keeps the initial access policy: %s", r.Body)
}

// registration.max_clients bounds the registered clients; a deleted one
// frees its place. Clients an administrator made do not count.
func TestRegistrationMaxClients(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withRegistration(""), withRegistrationPolicy(server.RegistrationPolicy{MaxClients: 2}))
	first := ts.registerOK(t, webMetadata)
	ts.registerOK(t, webMetadata)
	r := ts.register(t, webMetadata, "")
	requireError(t, r, http.StatusForbidden, "access_denied")
	require.Contains(t, r.json(t)["error_description"], "maximum of 2")

	require.Equal(t, http.StatusNoContent, ts.configure(t, http.MethodDelete, first.ClientID, first.RegistrationAccessToken, "").Status)
	ts.registerOK(t, webMetadata)
}

// The hourly bound counts per caller address (an IPv6 /64 as one), in the
// database, and tells the caller when to come back.
func TestRegistrationRateLimitPerAddress(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withRegistration(""), withTrustedLoopbackProxy(),
		withRegistrationPolicy(server.RegistrationPolicy{PerAddressPerHour: 2}))
	for _, addr := range []string{"203.0.113.7", "203.0.113.7"} {
		require.Equal(t, http.StatusCreated, ts.registerFrom(t, addr, webMetadata).Status)
	}
	r := ts.registerFrom(t, "203.0.113.7", webMetadata)
	requireError(t, r, http.StatusTooManyRequests, "too_many_requests")
	require.Equal(t, "1800", r.Header.Get("Retry-After"))

	require.Equal(t, http.StatusCreated, ts.registerFrom(t, "198.51.100.1", webMetadata).Status, "another address is not held up")

	require.Equal(t, http.StatusCreated, ts.registerFrom(t, "2001:db8:1:2::1", webMetadata).Status)
	require.Equal(t, http.StatusCreated, ts.registerFrom(t, "2001:db8:1:2::ffff", webMetadata).Status)
	requireError(t, ts.registerFrom(t, "2001:db8:1:2:aaaa::1", webMetadata), http.StatusTooManyRequests, "too_many_requests")
}
