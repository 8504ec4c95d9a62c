package latchtest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/latchtest"
)

// post sends a form as the confidential client and decodes the JSON
// answer (nil for an empty body).
func post(t *testing.T, srv *latchtest.Server, path string, form url.Values) (int, map[string]any) {
	t.Helper()
	c := srv.ConfidentialClient()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.Issuer()+path, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.ID, c.Secret)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(res.Body).Decode(&m); err != nil {
		m = nil
	}
	return res.StatusCode, m
}

func introspect(t *testing.T, srv *latchtest.Server, token string) map[string]any {
	t.Helper()
	status, m := post(t, srv, "/oauth2/introspect", url.Values{"token": {token}})
	require.Equal(t, http.StatusOK, status, "introspection: %v", m)
	return m
}

func active(t *testing.T, srv *latchtest.Server, token string) bool {
	t.Helper()
	return introspect(t, srv, token)["active"] == true
}

// retrieveError is the OAuth error of a failed x/oauth2 token request.
func retrieveError(t *testing.T, err error) *oauth2.RetrieveError {
	t.Helper()
	var re *oauth2.RetrieveError
	require.True(t, errors.As(err, &re), "an OAuth error answer, not %v", err)
	return re
}

func TestClientCredentials(t *testing.T) {
	t.Parallel()
	srv := latchtest.New(t)
	tok, err := srv.ClientCredentials(srv.ConfidentialClient(), "read", "write").Token(t.Context())
	require.NoError(t, err)
	require.True(t, tok.Valid())
	in := introspect(t, srv, tok.AccessToken)
	require.Equal(t, true, in["active"])
	require.Equal(t, "read write", in["scope"])
	require.Equal(t, srv.ConfidentialClient().ID, in["sub"])
	require.Equal(t, srv.Issuer(), in["iss"])
}

// TestLoginThenUserinfo: Login runs the code flow through the real pages;
// the ID token verifies with go-oidc through discovery, and userinfo
// answers for the access token. Both ready-made clients, and both
// signing algorithms.
func TestLoginThenUserinfo(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"RS256", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			srv := latchtest.New(t, latchtest.WithConfig(func(f *config.File) { f.Tokens.IDTokenSigningAlg = alg }))
			provider, err := oidc.NewProvider(t.Context(), srv.Issuer())
			require.NoError(t, err)
			for _, c := range []latchtest.Client{srv.ConfidentialClient(), srv.PublicClient()} {
				tok := srv.Login(t, c.ID, srv.User().Username, srv.User().Password, "openid", "profile", "email", "offline_access")
				require.NotEmpty(t, tok.RefreshToken, "offline_access gives a refresh token")
				raw, _ := tok.Extra("id_token").(string)
				idToken, err := provider.Verifier(&oidc.Config{ClientID: c.ID}).Verify(t.Context(), raw)
				require.NoError(t, err, "%s: the ID token verifies", c.ID)
				require.Equal(t, "alice", idToken.Subject)

				info, err := provider.UserInfo(t.Context(), oauth2.StaticTokenSource(tok))
				require.NoError(t, err)
				require.Equal(t, "alice", info.Subject)
				require.Equal(t, "alice@example.com", info.Email)
				var claims struct {
					Name string `json:"name"`
				}
				require.NoError(t, info.Claims(&claims))
				require.Equal(t, "Alice Example", claims.Name)
			}
		})
	}
}

func TestLoginWrongPassword(t *testing.T) {
	t.Parallel()
	srv := latchtest.New(t)
	ft := &fakeT{TB: t}
	func() {
		defer func() { _ = recover() }()
		srv.Login(ft, srv.PublicClient().ID, "alice", "not-her-password")
	}()
	require.Contains(t, ft.fatal, "wrong username or password")
}

// fakeT records Fatalf instead of stopping the test.
type fakeT struct {
	testing.TB
	fatal string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	panic("fatal")
}

// TestIssueTokenLifecycle: a minted token introspects active, revokes,
// then introspects inactive, like one from a real flow.
func TestIssueTokenLifecycle(t *testing.T) {
	t.Parallel()
	srv := latchtest.New(t)
	tok, err := srv.IssueToken(latchtest.IssueOptions{Subject: "alice", Scopes: []string{"read"}, Audience: nil})
	require.NoError(t, err)
	require.Equal(t, "read", tok.Extra("scope"))
	require.WithinDuration(t, time.Now().Add(time.Hour), tok.Expiry, 5*time.Second)

	in := introspect(t, srv, tok.AccessToken)
	require.Equal(t, true, in["active"])
	require.Equal(t, "alice", in["sub"])
	require.Equal(t, srv.ConfidentialClient().ID, in["client_id"])

	status, _ := post(t, srv, "/oauth2/revoke", url.Values{"token": {tok.AccessToken}})
	require.Equal(t, http.StatusOK, status)
	require.False(t, active(t, srv, tok.AccessToken), "revoked")
}

// TestIssueTokenRefresh: a minted refresh token refreshes through
// x/oauth2, with a new ID token carrying the extra claims; the old tokens
// are then retired, as rotation does.
func TestIssueTokenRefresh(t *testing.T) {
	t.Parallel()
	srv := latchtest.New(t)
	c := srv.PublicClient()
	tok, err := srv.IssueToken(latchtest.IssueOptions{
		ClientID: c.ID, Subject: "alice", Scopes: []string{"profile"}, Refresh: true, IDToken: true,
		Extra: map[string]any{"tenant": "acme"}, Nonce: "nonce-123456789", Lifespan: time.Minute,
	})
	require.NoError(t, err)
	require.NotEmpty(t, tok.RefreshToken)
	require.Equal(t, "profile offline_access openid", tok.Extra("scope"))
	require.WithinDuration(t, time.Now().Add(time.Minute), tok.Expiry, 5*time.Second)

	provider, err := oidc.NewProvider(t.Context(), srv.Issuer())
	require.NoError(t, err)
	verifier := provider.Verifier(&oidc.Config{ClientID: c.ID})
	idToken, err := verifier.Verify(t.Context(), tok.Extra("id_token").(string))
	require.NoError(t, err)
	require.Equal(t, "nonce-123456789", idToken.Nonce)
	var claims map[string]any
	require.NoError(t, idToken.Claims(&claims))
	require.Equal(t, "acme", claims["tenant"])
	require.Equal(t, "Alice Example", claims["name"])

	cfg := srv.OAuth2Config(c)
	refreshed, err := cfg.TokenSource(t.Context(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	require.NoError(t, err)
	require.NotEqual(t, tok.AccessToken, refreshed.AccessToken)
	require.NotEqual(t, tok.RefreshToken, refreshed.RefreshToken, "refresh tokens rotate")
	_, err = verifier.Verify(t.Context(), refreshed.Extra("id_token").(string))
	require.NoError(t, err, "the refresh gives a new ID token")
	require.True(t, active(t, srv, refreshed.AccessToken))
	require.False(t, active(t, srv, tok.AccessToken), "rotation retired the minted access token")
	require.False(t, active(t, srv, tok.RefreshToken), "and the minted refresh token")
}

func TestIssueTokenJWT(t *testing.T) {
	t.Parallel()
	srv := latchtest.New(t, latchtest.WithConfig(func(f *config.File) { f.Tokens.AccessTokenFormat = "jwt" }))
	tok, err := srv.IssueToken(latchtest.IssueOptions{Subject: "bob", Scopes: []string{"read"}})
	require.NoError(t, err)
	require.Equal(t, 2, strings.Count(tok.AccessToken, "."), "a JWT access token")
	in := introspect(t, srv, tok.AccessToken)
	require.Equal(t, true, in["active"])
	require.Equal(t, "bob", in["sub"])
	require.NoError(t, srv.Expire(tok.AccessToken))
	require.False(t, active(t, srv, tok.AccessToken), "an expired JWT access token is inactive")
}

func TestIssueTokenErrors(t *testing.T) {
	t.Parallel()
	srv := latchtest.New(t)
	for name, o := range map[string]latchtest.IssueOptions{
		"unknown client":      {ClientID: "nobody"},
		"unregistered scope":  {Scopes: []string{"admin"}},
		"ID token, no user":   {IDToken: true},
		"protocol claim":      {Subject: "alice", Extra: map[string]any{"sub": "mallory"}},
		"negative lifespan":   {Lifespan: -time.Second},
		"unregistered client": {ClientID: srv.PublicClient().ID, Scopes: []string{"write"}},
	} {
		_, err := srv.IssueToken(o)
		require.Error(t, err, name)
	}
}

// TestExpire: an expired access token introspects inactive and userinfo
// refuses it; an expired refresh token fails to refresh with
// invalid_grant.
func TestExpire(t *testing.T) {
	t.Parallel()
	srv := latchtest.New(t)
	tok, err := srv.IssueToken(latchtest.IssueOptions{Subject: "alice", Scopes: []string{"openid"}, Refresh: true})
	require.NoError(t, err)
	require.True(t, active(t, srv, tok.AccessToken))

	require.NoError(t, srv.Expire(tok.AccessToken))
	require.False(t, active(t, srv, tok.AccessToken))
	provider, err := oidc.NewProvider(t.Context(), srv.Issuer())
	require.NoError(t, err)
	_, err = provider.UserInfo(t.Context(), oauth2.StaticTokenSource(tok))
	require.ErrorContains(t, err, "401")

	require.True(t, active(t, srv, tok.RefreshToken), "expiring the access token leaves the refresh token")
	require.NoError(t, srv.Expire(tok.RefreshToken))
	_, err = srv.OAuth2Config(srv.ConfidentialClient()).TokenSource(t.Context(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	require.Equal(t, "invalid_grant", retrieveError(t, err).ErrorCode)

	require.Error(t, srv.Expire("ory_at_unknown.token"))
}

// TestFailNext: the next n requests to the endpoint get the error, then
// the endpoint answers normally; other endpoints are not affected.
func TestFailNext(t *testing.T) {
	t.Parallel()
	srv := latchtest.New(t)
	cc := srv.ClientCredentials(srv.ConfidentialClient(), "read")
	srv.FailNext("/oauth2/token", 2, http.StatusServiceUnavailable, "temporarily_unavailable")
	srv.FailNext(srv.Issuer()+"/oauth2/token", 1, http.StatusTooManyRequests, "slow_down")

	for _, want := range []struct {
		status int
		code   string
	}{{503, "temporarily_unavailable"}, {503, "temporarily_unavailable"}, {429, "slow_down"}} {
		_, err := cc.Token(t.Context())
		re := retrieveError(t, err)
		require.Equal(t, want.status, re.Response.StatusCode)
		require.Equal(t, want.code, re.ErrorCode)
	}
	tok, err := cc.Token(t.Context())
	require.NoError(t, err, "after the failures, the real answer")
	require.True(t, active(t, srv, tok.AccessToken), "introspection was never failed")

	require.Panics(t, func() { srv.FailNext("/oauth2/token", 0, 503, "x") })
	require.Panics(t, func() { srv.FailNext("/oauth2/token", 1, 302, "x") })
}

// TestAddClientAndUser: a client_secret_post client that skips consent and
// a new user sign in together.
func TestAddClientAndUser(t *testing.T) {
	t.Parallel()
	srv := latchtest.New(t)
	c, err := srv.AddClient(clients.Client{
		ID: "my-app", GrantTypes: []string{"authorization_code"}, ResponseTypes: []string{"code"},
		RedirectURIs: []string{"http://localhost:9999/cb"}, Scopes: []string{"openid", "email"},
		TokenEndpointAuthMethod: clients.AuthMethodPost, SkipConsent: true,
	}, "")
	require.NoError(t, err)
	require.NotEmpty(t, c.Secret, "a generated secret")
	require.Equal(t, "http://localhost:9999/cb", c.RedirectURI)
	require.NoError(t, srv.AddUser(latchtest.User{Username: "bob", Password: "bob-password", Email: "bob@example.com"}))

	tok := srv.Login(t, c.ID, "bob", "bob-password")
	require.Empty(t, tok.RefreshToken, "no refresh_token grant")
	in := introspect(t, srv, tok.AccessToken)
	require.Equal(t, "bob", in["sub"])
	require.Equal(t, "openid email", in["scope"])

	got, err := srv.Store().GetUser(context.Background(), "bob")
	require.NoError(t, err)
	require.Equal(t, "bob@example.com", got.Email)

	_, err = srv.AddClient(clients.Client{ID: "broken", GrantTypes: []string{"nonsense"}}, "")
	require.Error(t, err)
}

// TestServersAreIndependent: two servers share no state, not even a key
// id, though they share the process's RSA key.
func TestServersAreIndependent(t *testing.T) {
	t.Parallel()
	a, b := latchtest.New(t), latchtest.New(t)
	require.NotEqual(t, a.Issuer(), b.Issuer())
	require.NotEqual(t, a.ConfidentialClient().Secret, b.ConfidentialClient().Secret)
	tok, err := a.IssueToken(latchtest.IssueOptions{})
	require.NoError(t, err)
	require.False(t, active(t, b, tok.AccessToken))
}
