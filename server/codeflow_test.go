package server_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

// TestCodeFlowSmoke is the shortest whole path: sign in, consent, code,
// tokens with x/oauth2 and PKCE.
func TestCodeFlowSmoke(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	b := ts.newBrowser(t)
	conf := oauth2.Config{ClientID: "public-client", RedirectURL: callback, Scopes: []string{"openid", "offline_access"},
		Endpoint: oauth2.Endpoint{AuthURL: ts.URL + "/oauth2/auth", TokenURL: ts.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}}
	verifier := oauth2.GenerateVerifier()
	cb := b.authorize(t, conf.AuthCodeURL("state-1234567890", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", "nonce-1234567890")))
	require.Equal(t, "state-1234567890", cb.Query().Get("state"))
	tok, err := conf.Exchange(t.Context(), cb.Query().Get("code"), oauth2.VerifierOption(verifier))
	require.NoError(t, err)
	require.NotEmpty(t, tok.RefreshToken)
	require.NotEmpty(t, tok.Extra("id_token"))
	r := ts.raw(t, http.MethodGet, "/userinfo", "", "", bearerAuth(tok.AccessToken))
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, "alice", r.json(t)["sub"])
}
