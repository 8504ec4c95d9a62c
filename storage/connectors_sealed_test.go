package storage_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/storage"
)

// A connector's config holds its upstream client secret, and a link's
// data an upstream token: with secrets.system set, a copy of the database
// holds neither in clear, and both read back.
func TestConnectorSecretsSealed(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, db database) {
		ctx := context.Background()
		s := db.open(t, newCipher(t, "connector-test-secret-0123456789abcdef"))
		cfg := []byte("id: corp\nclient_secret: upstream-client-secret\n")
		require.NoError(t, s.CreateConnector(ctx, &storage.Connector{ID: "corp", Type: "oidc", Name: "Corp", Source: "api", Config: cfg}))
		require.NoError(t, s.CreateUser(ctx, &storage.User{Username: "ann"}))
		require.NoError(t, s.CreateLink(ctx, &storage.Link{ConnectorID: "corp", Subject: "s1", Username: "ann", Data: []byte(`{"refresh_token":"upstream-refresh"}`)}))

		q := func(sql string) string {
			if db.driver == "postgres" {
				return strings.Replace(sql, "?", "$1", 1)
			}
			return sql
		}
		require.NotContains(t, db.column(t, q("SELECT config FROM connectors WHERE id = ?"), "corp"), "upstream-client-secret")
		require.NotContains(t, db.column(t, q("SELECT data FROM connector_links WHERE subject = ?"), "s1"), "upstream-refresh")

		got, err := s.GetConnector(ctx, "corp")
		require.NoError(t, err)
		require.Equal(t, cfg, got.Config)
		l, err := s.GetLink(ctx, "corp", "s1")
		require.NoError(t, err)
		require.Equal(t, `{"refresh_token":"upstream-refresh"}`, string(l.Data))

		// Without the secret the sealed config does not open.
		require.NoError(t, s.Close())
		_, err = db.open(t, nil).GetConnector(ctx, "corp")
		require.ErrorIs(t, err, storage.ErrSealed)
	})
}
