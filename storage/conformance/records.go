package conformance

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"
	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/storage"
)

// recordTests cover Latch's own records: clients, users and used JTIs.
func recordTests() []subtest {
	return []subtest{
		{"ClientCRUD", testClientCRUD},
		{"ClientErrors", testClientErrors},
		{"ClientUpsert", testClientUpsert},
		{"ClientUpsertConcurrent", testClientUpsertConcurrent},
		{"ClientList", testClientList},
		{"ClientDeleteEndsItsTokens", testClientDeleteEndsItsTokens},
		{"ClientAssertionJWT", testClientAssertionJWT},
		{"JWTBearerJTI", testJWTBearerJTI},
		{"Users", testUsers},
		{"Ping", testPing},
	}
}

// requireClient compares every field; times with Equal (a backend may give
// them back in another location) and the JWKS by its JSON form (go-jose
// decodes a key into a struct that is equal in meaning, not in reflection).
//
// want is the struct as it is after the write: a backend may keep the
// timestamps itself, but then it writes them back into the struct it was
// handed, so a caller (the admin API answering an update) shows what is
// stored.
func requireClient(t *testing.T, want *clients.Client, gotClient fosite.Client) {
	t.Helper()
	got, ok := gotClient.(*clients.Client)
	require.Truef(t, ok, "GetClient returned %T, want *clients.Client", gotClient)
	w, g := *want, *got
	require.Truef(t, w.CreatedAt.Equal(g.CreatedAt), "CreatedAt: want %v, got %v", w.CreatedAt, g.CreatedAt)
	require.Truef(t, w.UpdatedAt.Equal(g.UpdatedAt), "UpdatedAt: want %v, got %v", w.UpdatedAt, g.UpdatedAt)
	wantJWKS, err := json.Marshal(w.JWKS)
	require.NoError(t, err)
	gotJWKS, err := json.Marshal(g.JWKS)
	require.NoError(t, err)
	require.JSONEq(t, string(wantJWKS), string(gotJWKS), "JWKS")
	w.CreatedAt, w.UpdatedAt, w.JWKS = time.Time{}, time.Time{}, nil
	g.CreatedAt, g.UpdatedAt, g.JWKS = time.Time{}, time.Time{}, nil
	require.Equal(t, w, g, "client fields")
}

func testClientCRUD(t *testing.T, s storage.Store) {
	c := testClient("app")
	c.TokenEndpointAuthMethod = clients.AuthMethodPrivateKey
	_, pub := rsaKey(t, "ck1")
	c.JWKS = &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}}
	require.NoError(t, s.CreateClient(ctx(t), c))

	got, err := s.GetClient(ctx(t), "app")
	require.NoError(t, err)
	requireClient(t, c, got)

	u := testClient("app")
	u.Name = "Renamed"
	u.SecretHash = "$argon2id$v=19$m=65536,t=3,p=2$c2FsdA$aGFzaA"
	u.RedirectURIs = []string{"https://new.example.com/cb"}
	u.Scopes = []string{"openid"}
	u.SkipConsent = false
	u.RateLimit = 0
	u.TokenEndpointAuthMethod = clients.AuthMethodNone
	u.UpdatedAt = u.UpdatedAt.Add(time.Hour)
	require.NoError(t, s.UpdateClient(ctx(t), u))
	got, err = s.GetClient(ctx(t), "app")
	require.NoError(t, err)
	require.Truef(t, u.CreatedAt.Equal(got.(*clients.Client).CreatedAt),
		"after UpdateClient the client handed in says CreatedAt %v, the stored one %v: a store that keeps CreatedAt itself must write it back into the struct",
		u.CreatedAt, got.(*clients.Client).CreatedAt)
	requireClient(t, u, got)
	require.True(t, got.IsPublic(), "the updated auth method none makes the client public")

	require.NoError(t, s.DeleteClient(ctx(t), "app"))
	_, err = s.GetClient(ctx(t), "app")
	requireNotFound(t, err, "GetClient after DeleteClient")
}

func testClientErrors(t *testing.T, s storage.Store) {
	first := createClient(t, s, "app")
	err := s.CreateClient(ctx(t), testClient("app"))
	require.Truef(t, errors.Is(err, storage.ErrAlreadyExists), "CreateClient twice: want ErrAlreadyExists, got %v", err)

	_, err = s.GetClient(ctx(t), "nobody")
	requireNotFound(t, err, "GetClient unknown")
	requireNotFound(t, s.UpdateClient(ctx(t), testClient("nobody")), "UpdateClient unknown")
	_, err = s.GetClient(ctx(t), "nobody")
	requireNotFound(t, err, "UpdateClient of an unknown client must not create it")
	requireNotFound(t, s.DeleteClient(ctx(t), "nobody"), "DeleteClient unknown")

	// The failed create left the first client as it was.
	got, err := s.GetClient(ctx(t), "app")
	require.NoError(t, err)
	requireClient(t, first, got)
}

func testClientUpsert(t *testing.T, s storage.Store) {
	c := testClient("app")
	require.NoError(t, s.UpsertClient(ctx(t), c), "UpsertClient creates")
	got, err := s.GetClient(ctx(t), "app")
	require.NoError(t, err)
	requireClient(t, c, got)

	r := testClient("app")
	r.Name = "Replaced"
	r.GrantTypes = []string{clients.GrantClientCredentials}
	r.ResponseTypes = []string{}
	r.Audience = []string{"https://other.example.com"}
	r.AccessTokenFormat = "opaque"
	require.NoError(t, s.UpsertClient(ctx(t), r), "UpsertClient replaces")
	got, err = s.GetClient(ctx(t), "app")
	require.NoError(t, err)
	require.Equal(t, "Replaced", got.(*clients.Client).Name)
	require.Equal(t, fosite.Arguments{clients.GrantClientCredentials}, got.GetGrantTypes())
	require.Empty(t, got.GetResponseTypes())
	require.Equal(t, fosite.Arguments{"https://other.example.com"}, got.GetAudience())
	require.Equal(t, "opaque", got.(*clients.Client).AccessTokenFormat)

	list, err := s.ListClients(ctx(t))
	require.NoError(t, err)
	require.Len(t, list, 1, "an upsert of an existing ID does not add a client")
}

func testClientList(t *testing.T, s storage.Store) {
	list, err := s.ListClients(ctx(t))
	require.NoError(t, err)
	require.Empty(t, list, "a fresh store has no clients")

	created := map[string]*clients.Client{}
	for _, id := range []string{"charlie", "alpha", "delta", "bravo"} {
		created[id] = createClient(t, s, id)
	}
	list, err = s.ListClients(ctx(t))
	require.NoError(t, err)
	var ids []string
	for _, c := range list {
		ids = append(ids, c.ID)
	}
	require.Equal(t, []string{"alpha", "bravo", "charlie", "delta"}, ids, "ListClients sorted by ID")
	for _, c := range list {
		requireClient(t, created[c.ID], c)
	}
}

func testClientDeleteEndsItsTokens(t *testing.T, s storage.Store) {
	gone := createClient(t, s, "gone")
	kept := createClient(t, s, "kept")
	exp := now().Add(time.Hour)
	for _, c := range []*clients.Client{gone, kept} {
		req := newRequest(c, "req-"+c.ID, "alice", exp)
		areq := newAuthorizeRequest(c, "areq-"+c.ID, "alice", exp)
		require.NoError(t, s.CreateAccessTokenSession(ctx(t), "at-"+c.ID, req))
		require.NoError(t, s.CreateRefreshTokenSession(ctx(t), "rt-"+c.ID, "at-"+c.ID, req))
		require.NoError(t, s.CreateAuthorizeCodeSession(ctx(t), "code-"+c.ID, areq))
		require.NoError(t, s.CreatePKCERequestSession(ctx(t), "code-"+c.ID, areq))
		require.NoError(t, s.CreateOpenIDConnectSession(ctx(t), "code-"+c.ID, areq))
		require.NoError(t, s.CreatePARSession(ctx(t), "urn:par:"+c.ID, areq))
	}
	require.NoError(t, s.DeleteClient(ctx(t), "gone"))

	for _, c := range []string{"gone", "kept"} {
		var errs []error
		_, err := s.GetAccessTokenSession(ctx(t), "at-"+c, newSession("", time.Time{}))
		errs = append(errs, err)
		_, err = s.GetRefreshTokenSession(ctx(t), "rt-"+c, newSession("", time.Time{}))
		errs = append(errs, err)
		_, err = s.GetAuthorizeCodeSession(ctx(t), "code-"+c, newSession("", time.Time{}))
		errs = append(errs, err)
		_, err = s.GetPKCERequestSession(ctx(t), "code-"+c, newSession("", time.Time{}))
		errs = append(errs, err)
		_, err = s.GetOpenIDConnectSession(ctx(t), "code-"+c, &fosite.Request{Session: newSession("", time.Time{})})
		errs = append(errs, err)
		_, err = s.GetPARSession(ctx(t), "urn:par:"+c)
		errs = append(errs, err)
		for i, err := range errs {
			what := []string{"access token", "refresh token", "authorize code", "PKCE", "OIDC", "PAR"}[i]
			if c == "gone" {
				requireNotFound(t, err, what+" of a deleted client")
			} else {
				require.NoErrorf(t, err, "%s of another client", what)
			}
		}
	}
}

func testClientAssertionJWT(t *testing.T, s storage.Store) {
	require.NoError(t, s.ClientAssertionJWTValid(ctx(t), "jti-1"), "an unknown JTI is valid")

	require.NoError(t, s.SetClientAssertionJWT(ctx(t), "jti-1", now().Add(time.Hour)))
	err := s.ClientAssertionJWTValid(ctx(t), "jti-1")
	require.Truef(t, errors.Is(err, fosite.ErrJTIKnown), "a used JTI: want ErrJTIKnown, got %v", err)
	require.NoError(t, s.ClientAssertionJWTValid(ctx(t), "jti-2"), "another JTI is still valid")

	// Setting a known, unexpired JTI is a replay: fosite's client
	// authentication checks, then sets, and two racing requests must not
	// both pass.
	err = s.SetClientAssertionJWT(ctx(t), "jti-1", now().Add(time.Hour))
	require.Truef(t, errors.Is(err, fosite.ErrJTIKnown), "SetClientAssertionJWT of a known JTI: want ErrJTIKnown, got %v", err)

	// An expired JTI can no longer be replayed (its assertion expired with
	// it), so it is valid again and may be set again.
	require.NoError(t, s.SetClientAssertionJWT(ctx(t), "jti-old", now().Add(-time.Minute)))
	require.NoError(t, s.ClientAssertionJWTValid(ctx(t), "jti-old"), "an expired JTI is valid")
	require.NoError(t, s.SetClientAssertionJWT(ctx(t), "jti-old", now().Add(time.Hour)), "an expired JTI may be set again")
	err = s.ClientAssertionJWTValid(ctx(t), "jti-old")
	require.Truef(t, errors.Is(err, fosite.ErrJTIKnown), "a re-set JTI: want ErrJTIKnown, got %v", err)
}

func testJWTBearerJTI(t *testing.T, s storage.Store) {
	used, err := s.IsJWTUsed(ctx(t), "bearer-1")
	require.NoError(t, err)
	require.False(t, used, "an unknown JTI is unused")

	require.NoError(t, s.MarkJWTUsedForTime(ctx(t), "bearer-1", now().Add(time.Hour)))
	used, err = s.IsJWTUsed(ctx(t), "bearer-1")
	require.NoError(t, err)
	require.True(t, used, "a marked JTI is used")
	used, err = s.IsJWTUsed(ctx(t), "bearer-2")
	require.NoError(t, err)
	require.False(t, used, "another JTI is still unused")

	require.NoError(t, s.MarkJWTUsedForTime(ctx(t), "bearer-old", now().Add(-time.Minute)))
	used, err = s.IsJWTUsed(ctx(t), "bearer-old")
	require.NoError(t, err)
	require.False(t, used, "a JTI marked until a past instant is no longer used")
}

func testUsers(t *testing.T, s storage.Store) {
	_, err := s.GetUser(ctx(t), "alice")
	requireNotFound(t, err, "GetUser unknown")
	requireNotFound(t, s.DeleteUser(ctx(t), "alice"), "DeleteUser unknown")
	list, err := s.ListUsers(ctx(t))
	require.NoError(t, err)
	require.Empty(t, list, "a fresh store has no users")

	t0 := now().Add(-time.Hour)
	alice := &storage.User{
		Username:      "alice",
		PasswordHash:  "$2a$10$IxMdI6d.LIRZPpSfEwNoeu4rY3FhDREsxFJXikcgdRRAStxUlsuEO",
		Email:         "alice@example.com",
		EmailVerified: true,
		Name:          "Alice Zoë 山田",
		Groups:        []string{"admins", "devs"},
		// JSON's own types, as a decoded config or API body has them.
		Claims: map[string]any{
			"department": "engineering",
			"level":      float64(3),
			"remote":     true,
			"tags":       []any{"a", "b"},
			"address":    map[string]any{"country": "NL"},
		},
		CreatedAt: t0,
		UpdatedAt: t0.Add(time.Minute),
	}
	require.NoError(t, s.UpsertUser(ctx(t), alice))
	got, err := s.GetUser(ctx(t), "alice")
	require.NoError(t, err)
	requireUser(t, alice, got)

	bob := &storage.User{Username: "bob", PasswordHash: "h", Groups: []string{}, Claims: map[string]any{}, CreatedAt: t0, UpdatedAt: t0}
	require.NoError(t, s.UpsertUser(ctx(t), bob))
	changed := *alice
	changed.Email = "alice@new.example.com"
	changed.EmailVerified = false
	changed.Groups = []string{"devs"}
	changed.Claims = map[string]any{"department": "sales"}
	changed.UpdatedAt = t0.Add(time.Hour)
	require.NoError(t, s.UpsertUser(ctx(t), &changed), "UpsertUser replaces")
	got, err = s.GetUser(ctx(t), "alice")
	require.NoError(t, err)
	requireUser(t, &changed, got)

	// Config seeding upserts users without timestamps on every start.
	seeded := &storage.User{Username: "alice", PasswordHash: "h2", Groups: []string{"devs"}, Claims: map[string]any{}}
	require.NoError(t, s.UpsertUser(ctx(t), seeded))
	got, err = s.GetUser(ctx(t), "alice")
	require.NoError(t, err)
	require.Equal(t, "h2", got.PasswordHash)
	require.Truef(t, seeded.CreatedAt.Equal(got.CreatedAt),
		"after UpsertUser the user handed in says CreatedAt %v, the stored one %v: a store that keeps CreatedAt itself must write it back into the struct",
		seeded.CreatedAt, got.CreatedAt)
	require.Truef(t, seeded.UpdatedAt.Equal(got.UpdatedAt), "UpdatedAt: handed in %v, stored %v", seeded.UpdatedAt, got.UpdatedAt)

	list, err = s.ListUsers(ctx(t))
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.Equal(t, "alice", list[0].Username, "ListUsers sorted by username")
	require.Equal(t, "bob", list[1].Username, "ListUsers sorted by username")

	require.NoError(t, s.DeleteUser(ctx(t), "alice"))
	_, err = s.GetUser(ctx(t), "alice")
	requireNotFound(t, err, "GetUser after DeleteUser")
	_, err = s.GetUser(ctx(t), "bob")
	require.NoError(t, err, "DeleteUser removes only that user")
}

func requireUser(t *testing.T, want, got *storage.User) {
	t.Helper()
	require.NotNil(t, got)
	require.Truef(t, want.CreatedAt.Equal(got.CreatedAt), "CreatedAt: want %v, got %v", want.CreatedAt, got.CreatedAt)
	require.Truef(t, want.UpdatedAt.Equal(got.UpdatedAt), "UpdatedAt: want %v, got %v", want.UpdatedAt, got.UpdatedAt)
	w, g := *want, *got
	w.CreatedAt, w.UpdatedAt, g.CreatedAt, g.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	require.Equal(t, w, g, "user fields")
}

func testPing(t *testing.T, s storage.Store) {
	require.NoError(t, s.Ping(ctx(t)))
}

// testClientUpsertConcurrent: instances seeding the same client into an
// empty database at once all succeed (on PostgreSQL an update finding no
// row and then an insert losing to another's used to fail).
func testClientUpsertConcurrent(t *testing.T, s storage.Store) {
	for round := range 5 {
		id := fmt.Sprintf("seeded-%d", round)
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.UpsertClient(ctx(t), testClient(id))
			}()
		}
		wg.Wait()
		for i, err := range errs {
			require.NoError(t, err, "upsert %d of %s", i, id)
		}
		_, err := s.GetClient(ctx(t), id)
		require.NoError(t, err)
	}
}
