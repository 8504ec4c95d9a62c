package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/users"
)

// passwordClient registers a confidential client that lists the password
// grant and returns its golang.org/x/oauth2 configuration.
func passwordClient(t *testing.T, ts *testServer) *oauth2.Config {
	t.Helper()
	m := &clients.Manager{Store: ts.Store, Hasher: clients.NewHasher(100)}
	secret, err := m.Create(context.Background(), &clients.Client{ID: "legacy-client", TokenEndpointAuthMethod: clients.AuthMethodBasic,
		GrantTypes: []string{"password", "refresh_token"}, Scopes: []string{"read", "offline_access"}}, "")
	require.NoError(t, err)
	return &oauth2.Config{ClientID: "legacy-client", ClientSecret: secret, Scopes: []string{"read"},
		Endpoint: oauth2.Endpoint{TokenURL: ts.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}}
}

// retrieveError is the RFC 6749 error of a refused token request.
func retrieveError(t *testing.T, err error) *oauth2.RetrieveError {
	t.Helper()
	var re *oauth2.RetrieveError
	require.ErrorAs(t, err, &re)
	return re
}

// TestPasswordGrant: RFC 6749 §4.3 through golang.org/x/oauth2 for a
// client that lists it, amr pwd in the JWT access token, listed in
// discovery only once such a client exists, throttled like the login
// page, and refused to a user with a second factor.
func TestPasswordGrant(t *testing.T) {
	t.Parallel()
	clock := &testClock{t: time.Now()}
	ts := newTestServer(t, withAccessTokenFormat("jwt"), withClock(clock), func(o *serverOptions) {
		o.cfg.LoginRules = users.LoginRules{Pair: users.Rule{Free: 3, Base: time.Hour, Max: time.Hour, Forget: time.Hour}}
	})
	disc := func() []any {
		return ts.get(t, "/.well-known/openid-configuration").json(t)["grant_types_supported"].([]any)
	}
	require.NotContains(t, disc(), "password", "no client lists it yet")
	unlisted := ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "password", "username": "alice", "password": "alice-password"}, ts.as("web-client"))
	requireError(t, unlisted, 400, "unauthorized_client")

	cfg := passwordClient(t, ts)
	clock.advance(5 * time.Second) // discovery reads the clients at most every 5 s
	require.Contains(t, disc(), "password")
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, ts.http)
	tok, err := cfg.PasswordCredentialsToken(ctx, "alice", "alice-password")
	require.NoError(t, err)
	require.True(t, ts.active(t, tok.AccessToken))
	claims := ts.introspect(t, tok.AccessToken).json(t)
	require.Equal(t, "alice", claims["sub"])
	require.Equal(t, "read", claims["scope"])
	require.Equal(t, []any{"pwd"}, verifyAccessJWT(t, ts, tok.AccessToken).claims["amr"], "RFC 8176 amr of the JWT access token")

	// Wrong passwords: invalid_grant, then the limiter refuses even the
	// right one.
	for i := 0; i < 3; i++ {
		_, err := cfg.PasswordCredentialsToken(ctx, "bob", "wrong")
		re := retrieveError(t, err)
		require.Equal(t, "invalid_grant", re.ErrorCode)
		require.Contains(t, re.ErrorDescription, "wrong")
	}
	_, err = cfg.PasswordCredentialsToken(ctx, "bob", "bob-password")
	require.Contains(t, retrieveError(t, err).ErrorDescription, "Too many failed attempts")

	// A user with a second factor cannot use it.
	giveTOTP(t, ts.Store, "alice", "JBSWY3DPEHPK3PXP")
	_, err = cfg.PasswordCredentialsToken(ctx, "alice", "alice-password")
	re := retrieveError(t, err)
	require.Equal(t, "invalid_grant", re.ErrorCode)
	require.True(t, strings.Contains(re.ErrorDescription, "second factor"), "%s", re.ErrorDescription)
}
