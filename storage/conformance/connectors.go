package conformance

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/storage"
)

// connectorStore is the Connectors capability of s; a backend without it
// skips these subtests.
func connectorStore(t *testing.T, s storage.Store) storage.Connectors {
	cs, ok := s.(storage.Connectors)
	if !ok {
		t.Skip("the store has no Connectors capability")
	}
	return cs
}

func connectorTests() []subtest {
	return []subtest{
		{"Connectors/CreateUpsertListDelete", func(t *testing.T, s storage.Store) {
			ctx, cs := context.Background(), connectorStore(t, s)
			c := &storage.Connector{ID: "corp", Type: "oidc", Name: "Corp", Source: "api", Config: []byte("client_secret: s3cret\n")}
			require.NoError(t, cs.CreateConnector(ctx, c))
			require.ErrorIs(t, cs.CreateConnector(ctx, c), storage.ErrAlreadyExists)
			got, err := cs.GetConnector(ctx, "corp")
			require.NoError(t, err)
			require.Equal(t, c.Config, got.Config)
			require.Equal(t, "api", got.Source)

			c.Name, c.Source, c.Config = "Corp SSO", "config", []byte("client_secret: other\n")
			require.NoError(t, cs.UpsertConnector(ctx, c))
			require.NoError(t, cs.UpsertConnector(ctx, &storage.Connector{ID: "gh", Type: "oauth2", Name: "GitHub", Source: "config", Config: []byte("{}")}))
			list, err := cs.ListConnectors(ctx)
			require.NoError(t, err)
			require.Len(t, list, 2)
			require.Equal(t, "corp", list[0].ID)
			require.Equal(t, "Corp SSO", list[0].Name)
			require.Equal(t, []byte("client_secret: other\n"), list[0].Config)

			require.NoError(t, s.CreateUser(ctx, &storage.User{Username: "ann"}))
			require.NoError(t, cs.CreateLink(ctx, &storage.Link{ConnectorID: "corp", Subject: "s1", Username: "ann"}))
			require.NoError(t, cs.DeleteConnector(ctx, "corp"))
			requireNotFound(t, cs.DeleteConnector(ctx, "corp"), "delete twice")
			_, err = cs.GetConnector(ctx, "corp")
			requireNotFound(t, err, "deleted connector")
			_, err = cs.GetLink(ctx, "corp", "s1")
			requireNotFound(t, err, "link of a deleted connector")
			_, err = s.GetUser(ctx, "ann")
			require.NoError(t, err, "the user stays")
		}},
		{"Connectors/LinksUnique", func(t *testing.T, s storage.Store) {
			ctx, cs := context.Background(), connectorStore(t, s)
			require.NoError(t, s.CreateUser(ctx, &storage.User{Username: "ann"}))
			require.NoError(t, s.CreateUser(ctx, &storage.User{Username: "bob"}))
			require.NoError(t, cs.CreateLink(ctx, &storage.Link{ConnectorID: "corp", Subject: "s1", Username: "ann", Data: []byte("rt")}))
			// One subject, one user; one user, one subject per connector.
			require.ErrorIs(t, cs.CreateLink(ctx, &storage.Link{ConnectorID: "corp", Subject: "s1", Username: "bob"}), storage.ErrAlreadyExists)
			require.ErrorIs(t, cs.CreateLink(ctx, &storage.Link{ConnectorID: "corp", Subject: "s2", Username: "ann"}), storage.ErrAlreadyExists)
			require.NoError(t, cs.CreateLink(ctx, &storage.Link{ConnectorID: "gh", Subject: "s1", Username: "bob"}))
			requireNotFound(t, cs.CreateLink(ctx, &storage.Link{ConnectorID: "gh", Subject: "s9", Username: "nobody"}), "link to no user")

			l, err := cs.GetLink(ctx, "corp", "s1")
			require.NoError(t, err)
			require.Equal(t, "ann", l.Username)
			require.Equal(t, []byte("rt"), l.Data)
			l, err = cs.GetUserLink(ctx, "gh", "bob")
			require.NoError(t, err)
			require.Equal(t, "s1", l.Subject)

			require.NoError(t, cs.SetLinkData(ctx, "corp", "s1", []byte("rt2")))
			l, err = cs.GetLink(ctx, "corp", "s1")
			require.NoError(t, err)
			require.Equal(t, []byte("rt2"), l.Data)
			requireNotFound(t, cs.SetLinkData(ctx, "corp", "nobody", nil), "data of no link")

			links, err := cs.ListUserLinks(ctx, "bob")
			require.NoError(t, err)
			require.Len(t, links, 1)

			// Deleting the user deletes its links.
			require.NoError(t, s.DeleteUser(ctx, "ann"))
			_, err = cs.GetLink(ctx, "corp", "s1")
			requireNotFound(t, err, "link of a deleted user")
		}},
		{"Connectors/UsersByEmail", func(t *testing.T, s storage.Store) {
			ctx, cs := context.Background(), connectorStore(t, s)
			require.NoError(t, s.CreateUser(ctx, &storage.User{Username: "ann", Email: "Ann@Example.com"}))
			require.NoError(t, s.CreateUser(ctx, &storage.User{Username: "ann2", Email: "ann@example.com"}))
			require.NoError(t, s.CreateUser(ctx, &storage.User{Username: "bob", Email: "bob@example.com", EmailVerified: true}))
			require.NoError(t, s.CreateUser(ctx, &storage.User{Username: "cid"}))
			found, err := cs.UsersByEmail(ctx, "ANN@example.COM")
			require.NoError(t, err)
			require.Len(t, found, 2, "compared without case")
			found, err = cs.UsersByEmail(ctx, "bob@example.com")
			require.NoError(t, err)
			require.Len(t, found, 1)
			require.Equal(t, "bob", found[0].Username)
			require.True(t, found[0].EmailVerified)
			found, err = cs.UsersByEmail(ctx, "nobody@example.com")
			require.NoError(t, err)
			require.Empty(t, found)
		}},
		{"Connectors/CreateLinkedUserOnce", func(t *testing.T, s storage.Store) {
			ctx, cs := context.Background(), connectorStore(t, s)
			// Concurrent first sign-ins of one subject: exactly one
			// creates the user and link, the others change nothing.
			var wg sync.WaitGroup
			var created atomic.Int32
			for i := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					name := []string{"ann", "ann-2"}[i%2]
					err := cs.CreateLinkedUser(ctx, &storage.User{Username: name}, &storage.Link{ConnectorID: "corp", Subject: "s1", Username: name})
					if err == nil {
						created.Add(1)
					} else if !errors.Is(err, storage.ErrAlreadyExists) {
						t.Errorf("CreateLinkedUser: %v", err)
					}
				}()
			}
			wg.Wait()
			require.Equal(t, int32(1), created.Load())
			l, err := cs.GetLink(ctx, "corp", "s1")
			require.NoError(t, err)
			users, err := s.ListUsers(ctx)
			require.NoError(t, err)
			require.Len(t, users, 1, "a refused provisioning leaves no user behind")
			require.Equal(t, l.Username, users[0].Username)
			// A taken username is ErrAlreadyExists, and no link is made.
			require.ErrorIs(t, cs.CreateLinkedUser(ctx, &storage.User{Username: l.Username}, &storage.Link{ConnectorID: "corp", Subject: "s2", Username: l.Username}), storage.ErrAlreadyExists)
			_, err = cs.GetLink(ctx, "corp", "s2")
			requireNotFound(t, err, "link of a refused provisioning")
		}},
	}
}
