package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

// dpopTransport adds a fresh DPoP proof to every request, as a DPoP client
// library does.
type dpopTransport struct {
	t *testing.T
	c *dpopClient
}

func (d dpopTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	htu := req.URL.Scheme + "://" + req.URL.Host + req.URL.Path
	req.Header.Set("DPoP", d.c.proof(d.t, req.Method, htu, proofOpts{}))
	return http.DefaultTransport.RoundTrip(req)
}

// dpopCodeFlow runs the authorization code flow of public-client through
// golang.org/x/oauth2 with a DPoP proof on the token request.
func dpopCodeFlow(t *testing.T, ts *testServer, c *dpopClient) *oauth2.Token {
	t.Helper()
	conf := oauth2.Config{ClientID: "public-client", RedirectURL: callback, Scopes: []string{"openid", "offline_access"},
		Endpoint: oauth2.Endpoint{AuthURL: ts.URL + "/oauth2/auth", TokenURL: ts.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}}
	verifier := oauth2.GenerateVerifier()
	cb := ts.newBrowser(t).authorize(t, conf.AuthCodeURL("state-1234567890", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", "nonce-1234567890")))
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, &http.Client{Transport: dpopTransport{t: t, c: c}})
	tok, err := conf.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(verifier))
	require.NoError(t, err)
	return tok
}

// userinfo sends a GET /userinfo with the Authorization header and the
// DPoP proofs given.
func (ts *testServer) userinfo(t *testing.T, authorization string, proofs ...string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, ts.URL+"/userinfo", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", authorization)
	for _, p := range proofs {
		req.Header.Add("DPoP", p)
	}
	return ts.do(t, req)
}

func requireDPoPChallenge(t *testing.T, r response, code string) {
	t.Helper()
	require.Equal(t, http.StatusUnauthorized, r.Status, "%s", r.Body)
	challenge := r.Header.Get("WWW-Authenticate")
	require.True(t, strings.HasPrefix(challenge, "DPoP "), "DPoP challenge, not %q", challenge)
	require.Contains(t, challenge, `error="`+code+`"`)
	require.Contains(t, challenge, `algs="ES256`)
	require.Equal(t, code, r.json(t)["error"])
}

func TestDPoPCodeFlowThroughOAuth2ClientAndUserinfo(t *testing.T) {
	ts := newTestServer(t)
	c := newDPoPClient(t)
	tok := dpopCodeFlow(t, ts, c)
	require.Equal(t, "DPoP", tok.TokenType)
	require.NotEmpty(t, tok.Extra("id_token"), "the OpenID session survives the binding")

	htu := ts.URL + "/userinfo"
	r := ts.userinfo(t, "DPoP "+tok.AccessToken, c.proof(t, "GET", htu, proofOpts{claims: map[string]any{"ath": athOf(tok.AccessToken)}}))
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, "alice", r.json(t)["sub"])
}

func TestUserinfoRefusesDPoPMisuse(t *testing.T) {
	ts := newTestServer(t)
	c := newDPoPClient(t)
	tok := dpopCodeFlow(t, ts, c)
	htu := ts.URL + "/userinfo"
	ath := athOf(tok.AccessToken)
	withATH := proofOpts{claims: map[string]any{"ath": ath}}
	other := newDPoPClient(t)

	t.Run("bound token sent as Bearer", func(t *testing.T) {
		requireDPoPChallenge(t, ts.userinfo(t, "Bearer "+tok.AccessToken), "invalid_token")
	})
	t.Run("DPoP scheme without a proof", func(t *testing.T) {
		requireDPoPChallenge(t, ts.userinfo(t, "DPoP "+tok.AccessToken), "invalid_dpop_proof")
	})
	t.Run("proof without ath", func(t *testing.T) {
		requireDPoPChallenge(t, ts.userinfo(t, "DPoP "+tok.AccessToken, c.proof(t, "GET", htu, proofOpts{})), "invalid_dpop_proof")
	})
	t.Run("proof with the ath of another token", func(t *testing.T) {
		p := c.proof(t, "GET", htu, proofOpts{claims: map[string]any{"ath": athOf("another-token")}})
		requireDPoPChallenge(t, ts.userinfo(t, "DPoP "+tok.AccessToken, p), "invalid_dpop_proof")
	})
	t.Run("proof by another key than the bound one", func(t *testing.T) {
		requireDPoPChallenge(t, ts.userinfo(t, "DPoP "+tok.AccessToken, other.proof(t, "GET", htu, withATH)), "invalid_dpop_proof")
	})
	t.Run("proof for the token endpoint", func(t *testing.T) {
		p := c.proof(t, "GET", ts.URL+"/oauth2/token", withATH)
		requireDPoPChallenge(t, ts.userinfo(t, "DPoP "+tok.AccessToken, p), "invalid_dpop_proof")
	})
	t.Run("replayed proof", func(t *testing.T) {
		p := c.proof(t, "GET", htu, withATH)
		require.Equal(t, http.StatusOK, ts.userinfo(t, "DPoP "+tok.AccessToken, p).Status)
		requireDPoPChallenge(t, ts.userinfo(t, "DPoP "+tok.AccessToken, p), "invalid_dpop_proof")
	})
	t.Run("Bearer token sent as DPoP", func(t *testing.T) {
		bearer := issueGrant(t, ts, "public-client", "openid").Access
		p := c.proof(t, "GET", htu, proofOpts{claims: map[string]any{"ath": athOf(bearer)}})
		requireDPoPChallenge(t, ts.userinfo(t, "DPoP "+bearer, p), "invalid_token")
	})
	t.Run("inactive token sent as DPoP", func(t *testing.T) {
		p := c.proof(t, "GET", htu, proofOpts{claims: map[string]any{"ath": athOf("ory_at_nope.nope")}})
		requireDPoPChallenge(t, ts.userinfo(t, "DPoP ory_at_nope.nope", p), "invalid_token")
	})
}
