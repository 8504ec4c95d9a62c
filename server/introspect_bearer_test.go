package server_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestIntrospectBearerMustBeConfidential: a bearer caller of the
// introspection endpoint must hold an access token of a confidential
// client. A public client's token (here an SPA user's) is refused with
// 401 invalid_client, as the public client itself would be.
func TestIntrospectBearerMustBeConfidential(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	target := ts.clientCredentials(t, "basic-client", "read")

	spa := issueGrant(t, ts, "public-client", "openid", "read").Access
	r := ts.post(t, "/oauth2/introspect", "form", map[string]string{"token": target}, bearerAuth(spa))
	requireError(t, r, http.StatusUnauthorized, "invalid_client")
	requireChallenge(t, r, challengeBearer)
	require.NotContains(t, string(r.Body), `"active"`)

	web := issueGrant(t, ts, "web-client", "openid", "read").Access
	r = ts.post(t, "/oauth2/introspect", "form", map[string]string{"token": target}, bearerAuth(web))
	require.Equal(t, http.StatusOK, r.Status, "a confidential client's token may introspect: %s", r.Body)
	require.Equal(t, true, r.json(t)["active"])
}
