package server_test

import (
	"net/http"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
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

// TestES256IDTokens: with SigningAlgorithm ES256 the keys are P-256, the
// discovery document says so, and go-oidc verifies the ID token.
func TestES256IDTokens(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(o *serverOptions) { o.cfg.SigningAlgorithm = "ES256" })
	ctx := oidc.ClientContext(t.Context(), ts.http)
	provider, err := oidc.NewProvider(ctx, ts.URL)
	require.NoError(t, err)
	var meta struct {
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	require.NoError(t, provider.Claims(&meta))
	require.Equal(t, []string{"ES256"}, meta.Algs)

	conf := oauth2.Config{ClientID: "public-client", RedirectURL: callback, Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{AuthURL: ts.URL + "/oauth2/auth", TokenURL: ts.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}}
	verifier := oauth2.GenerateVerifier()
	cb := ts.newBrowser(t).authorize(t, conf.AuthCodeURL("state-1234567890", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", "nonce-1234567890")))
	tok, err := conf.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(verifier))
	require.NoError(t, err)
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: "public-client", SupportedSigningAlgs: []string{"ES256"}}).Verify(ctx, raw)
	require.NoError(t, err)
	require.Equal(t, "alice", idt.Subject)
}
