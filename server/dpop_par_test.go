package server_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

// RFC 9449 §10.1: a DPoP proof at the PAR endpoint binds the code as
// dpop_jkt would; §8: with nonces required, PAR answers use_dpop_nonce
// like the token endpoint.

// pushWithProof posts a pushed authorization request as public-client
// with a DPoP header.
func (ts *testServer) pushWithProof(t *testing.T, fields map[string]string, proof string) response {
	t.Helper()
	req := ts.formRequest(t, "/oauth2/par", fields, idAuth("public-client"))
	req.Header.Set("DPoP", proof)
	return ts.do(t, req)
}

func TestDPoPProofAtPARBindsTheCode(t *testing.T) {
	ts := newTestServer(t)
	c := newDPoPClient(t)
	verifier := oauth2.GenerateVerifier()
	_, challenge := pkcePair(verifier)
	parHTU, tokenHTU := ts.URL+"/oauth2/par", ts.URL+"/oauth2/token"

	r := ts.pushWithProof(t, pushedRequest(challenge, nil), c.proof(t, "POST", parHTU, proofOpts{}))
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	uri := r.json(t)["request_uri"].(string)
	code := ts.newBrowser(t).authorize(t, ts.parAuthorizeURL("public-client", uri)).Query().Get("code")
	require.NotEmpty(t, code)
	fields := map[string]string{"grant_type": "authorization_code", "code": code, "redirect_uri": callback, "code_verifier": verifier}

	requireError(t, ts.tokenWithProofs(t, fields, idAuth("public-client")), http.StatusBadRequest, "invalid_dpop_proof")
	other := newDPoPClient(t)
	requireError(t, ts.tokenWithProofs(t, fields, idAuth("public-client"), other.proof(t, "POST", tokenHTU, proofOpts{})),
		http.StatusBadRequest, "invalid_dpop_proof")
	r = ts.tokenWithProofs(t, fields, idAuth("public-client"), c.proof(t, "POST", tokenHTU, proofOpts{}))
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, "DPoP", r.json(t)["token_type"])
}

func TestDPoPProofAtPARRefused(t *testing.T) {
	ts := newTestServer(t)
	c := newDPoPClient(t)
	_, challenge := pkcePair(oauth2.GenerateVerifier())
	parHTU := ts.URL + "/oauth2/par"

	t.Run("dpop_jkt of another key", func(t *testing.T) {
		other := newDPoPClient(t)
		r := ts.pushWithProof(t, pushedRequest(challenge, map[string]string{"dpop_jkt": other.jkt(t)}), c.proof(t, "POST", parHTU, proofOpts{}))
		requireError(t, r, http.StatusBadRequest, "invalid_dpop_proof")
	})
	t.Run("dpop_jkt of the proof's key", func(t *testing.T) {
		r := ts.pushWithProof(t, pushedRequest(challenge, map[string]string{"dpop_jkt": c.jkt(t)}), c.proof(t, "POST", parHTU, proofOpts{}))
		require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	})
	t.Run("a proof for the token endpoint", func(t *testing.T) {
		r := ts.pushWithProof(t, pushedRequest(challenge, nil), c.proof(t, "POST", ts.URL+"/oauth2/token", proofOpts{}))
		requireError(t, r, http.StatusBadRequest, "invalid_dpop_proof")
	})
	t.Run("replayed", func(t *testing.T) {
		p := c.proof(t, "POST", parHTU, proofOpts{})
		require.Equal(t, http.StatusCreated, ts.pushWithProof(t, pushedRequest(challenge, nil), p).Status)
		requireError(t, ts.pushWithProof(t, pushedRequest(challenge, nil), p), http.StatusBadRequest, "invalid_dpop_proof")
	})
	t.Run("a failed client authentication spends no proof", func(t *testing.T) {
		p := c.proof(t, "POST", parHTU, proofOpts{})
		req := ts.formRequest(t, "/oauth2/par", pushedRequest(challenge, nil), basicAuth("web-client", "wrong"))
		req.Header.Set("DPoP", p)
		requireError(t, ts.do(t, req), http.StatusUnauthorized, "invalid_client")
		require.Equal(t, http.StatusCreated, ts.pushWithProof(t, pushedRequest(challenge, nil), p).Status)
	})
}

func TestDPoPNonceRequiredAtPAR(t *testing.T) {
	ts := newTestServer(t, withDPoPNonces())
	c := newDPoPClient(t)
	_, challenge := pkcePair(oauth2.GenerateVerifier())
	parHTU := ts.URL + "/oauth2/par"

	r := ts.pushWithProof(t, pushedRequest(challenge, nil), c.proof(t, "POST", parHTU, proofOpts{}))
	requireError(t, r, http.StatusBadRequest, "use_dpop_nonce")
	nonce := r.Header.Get("DPoP-Nonce")
	require.NotEmpty(t, nonce, "the refusal carries the nonce to use")

	stale := c.proof(t, "POST", parHTU, proofOpts{claims: map[string]any{"nonce": "not-a-nonce-of-this-server"}})
	requireError(t, ts.pushWithProof(t, pushedRequest(challenge, nil), stale), http.StatusBadRequest, "use_dpop_nonce")

	r = ts.pushWithProof(t, pushedRequest(challenge, nil), c.proof(t, "POST", parHTU, proofOpts{claims: map[string]any{"nonce": nonce}}))
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	require.NotEmpty(t, r.Header.Get("DPoP-Nonce"), "every answer to a DPoP request carries the current nonce")

	// A push without a proof needs no nonce.
	require.Equal(t, http.StatusCreated, ts.post(t, "/oauth2/par", "form", pushedRequest(challenge, nil), idAuth("public-client")).Status)
}
