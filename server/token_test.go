package server_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// TestClientCredentialsLibrary gets tokens with golang.org/x/oauth2, the
// client library most Go services use, in both of its auth styles.
func TestClientCredentialsLibrary(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for _, tc := range []struct {
		client string
		style  oauth2.AuthStyle
	}{
		{"basic-client", oauth2.AuthStyleInHeader},
		{"post-client", oauth2.AuthStyleInParams},
	} {
		t.Run(tc.client, func(t *testing.T) {
			t.Parallel()
			cc := clientcredentials.Config{
				ClientID: tc.client, ClientSecret: ts.secrets[tc.client],
				TokenURL: ts.URL + "/oauth2/token", Scopes: []string{"read", "write"}, AuthStyle: tc.style,
			}
			ctx := context.WithValue(t.Context(), oauth2.HTTPClient, ts.http)
			tok, err := cc.Token(ctx)
			require.NoError(t, err)
			require.Equal(t, "Bearer", tok.Type())
			require.NotEmpty(t, tok.AccessToken)
			require.Empty(t, tok.RefreshToken, "client_credentials issues no refresh token")
			require.WithinDuration(t, time.Now().Add(time.Hour), tok.Expiry, 5*time.Second)
			require.Equal(t, "read write", tok.Extra("scope"))

			got := ts.introspect(t, tok.AccessToken).json(t)
			require.Equal(t, true, got["active"])
			require.Equal(t, tc.client, got["sub"], "the client is the subject of its own token")
			require.Equal(t, tc.client, got["client_id"])

			cc.ClientSecret = "wrong"
			_, err = cc.Token(ctx)
			var rerr *oauth2.RetrieveError
			require.True(t, errors.As(err, &rerr), "a RetrieveError: %v", err)
			require.Equal(t, http.StatusUnauthorized, rerr.Response.StatusCode)
			require.Equal(t, "invalid_client", rerr.ErrorCode)
		})
	}
}

func TestTokenEndpointErrors(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	cc := map[string]string{"grant_type": "client_credentials"}
	with := func(extra ...string) map[string]string {
		m := map[string]string{"grant_type": "client_credentials"}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name       string
		fields     map[string]string
		auth       auth
		raw        string // a raw form body instead of fields
		wantStatus int
		wantError  string
		wantBasic  bool // WWW-Authenticate: Basic
	}{
		{name: "wrong secret by basic", fields: cc, auth: basicAuth("basic-client", "wrong"),
			wantStatus: 401, wantError: "invalid_client", wantBasic: true},
		{name: "wrong secret by post", fields: cc, auth: postAuth("post-client", "wrong"),
			wantStatus: 401, wantError: "invalid_client"},
		{name: "no client authentication", fields: cc, auth: noAuth, wantStatus: 401, wantError: "invalid_client"},
		{name: "secret without client_id", fields: with("client_secret", "x"), auth: noAuth, wantStatus: 401, wantError: "invalid_client"},
		{name: "unknown client by basic", fields: cc, auth: basicAuth("nobody", "x"),
			wantStatus: 401, wantError: "invalid_client", wantBasic: true},
		{name: "unknown client by post", fields: cc, auth: postAuth("nobody", "x"), wantStatus: 401, wantError: "invalid_client"},
		{name: "post client using basic", fields: cc, auth: basicAuth("post-client", "placeholder"),
			wantStatus: 401, wantError: "invalid_client", wantBasic: true},
		{name: "basic client using post", fields: cc, auth: postAuth("basic-client", "placeholder"),
			wantStatus: 401, wantError: "invalid_client"},
		{name: "client without the grant", fields: cc, auth: basicAuth("refresh-only-client", "placeholder"),
			wantStatus: 400, wantError: "unauthorized_client"},
		{name: "public client asks for client_credentials", fields: cc, auth: idAuth("public-client"),
			wantStatus: 400, wantError: "unauthorized_client"},
		{name: "scope not allowed", fields: with("scope", "read admin"), auth: basicAuth("basic-client", "placeholder"),
			wantStatus: 400, wantError: "invalid_scope"},
		{name: "unknown grant type", fields: map[string]string{"grant_type": "urn:example:magic"}, auth: basicAuth("basic-client", "placeholder"),
			wantStatus: 400, wantError: "unsupported_grant_type"},
		{name: "password grant of a client that does not list it", fields: map[string]string{"grant_type": "password", "username": "a", "password": "b"},
			auth: basicAuth("basic-client", "placeholder"), wantStatus: 400, wantError: "unauthorized_client"},
		{name: "missing grant type", fields: map[string]string{"scope": "read"}, auth: basicAuth("basic-client", "placeholder"),
			wantStatus: 400, wantError: "invalid_request"},
		{name: "malformed form body", raw: "grant_type=client_credentials&scope=%zz", auth: basicAuth("basic-client", "placeholder"),
			wantStatus: 400, wantError: "invalid_request"},
		{name: "body over 64 KiB", raw: "grant_type=client_credentials&scope=" + strings.Repeat("a", 70<<10),
			auth: basicAuth("basic-client", "placeholder"), wantStatus: 400, wantError: "invalid_request"},
		{name: "unknown refresh token", fields: map[string]string{"grant_type": "refresh_token", "refresh_token": "ory_rt_nope.nope"},
			auth: basicAuth("basic-client", "placeholder"), wantStatus: 400, wantError: "invalid_grant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := tc.auth
			if a.secret == "placeholder" {
				a.secret = ts.secrets[a.id]
			}
			var r response
			if tc.raw != "" {
				r = ts.raw(t, http.MethodPost, "/oauth2/token", "application/x-www-form-urlencoded", tc.raw, a)
			} else {
				r = ts.post(t, "/oauth2/token", "form", tc.fields, a)
			}
			requireError(t, r, tc.wantStatus, tc.wantError)
			if tc.wantBasic {
				requireChallenge(t, r, challengeBasic)
			}
		})
	}

	t.Run("GET is 405 in JSON", func(t *testing.T) {
		t.Parallel()
		r := ts.get(t, "/oauth2/token")
		requireError(t, r, http.StatusMethodNotAllowed, "invalid_request")
		require.Equal(t, "POST", r.Header.Get("Allow"))
	})
	t.Run("credentials in the query string are not read", func(t *testing.T) {
		t.Parallel()
		q := url.Values{"client_id": {"post-client"}, "client_secret": {ts.secrets["post-client"]}, "grant_type": {"client_credentials"}}
		r := ts.raw(t, http.MethodPost, "/oauth2/token?"+q.Encode(), "application/x-www-form-urlencoded", "grant_type=client_credentials", noAuth)
		requireError(t, r, http.StatusUnauthorized, "invalid_client")
	})
	t.Run("a JSON body is not a token request", func(t *testing.T) {
		t.Parallel()
		r := ts.raw(t, http.MethodPost, "/oauth2/token", "application/json", `{"grant_type":"client_credentials"}`, ts.as("basic-client"))
		requireError(t, r, http.StatusBadRequest, "invalid_request")
	})
	t.Run("success is not cached either", func(t *testing.T) {
		t.Parallel()
		r := ts.post(t, "/oauth2/token", "form", cc, ts.as("basic-client"))
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		require.Contains(t, r.Header.Get("Cache-Control"), "no-store")
		require.Equal(t, "bearer", strings.ToLower(r.json(t)["token_type"].(string)))
	})
}

// TestRefreshRotation: a refresh token is single-use; each use returns a new
// pair and retires the old one, and reusing a retired one ends the grant.
func TestRefreshRotation(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	g1 := issueGrant(t, ts, "basic-client", "read", "offline_access")
	require.True(t, ts.active(t, g1.Access))

	g2 := ts.refreshOK(t, "basic-client", g1.Refresh)
	require.NotEqual(t, g1.Access, g2.Access)
	require.NotEqual(t, g1.Refresh, g2.Refresh)
	require.True(t, ts.active(t, g2.Access), "the new access token works")
	require.True(t, ts.active(t, g2.Refresh), "the new refresh token works")
	require.False(t, ts.active(t, g1.Refresh), "the used refresh token is retired")
	require.False(t, ts.active(t, g1.Access), "rotation ends the old access token")
	got := ts.introspect(t, g2.Access).json(t)
	require.Equal(t, "read offline_access", got["scope"], "rotation keeps the granted scopes")
	require.Equal(t, "alice", got["sub"], "rotation keeps the subject")

	t.Run("another client cannot use it", func(t *testing.T) {
		r := ts.refresh(t, "other-client", g2.Refresh)
		requireError(t, r, http.StatusBadRequest, "invalid_grant")
		require.True(t, ts.active(t, g2.Refresh), "a refused attempt by another client does not end the grant")
	})

	t.Run("reuse ends the whole grant", func(t *testing.T) {
		r := ts.refresh(t, "basic-client", g1.Refresh)
		requireError(t, r, http.StatusBadRequest, "invalid_grant")
		require.False(t, ts.active(t, g2.Access), "reuse revokes the newest access token")
		require.False(t, ts.active(t, g2.Refresh), "reuse revokes the newest refresh token")
		requireError(t, ts.refresh(t, "basic-client", g2.Refresh), http.StatusBadRequest, "invalid_grant")
		requireError(t, ts.refresh(t, "basic-client", g1.Refresh), http.StatusBadRequest, "invalid_grant")
	})
}

// TestRefreshPostAndPublic: refresh works for every way a client can
// authenticate, including a public client naming itself.
func TestRefreshPostAndPublic(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for _, client := range []string{"post-client", "public-client"} {
		t.Run(client, func(t *testing.T) {
			t.Parallel()
			g := issueGrant(t, ts, client, "read", "offline_access")
			g2 := ts.refreshOK(t, client, g.Refresh)
			require.True(t, ts.active(t, g2.Access))
		})
	}
}

// TestTokenStorageFailure: a database failure at the token endpoint is 503
// temporarily_unavailable, whether the client lookup or the token write
// fails, never a 500 or a token.
func TestTokenStorageFailure(t *testing.T) {
	t.Parallel()
	t.Run("database closed", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		g := issueGrant(t, ts, "basic-client", "read", "offline_access")
		require.NoError(t, ts.Store.Close())
		requireError(t, ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "client_credentials"}, ts.as("basic-client")),
			http.StatusServiceUnavailable, "temporarily_unavailable")
		requireError(t, ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "client_credentials"}, ts.as("post-client")),
			http.StatusServiceUnavailable, "temporarily_unavailable")
		requireError(t, ts.refresh(t, "basic-client", g.Refresh), http.StatusServiceUnavailable, "temporarily_unavailable")
	})
	t.Run("token lookup and write fail", func(t *testing.T) {
		t.Parallel()
		ts, failLookup, _, failWrite := newFaultyServer(t)
		g := issueGrant(t, ts, "basic-client", "read", "offline_access")
		failLookup.Store(true)
		requireError(t, ts.refresh(t, "basic-client", g.Refresh), http.StatusServiceUnavailable, "temporarily_unavailable")
		failLookup.Store(false)

		failWrite.Store(true)
		requireError(t, ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "client_credentials"}, ts.as("basic-client")),
			http.StatusServiceUnavailable, "temporarily_unavailable")
		// The rotation already happened in the transaction when the new
		// access token fails to be stored: it must roll back.
		requireError(t, ts.refresh(t, "basic-client", g.Refresh), http.StatusServiceUnavailable, "temporarily_unavailable")
		failWrite.Store(false)
		require.True(t, ts.active(t, g.Refresh), "a failed rotation leaves the refresh token usable")
		ts.refreshOK(t, "basic-client", g.Refresh)
	})
}
