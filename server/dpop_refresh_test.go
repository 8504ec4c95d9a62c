package server_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/clients"
)

func TestDPoPBoundAccessTokensClientNeedsAProof(t *testing.T) {
	ts := newTestServer(t)
	ts.addClient(t, &clients.Client{ID: "dpop-client", TokenEndpointAuthMethod: clients.AuthMethodBasic,
		GrantTypes: []string{"client_credentials"}, Scopes: []string{"read"}, DPoPBoundAccessTokens: true})
	requireError(t, ts.post(t, "/oauth2/token", "form", ccRead, ts.as("dpop-client")), http.StatusBadRequest, "invalid_dpop_proof")

	c := newDPoPClient(t)
	r := ts.tokenWithProofs(t, ccRead, ts.as("dpop-client"), c.proof(t, "POST", ts.URL+"/oauth2/token", proofOpts{}))
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, "DPoP", r.json(t)["token_type"])
}

func TestDPoPPublicClientRefreshTokenIsBoundToItsKey(t *testing.T) {
	ts := newTestServer(t)
	c := newDPoPClient(t)
	tok := dpopCodeFlow(t, ts, c)
	require.NotEmpty(t, tok.RefreshToken)
	htu := ts.URL + "/oauth2/token"
	fields := func(refresh string) map[string]string {
		return map[string]string{"grant_type": "refresh_token", "refresh_token": refresh}
	}

	// Refused without a proof and with another key's; neither spends the
	// refresh token.
	requireError(t, ts.refresh(t, "public-client", tok.RefreshToken), http.StatusBadRequest, "invalid_dpop_proof")
	other := newDPoPClient(t)
	requireError(t, ts.tokenWithProofs(t, fields(tok.RefreshToken), idAuth("public-client"), other.proof(t, "POST", htu, proofOpts{})),
		http.StatusBadRequest, "invalid_dpop_proof")

	r := ts.tokenWithProofs(t, fields(tok.RefreshToken), idAuth("public-client"), c.proof(t, "POST", htu, proofOpts{}))
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	body := r.json(t)
	require.Equal(t, "DPoP", body["token_type"])
	require.Equal(t, map[string]any{"jkt": c.jkt(t)}, ts.introspect(t, body["access_token"].(string)).json(t)["cnf"])

	// The rotated refresh token keeps the binding.
	next := body["refresh_token"].(string)
	requireError(t, ts.refresh(t, "public-client", next), http.StatusBadRequest, "invalid_dpop_proof")
	r = ts.tokenWithProofs(t, fields(next), idAuth("public-client"), c.proof(t, "POST", htu, proofOpts{}))
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
}

func TestAdminAPISetsDPoPBoundAccessTokens(t *testing.T) {
	ts := newAdminServer(t)
	m := ts.adminOK(t, http.MethodPost, "/admin/clients", map[string]any{
		"client_id": "bound", "grant_types": []string{"client_credentials"}, "client_secret": "a-secret-someone-chose",
		"dpop_bound_access_tokens": true,
	}, http.StatusCreated)
	require.Equal(t, true, m["dpop_bound_access_tokens"])
	requireError(t, ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "client_credentials"},
		basicAuth("bound", "a-secret-someone-chose")), http.StatusBadRequest, "invalid_dpop_proof")
}
