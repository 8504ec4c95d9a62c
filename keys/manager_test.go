package keys_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite/token/jwt"
	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/keys"
	"github.com/latchauth/latch/storage"
)

// clock is the injected time, moved by hand; safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// openStore opens (and migrates) the SQLite file path; each call is a
// separate store, as a separate instance or a restart would have.
func openStore(t testing.TB, path string) *storage.GormStore {
	t.Helper()
	ctx := context.Background()
	st, err := storage.Open(ctx, storage.Options{Driver: "sqlite", DSN: path})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	require.NoError(t, st.Migrate(ctx))
	return st
}

func dbPath(t testing.TB) string { return filepath.Join(t.TempDir(), "k.db") }

func newManager(t testing.TB, st storage.KeyStore, alg string, c *clock) *keys.Manager {
	t.Helper()
	m, err := keys.NewManager(st, alg, c.Now)
	require.NoError(t, err)
	return m
}

// currentKID is the kid GetPrivateKey answers, checked to be a complete
// private signing key.
func currentKID(t *testing.T, m *keys.Manager) string {
	t.Helper()
	k, err := m.GetPrivateKey(context.Background())
	require.NoError(t, err)
	jwk, ok := k.(*jose.JSONWebKey)
	require.Truef(t, ok, "GetPrivateKey returned %T", k)
	require.NotEmpty(t, jwk.KeyID)
	require.Equal(t, "sig", jwk.Use)
	require.False(t, jwk.IsPublic(), "the signing key must be private")
	return jwk.KeyID
}

func publishedKIDs(t *testing.T, m *keys.Manager) []string {
	t.Helper()
	set, err := m.PublicKeys(context.Background())
	require.NoError(t, err)
	out := []string{}
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	return out
}

// sign issues a JWT the way fosite does for ID tokens and JWT access tokens.
func sign(t *testing.T, m *keys.Manager) string {
	t.Helper()
	signer := &jwt.DefaultSigner{GetPrivateKey: m.GetPrivateKey}
	token, _, err := signer.Generate(context.Background(), jwt.MapClaims{"sub": "alice", "iss": "https://issuer.example"}, &jwt.Headers{})
	require.NoError(t, err)
	return token
}

// verify checks token against the published key of its kid, as a relying
// party does, and returns that kid.
func verify(t *testing.T, m *keys.Manager, token, wantAlg string) string {
	t.Helper()
	jws, err := jose.ParseSigned(token)
	require.NoError(t, err)
	require.Len(t, jws.Signatures, 1)
	h := jws.Signatures[0].Protected
	require.Equal(t, wantAlg, h.Algorithm)
	require.NotEmpty(t, h.KeyID, "the JWT header must carry the kid")
	require.Equal(t, "JWT", h.ExtraHeaders["typ"])

	set, err := m.PublicKeys(context.Background())
	require.NoError(t, err)
	matches := set.Key(h.KeyID)
	require.Lenf(t, matches, 1, "kid %s published once", h.KeyID)
	require.Equal(t, wantAlg, matches[0].Algorithm)
	payload, err := jws.Verify(matches[0])
	require.NoError(t, err)
	var claims map[string]any
	require.NoError(t, json.Unmarshal(payload, &claims))
	require.Equal(t, "alice", claims["sub"])
	return h.KeyID
}

func TestNewManager(t *testing.T) {
	st := openStore(t, dbPath(t))
	for _, tc := range []struct {
		alg     string
		wantErr bool
	}{
		{"", false},
		{"RS256", false},
		{"ES256", false},
		{"rs256", true},
		{"HS256", true},
		{"PS256", true},
		{"EdDSA", true},
		{"none", true},
	} {
		t.Run("alg="+tc.alg, func(t *testing.T) {
			m, err := keys.NewManager(st, tc.alg, nil)
			if tc.wantErr {
				require.Error(t, err)
				require.Nil(t, m)
				return
			}
			require.NoError(t, err)
			require.NotNil(t, m)
		})
	}
	t.Run("nil store", func(t *testing.T) {
		_, err := keys.NewManager(nil, "RS256", nil)
		require.Error(t, err)
	})
}

func TestEnsure(t *testing.T) {
	for _, tc := range []struct {
		alg, wantAlg string
	}{
		{"", "RS256"},
		{"ES256", "ES256"},
	} {
		t.Run("alg="+tc.wantAlg, func(t *testing.T) {
			ctx := context.Background()
			path, clk := dbPath(t), newClock()
			st := openStore(t, path)
			m := newManager(t, st, tc.alg, clk)

			_, err := m.GetPrivateKey(ctx)
			require.Error(t, err, "no key before Ensure")

			require.NoError(t, m.Ensure(ctx))
			stored, err := st.ListSigningKeys(ctx, clk.Now())
			require.NoError(t, err)
			require.Len(t, stored, 1)
			require.Equal(t, tc.wantAlg, stored[0].Algorithm)
			require.Nil(t, stored[0].RetiredAt)
			require.True(t, clk.Now().Equal(stored[0].CreatedAt), "created by the injected clock")
			kid := currentKID(t, m)
			require.Equal(t, stored[0].KID, kid)

			clk.Advance(time.Minute)
			require.NoError(t, m.Ensure(ctx), "idempotent")
			stored, err = st.ListSigningKeys(ctx, clk.Now())
			require.NoError(t, err)
			require.Len(t, stored, 1)
			require.Equal(t, kid, currentKID(t, m))

			// A restart, or another instance: a new store and Manager on
			// the same database sign with the same key.
			m2 := newManager(t, openStore(t, path), tc.alg, clk)
			require.NoError(t, m2.Ensure(ctx))
			require.Equal(t, kid, currentKID(t, m2))
			stored, err = st.ListSigningKeys(ctx, clk.Now())
			require.NoError(t, err)
			require.Len(t, stored, 1)
		})
	}
}

// TestEnsureRace starts several instances on one database at once: each
// must come up with a key, and all must agree on which one signs.
func TestEnsureRace(t *testing.T) {
	ctx := context.Background()
	path, clk := dbPath(t), newClock()
	ms := make([]*keys.Manager, 4)
	for i := range ms {
		ms[i] = newManager(t, openStore(t, path), "ES256", clk)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(ms))
	for i, m := range ms {
		wg.Go(func() { errs[i] = m.Ensure(ctx) })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	kid := currentKID(t, ms[0])
	for _, m := range ms[1:] {
		require.Equal(t, kid, currentKID(t, m))
	}
	// On SQLite the check is repeated inside an IMMEDIATE transaction, so
	// the race yields exactly one key (PostgreSQL may yield several, which
	// is fine: the newest signs).
	stored, err := ms[0].PublicKeys(ctx)
	require.NoError(t, err)
	require.Len(t, stored.Keys, 1)
}

func TestSignAndVerify(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			ctx := context.Background()
			m := newManager(t, openStore(t, dbPath(t)), alg, newClock())
			require.NoError(t, m.Ensure(ctx))
			token := sign(t, m)
			require.Equal(t, currentKID(t, m), verify(t, m, token, alg))

			// fosite's own check of its tokens (JWT access token
			// introspection, id_token_hint) uses the same key.
			signer := &jwt.DefaultSigner{GetPrivateKey: m.GetPrivateKey}
			_, err := signer.Validate(ctx, token)
			require.NoError(t, err)
		})
	}
}

func TestPublicKeysHaveNoPrivatePart(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			ctx := context.Background()
			clk := newClock()
			m := newManager(t, openStore(t, dbPath(t)), alg, clk)
			require.NoError(t, m.Ensure(ctx))
			require.NoError(t, m.Rotate(ctx, time.Hour)) // a retired key too

			set, err := m.PublicKeys(ctx)
			require.NoError(t, err)
			require.Len(t, set.Keys, 2)
			raw, err := json.Marshal(set)
			require.NoError(t, err)
			var doc struct {
				Keys []map[string]any `json:"keys"`
			}
			require.NoError(t, json.Unmarshal(raw, &doc))
			require.Len(t, doc.Keys, 2)
			for _, k := range doc.Keys {
				for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
					require.NotContainsf(t, k, private, "published key %v has private member %q", k["kid"], private)
				}
				require.Equal(t, "sig", k["use"])
				require.Equal(t, alg, k["alg"])
				require.NotEmpty(t, k["kid"])
			}
		})
	}
}

func TestRotate(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			ctx := context.Background()
			clk := newClock()
			st := openStore(t, dbPath(t))
			m := newManager(t, st, alg, clk)
			require.NoError(t, m.Ensure(ctx))
			oldKID := currentKID(t, m)
			oldToken := sign(t, m)

			clk.Advance(time.Second)
			require.NoError(t, m.Rotate(ctx, time.Hour))
			newKID := currentKID(t, m)
			require.NotEqual(t, oldKID, newKID, "the new key signs at once on the rotating instance")
			require.Equal(t, newKID, verify(t, m, sign(t, m), alg))
			require.Equal(t, []string{newKID, oldKID}, publishedKIDs(t, m), "newest first")
			require.Equal(t, oldKID, verify(t, m, oldToken, alg), "tokens of the retired key still verify")

			stored, err := st.ListSigningKeys(ctx, clk.Now())
			require.NoError(t, err)
			require.Len(t, stored, 2)
			require.NotNil(t, stored[1].RetiredAt)
			require.NotNil(t, stored[1].ExpiresAt)

			for _, step := range []struct {
				advance time.Duration
				want    []string
			}{
				{59 * time.Minute, []string{newKID, oldKID}},
				{time.Minute - time.Millisecond, []string{newKID, oldKID}},
				{time.Millisecond, []string{newKID}}, // publishFor has passed
				{time.Hour, []string{newKID}},
			} {
				clk.Advance(step.advance)
				require.Equal(t, step.want, publishedKIDs(t, m), "at %s", clk.Now())
				require.Equal(t, newKID, currentKID(t, m))
			}

			require.Error(t, m.Rotate(ctx, -time.Second), "negative publishFor")
			require.Equal(t, newKID, currentKID(t, m))
		})
	}
}

// TestRotateZeroPublish: rotating a compromised key with publishFor 0
// unpublishes it at once.
func TestRotateZeroPublish(t *testing.T) {
	ctx := context.Background()
	m := newManager(t, openStore(t, dbPath(t)), "ES256", newClock())
	require.NoError(t, m.Ensure(ctx))
	require.NoError(t, m.Rotate(ctx, 0))
	require.Equal(t, []string{currentKID(t, m)}, publishedKIDs(t, m))
}
