package server_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRevokeJSONStrictFieldNames: a JSON revocation body is read with
// exact, case-sensitive field names, and a field named twice is 400
// invalid_request; neither revokes anything.
func TestRevokeJSONStrictFieldNames(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for _, tc := range []struct {
		name, body, wantHint string
	}{
		{"upper-case field name", `{"TOKEN":%q}`, "The 'token' parameter is missing."},
		{"mixed-case field name", `{"Token":%q}`, "The 'token' parameter is missing."},
		{"duplicated token, empty last", `{"token":%q,"token":""}`, "The request body names a field more than once."},
		{"duplicated token, other first", `{"token":"other","token":%q}`, "The request body names a field more than once."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tok := ts.clientCredentials(t, "basic-client", "read")
			r := ts.raw(t, http.MethodPost, "/oauth2/revoke", "application/json", fmt.Sprintf(tc.body, tok), ts.as("basic-client"))
			require.Equal(t, http.StatusBadRequest, r.Status, "body %s", r.Body)
			requireError(t, r, http.StatusBadRequest, "invalid_request")
			require.Contains(t, r.json(t)["error_description"], tc.wantHint)
			require.True(t, ts.active(t, tok), "a refused revocation revoked the token")
		})
	}
	t.Run("exact names revoke", func(t *testing.T) {
		tok := ts.clientCredentials(t, "basic-client", "read")
		r := ts.raw(t, http.MethodPost, "/oauth2/revoke", "application/json", fmt.Sprintf(`{"token":%q,"unknown":1}`, tok), ts.as("basic-client"))
		require.Equal(t, http.StatusOK, r.Status, "body %s", r.Body)
		require.False(t, ts.active(t, tok))
	})
}
