package server_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ory/fosite"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/latchauth/latch/server"
)

// codeMinter is a second Server on ts's store and system secret. A code it
// mints is nothing but stored state, so ts's token endpoint redeems it:
// the load benchmark mints codes this way before the timed phase.
func codeMinter(t *testing.T, ts *testServer) *server.Server {
	t.Helper()
	srv, err := server.New(t.Context(), server.Config{Issuer: ts.URL, Store: ts.Store, SystemSecret: ts.secret})
	require.NoError(t, err)
	return srv
}

// TestDevCodeExchange: a minted code is redeemed with x/oauth2 at the real
// token endpoint, once, with PKCE for a public client and HTTP Basic for a
// confidential one, and yields what a browser sign-in would.
func TestDevCodeExchange(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	minter := codeMinter(t, ts)
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, ts.http)
	verifier := oauth2.GenerateVerifier()
	tests := []struct {
		name    string
		req     server.CodeRequest
		conf    oauth2.Config
		opts    []oauth2.AuthCodeOption
		refresh bool
	}{
		{
			name: "public client with PKCE",
			req: server.CodeRequest{ClientID: "public-client", Subject: "alice", RedirectURI: callback,
				Scopes: []string{"openid", "email", "offline_access"}, CodeChallenge: oauth2.S256ChallengeFromVerifier(verifier), Nonce: "nonce-1234567890"},
			conf:    oauth2.Config{ClientID: "public-client", Endpoint: oauth2.Endpoint{AuthStyle: oauth2.AuthStyleInParams}},
			opts:    []oauth2.AuthCodeOption{oauth2.VerifierOption(verifier)},
			refresh: true,
		},
		{
			name: "confidential client with client_secret_basic",
			req: server.CodeRequest{ClientID: "web-client", Subject: "alice", RedirectURI: callback,
				Scopes: []string{"openid", "email"}, Nonce: "nonce-1234567890"},
			conf: oauth2.Config{ClientID: "web-client", ClientSecret: ts.secrets["web-client"], Endpoint: oauth2.Endpoint{AuthStyle: oauth2.AuthStyleInHeader}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, err := minter.IssueAuthorizeCode(t.Context(), tt.req)
			require.NoError(t, err)
			require.NotEmpty(t, code)
			conf := tt.conf
			conf.RedirectURL, conf.Endpoint.TokenURL = callback, ts.URL+"/oauth2/token"

			tok, err := conf.Exchange(ctx, code, tt.opts...)
			require.NoError(t, err)
			require.True(t, ts.active(t, tok.AccessToken), "the access token introspects active")
			require.Equal(t, tt.refresh, tok.RefreshToken != "", "a refresh token exactly when offline_access was granted")
			raw, _ := tok.Extra("id_token").(string)
			idt, claims := ts.verifyIDToken(t, raw, tt.req.ClientID)
			require.Equal(t, "alice", idt.Subject)
			require.Equal(t, tt.req.Nonce, idt.Nonce)
			require.Equal(t, "alice@example.com", claims["email"], "the user's claims, for the granted scopes")

			_, err = conf.Exchange(ctx, code, tt.opts...)
			var re *oauth2.RetrieveError
			require.ErrorAs(t, err, &re, "a code is redeemed once")
			require.Equal(t, "invalid_grant", re.ErrorCode)
		})
	}
}

// TestDevCodeRefused: IssueAuthorizeCode refuses what the authorization
// endpoint refuses, with the same RFC 6749 errors, and the token endpoint
// still checks the PKCE verifier of a minted code.
func TestDevCodeRefused(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	minter := codeMinter(t, ts)
	_, challenge := pkcePair("a-verifier-of-at-least-forty-three-characters-0123")
	ok := server.CodeRequest{ClientID: "public-client", Subject: "alice", RedirectURI: callback, Scopes: []string{"openid"}, CodeChallenge: challenge}
	tests := []struct {
		name   string
		change func(*server.CodeRequest)
		want   *fosite.RFC6749Error
	}{
		{"no subject", func(r *server.CodeRequest) { r.Subject = "" }, fosite.ErrInvalidRequest},
		{"unknown client", func(r *server.CodeRequest) { r.ClientID = "nobody" }, fosite.ErrInvalidClient},
		{"public client without PKCE", func(r *server.CodeRequest) { r.CodeChallenge = "" }, fosite.ErrInvalidRequest},
		{"unregistered redirect URI", func(r *server.CodeRequest) { r.RedirectURI = "http://127.0.0.1:5555/elsewhere" }, fosite.ErrInvalidRequest},
		{"unregistered scope", func(r *server.CodeRequest) { r.Scopes = []string{"openid", "write"} }, fosite.ErrInvalidScope},
		{"short nonce", func(r *server.CodeRequest) { r.Nonce = "n" }, fosite.ErrInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := ok
			tt.change(&req)
			_, err := minter.IssueAuthorizeCode(t.Context(), req)
			var rfc *fosite.RFC6749Error
			require.True(t, errors.As(err, &rfc), "an RFC 6749 error, got %v", err)
			require.Equal(t, tt.want.ErrorField, rfc.ErrorField, "hint: %s", rfc.HintField)
		})
	}

	t.Run("wrong verifier", func(t *testing.T) {
		code, err := minter.IssueAuthorizeCode(t.Context(), ok)
		require.NoError(t, err)
		r := ts.post(t, "/oauth2/token", "form", map[string]string{
			"grant_type": "authorization_code", "code": code, "redirect_uri": callback,
			"code_verifier": "another-verifier-of-at-least-forty-three-characters-0",
		}, ts.as("public-client"))
		requireError(t, r, 400, "invalid_grant")
	})
}
