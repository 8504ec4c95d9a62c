package server_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func withDPoPNonces() option {
	return func(o *serverOptions) { o.cfg.DPoPRequireNonce = true }
}

func TestDPoPNonceRequiredAtTheTokenEndpoint(t *testing.T) {
	ts := newTestServer(t, withDPoPNonces())
	c := newDPoPClient(t)
	htu := ts.URL + "/oauth2/token"

	r := ts.tokenWithProofs(t, ccRead, ts.as("basic-client"), c.proof(t, "POST", htu, proofOpts{}))
	requireError(t, r, http.StatusBadRequest, "use_dpop_nonce")
	nonce := r.Header.Get("DPoP-Nonce")
	require.NotEmpty(t, nonce, "the refusal carries the nonce to use")

	stale := c.proof(t, "POST", htu, proofOpts{claims: map[string]any{"nonce": "not-a-nonce-of-this-server"}})
	requireError(t, ts.tokenWithProofs(t, ccRead, ts.as("basic-client"), stale), http.StatusBadRequest, "use_dpop_nonce")

	r = ts.tokenWithProofs(t, ccRead, ts.as("basic-client"), c.proof(t, "POST", htu, proofOpts{claims: map[string]any{"nonce": nonce}}))
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, "DPoP", r.json(t)["token_type"])
	require.NotEmpty(t, r.Header.Get("DPoP-Nonce"))
}

func TestDPoPNonceRequiredAtUserinfo(t *testing.T) {
	ts := newTestServer(t, withDPoPNonces())
	c := newDPoPClient(t)
	tokenHTU, userinfoHTU := ts.URL+"/oauth2/token", ts.URL+"/userinfo"
	nonce := ts.tokenWithProofs(t, ccRead, ts.as("basic-client"), c.proof(t, "POST", tokenHTU, proofOpts{})).Header.Get("DPoP-Nonce")
	require.NotEmpty(t, nonce)
	bound := ts.tokenWithProofs(t, ccRead, ts.as("basic-client"), c.proof(t, "POST", tokenHTU, proofOpts{claims: map[string]any{"nonce": nonce}}))
	require.Equal(t, http.StatusOK, bound.Status, "%s", bound.Body)
	access := bound.json(t)["access_token"].(string)

	r := ts.userinfo(t, "DPoP "+access, c.proof(t, "GET", userinfoHTU, proofOpts{claims: map[string]any{"ath": athOf(access)}}))
	requireDPoPChallenge(t, r, "use_dpop_nonce")
	nonce = r.Header.Get("DPoP-Nonce")
	require.NotEmpty(t, nonce)

	// With the nonce the proof passes; the token (client_credentials, no
	// openid scope) then meets userinfo's own scope check.
	p := c.proof(t, "GET", userinfoHTU, proofOpts{claims: map[string]any{"ath": athOf(access), "nonce": nonce}})
	r = ts.userinfo(t, "DPoP "+access, p)
	require.Equal(t, http.StatusForbidden, r.Status, "%s", r.Body)
	require.Equal(t, "insufficient_scope", r.json(t)["error"])
}
