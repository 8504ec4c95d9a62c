package server_test

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRestart: what server A issued and revoked holds at server B, started
// on the same SQLite file after A and its store are closed. Neither is
// given a system secret, so B can only accept A's tokens if the secret A
// generated was stored and B loaded it.
func TestRestart(t *testing.T) {
	t.Parallel()
	a := newTestServer(t, withGeneratedSystemSecret())
	require.Empty(t, a.opts.cfg.SystemSecret, "A runs on a generated secret")
	kept := a.clientCredentials(t, "basic-client", "read")
	revoked := a.clientCredentials(t, "basic-client", "read")
	r := a.post(t, "/oauth2/revoke", "form", map[string]string{"token": revoked}, a.as("basic-client"))
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	g := issueGrant(t, a, "post-client", "read", "offline_access")

	b := a.restart(t)
	require.NotEqual(t, a.URL, b.URL, "B is a new server")
	require.True(t, bytes.Equal(a.secret, b.secret), "the stored system secret survives")

	require.True(t, b.active(t, kept), "a token issued by A is active at B")
	require.False(t, b.active(t, revoked), "a token revoked at A stays revoked at B")
	require.True(t, b.active(t, g.Refresh), "a refresh token survives too")
	g2 := b.refreshOK(t, "post-client", g.Refresh)
	require.True(t, b.active(t, g2.Access))
	got := b.introspect(t, kept).json(t)
	require.Equal(t, b.URL, got["iss"], "B answers as itself")

	// The control: with another secret, A's tokens are worthless, so the
	// checks above did depend on the stored secret.
	c := b.restart(t, withSystemSecret([]byte("another-system-secret-of-at-least-32-bytes")))
	require.False(t, c.active(t, kept), "a token of another system secret is not active")
	require.True(t, c.active(t, c.clientCredentials(t, "basic-client", "read")))
}
