package server_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

func TestDPoPJKTBindsTheAuthorizationCode(t *testing.T) {
	ts := newTestServer(t)
	c := newDPoPClient(t)
	verifier := oauth2.GenerateVerifier()
	_, challenge := pkcePair(verifier)
	authURL := ts.authorizeURL("public-client", map[string]string{
		"code_challenge": challenge, "code_challenge_method": "S256", "dpop_jkt": c.jkt(t),
	})
	code := ts.newBrowser(t).authorize(t, authURL).Query().Get("code")
	require.NotEmpty(t, code)
	fields := map[string]string{"grant_type": "authorization_code", "code": code, "redirect_uri": callback, "code_verifier": verifier}
	htu := ts.URL + "/oauth2/token"

	// Refused without a proof and with another key's; neither spends the code.
	requireError(t, ts.tokenWithProofs(t, fields, idAuth("public-client")), http.StatusBadRequest, "invalid_dpop_proof")
	other := newDPoPClient(t)
	requireError(t, ts.tokenWithProofs(t, fields, idAuth("public-client"), other.proof(t, "POST", htu, proofOpts{})),
		http.StatusBadRequest, "invalid_dpop_proof")

	r := ts.tokenWithProofs(t, fields, idAuth("public-client"), c.proof(t, "POST", htu, proofOpts{}))
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, "DPoP", r.json(t)["token_type"])
}

func TestMalformedDPoPJKTIsRefusedAtTheAuthorizationEndpoint(t *testing.T) {
	ts := newTestServer(t)
	_, challenge := pkcePair(oauth2.GenerateVerifier())
	for _, jkt := range []string{"short", "not base64url!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!", "AAAA"} {
		authURL := ts.authorizeURL("public-client", map[string]string{
			"code_challenge": challenge, "code_challenge_method": "S256", "dpop_jkt": jkt,
		})
		loc, err := url.Parse(location(t, ts.newBrowser(t).get(t, authURL)))
		require.NoError(t, err)
		require.Equal(t, "invalid_request", loc.Query().Get("error"), "dpop_jkt %q: %s", jkt, loc)
	}
}
