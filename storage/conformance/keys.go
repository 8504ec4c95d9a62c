package conformance

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/storage"
)

// keyTests cover signing keys, the system secret and RFC 7523 issuers.
func keyTests() []subtest {
	return []subtest{
		{"SigningKeys", testSigningKeys},
		{"SigningKeyDuplicate", testSigningKeyDuplicate},
		{"SystemSecret", testSystemSecret},
		{"SystemSecretRace", testSystemSecretRace},
		{"TrustedIssuer", testTrustedIssuer},
		{"TrustedIssuerAnySubject", testTrustedIssuerAnySubject},
	}
}

// rsaKey makes an RS256 key pair with kid; the public half is what a JWKS
// publishes.
func rsaKey(t *testing.T, kid string) (private, public jose.JSONWebKey) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	private = jose.JSONWebKey{Key: k, KeyID: kid, Algorithm: string(jose.RS256), Use: "sig"}
	return private, private.Public()
}

func ecKey(t *testing.T, kid string) (private, public jose.JSONWebKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	private = jose.JSONWebKey{Key: k, KeyID: kid, Algorithm: string(jose.ES256), Use: "sig"}
	return private, private.Public()
}

func signingKey(t *testing.T, kid string, createdAt time.Time) *storage.SigningKey {
	t.Helper()
	priv, _ := ecKey(t, kid)
	raw, err := priv.MarshalJSON()
	require.NoError(t, err)
	return &storage.SigningKey{KID: kid, Algorithm: "ES256", PrivateJWK: raw, CreatedAt: createdAt}
}

func kids(keys []*storage.SigningKey) []string {
	out := []string{}
	for _, k := range keys {
		out = append(out, k.KID)
	}
	return out
}

func requireTimePtr(t *testing.T, want, got *time.Time, what string) {
	t.Helper()
	if want == nil {
		require.Nilf(t, got, "%s: want unset", what)
		return
	}
	require.NotNilf(t, got, "%s: want %v, got unset", what, *want)
	require.Truef(t, want.Equal(*got), "%s: want %v, got %v", what, *want, *got)
}

func testSigningKeys(t *testing.T, s storage.Store) {
	t0 := now()
	keys, err := s.ListSigningKeys(ctx(t), t0)
	require.NoError(t, err)
	require.Empty(t, keys, "a fresh store has no signing keys")

	// "old" was retired before this test and is published for three more
	// hours; "mid" and "new" still sign.
	old := signingKey(t, "old", t0.Add(-72*time.Hour))
	oldRetired, oldExpires := t0.Add(-time.Hour), t0.Add(3*time.Hour)
	old.RetiredAt, old.ExpiresAt = &oldRetired, &oldExpires
	mid := signingKey(t, "mid", t0.Add(-48*time.Hour))
	newest := signingKey(t, "new", t0.Add(-24*time.Hour))
	for _, k := range []*storage.SigningKey{mid, old, newest} {
		require.NoError(t, s.CreateSigningKey(ctx(t), k))
	}

	keys, err = s.ListSigningKeys(ctx(t), t0)
	require.NoError(t, err)
	require.Equal(t, []string{"new", "mid", "old"}, kids(keys), "ListSigningKeys newest first")
	for i, want := range []*storage.SigningKey{newest, mid, old} {
		got := keys[i]
		require.Equal(t, want.Algorithm, got.Algorithm, "algorithm of %s", want.KID)
		require.JSONEq(t, string(want.PrivateJWK), string(got.PrivateJWK), "private JWK of %s", want.KID)
		require.Truef(t, want.CreatedAt.Equal(got.CreatedAt), "CreatedAt of %s: want %v, got %v", want.KID, want.CreatedAt, got.CreatedAt)
		requireTimePtr(t, want.RetiredAt, got.RetiredAt, "RetiredAt of "+want.KID)
		requireTimePtr(t, want.ExpiresAt, got.ExpiresAt, "ExpiresAt of "+want.KID)
	}

	// Rotation: every signing key is retired now and published one more
	// hour; the already retired one keeps its own dates.
	retiredAt, expiresAt := t0, t0.Add(time.Hour)
	require.NoError(t, s.RetireSigningKeys(ctx(t), retiredAt, expiresAt))
	successor := signingKey(t, "successor", t0)
	require.NoError(t, s.CreateSigningKey(ctx(t), successor))

	keys, err = s.ListSigningKeys(ctx(t), t0)
	require.NoError(t, err)
	require.Equal(t, []string{"successor", "new", "mid", "old"}, kids(keys), "retired keys stay published until they expire")
	byKID := map[string]*storage.SigningKey{}
	for _, k := range keys {
		byKID[k.KID] = k
	}
	for _, kid := range []string{"new", "mid"} {
		requireTimePtr(t, &retiredAt, byKID[kid].RetiredAt, "RetiredAt of "+kid)
		requireTimePtr(t, &expiresAt, byKID[kid].ExpiresAt, "ExpiresAt of "+kid)
	}
	requireTimePtr(t, &oldRetired, byKID["old"].RetiredAt, "RetireSigningKeys must not touch the already retired key")
	requireTimePtr(t, &oldExpires, byKID["old"].ExpiresAt, "RetireSigningKeys must not touch the already retired key")
	requireTimePtr(t, nil, byKID["successor"].RetiredAt, "RetiredAt of the successor")

	keys, err = s.ListSigningKeys(ctx(t), t0.Add(2*time.Hour))
	require.NoError(t, err)
	require.Equal(t, []string{"successor", "old"}, kids(keys), "two hours on, the keys retired now are past their expiry")
	keys, err = s.ListSigningKeys(ctx(t), t0.Add(4*time.Hour))
	require.NoError(t, err)
	require.Equal(t, []string{"successor"}, kids(keys), "four hours on, only the unretired key is left")
}

func testSigningKeyDuplicate(t *testing.T, s storage.Store) {
	require.NoError(t, s.CreateSigningKey(ctx(t), signingKey(t, "k", now())))
	err := s.CreateSigningKey(ctx(t), signingKey(t, "k", now()))
	require.Truef(t, errors.Is(err, storage.ErrAlreadyExists), "CreateSigningKey with a used KID: want ErrAlreadyExists, got %v", err)
	keys, err := s.ListSigningKeys(ctx(t), now())
	require.NoError(t, err)
	require.Len(t, keys, 1)
}

func testSystemSecret(t *testing.T, s storage.Store) {
	first := bytes.Repeat([]byte{0xA1}, 32)
	got, err := s.SystemSecret(ctx(t), first)
	require.NoError(t, err)
	require.Equal(t, first, got, "the first call stores its candidate")

	got, err = s.SystemSecret(ctx(t), bytes.Repeat([]byte{0xB2}, 32))
	require.NoError(t, err)
	require.Equal(t, first, got, "a later call gets the stored secret, not its candidate")
}

func testSystemSecretRace(t *testing.T, s storage.Store) {
	const n = 8
	results := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			candidate := bytes.Repeat([]byte{byte(i + 1)}, 32)
			results[i], errs[i] = s.SystemSecret(ctx(t), candidate)
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		require.NoErrorf(t, errs[i], "SystemSecret in goroutine %d", i)
		require.Lenf(t, results[i], 32, "secret of goroutine %d", i)
		require.Equalf(t, results[0], results[i], "goroutine %d got another secret than goroutine 0", i)
	}
	stored, err := s.SystemSecret(ctx(t), []byte("late-candidate-late-candidate-xx"))
	require.NoError(t, err)
	require.Equal(t, results[0], stored, "the racers' secret is the stored one")
}

func jwks(t *testing.T, keys ...jose.JSONWebKey) []byte {
	t.Helper()
	raw, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	require.NoError(t, err)
	return raw
}

func requirePublicKey(t *testing.T, want jose.JSONWebKey, got *jose.JSONWebKey) {
	t.Helper()
	require.NotNil(t, got)
	require.Equal(t, want.KeyID, got.KeyID)
	require.True(t, got.IsPublic(), "a trusted issuer's key is public")
	w, err := want.MarshalJSON()
	require.NoError(t, err)
	g, err := got.MarshalJSON()
	require.NoError(t, err)
	require.JSONEq(t, string(w), string(g), "key %s", want.KeyID)
}

func testTrustedIssuer(t *testing.T, s storage.Store) {
	_, k1 := rsaKey(t, "k1")
	_, k2 := ecKey(t, "k2")
	const iss, sub = "https://ci.example.com", "deploy-bot"
	require.NoError(t, s.UpsertTrustedIssuer(ctx(t), storage.TrustedIssuer{
		Issuer: iss, Subject: sub, Scopes: []string{"deploy", "read"}, JWKS: jwks(t, k1, k2),
	}))

	got, err := s.GetPublicKey(ctx(t), iss, sub, "k1")
	require.NoError(t, err)
	requirePublicKey(t, k1, got)
	set, err := s.GetPublicKeys(ctx(t), iss, sub)
	require.NoError(t, err)
	require.Len(t, set.Keys, 2)
	require.Len(t, set.Key("k1"), 1, "the set holds k1")
	require.Len(t, set.Key("k2"), 1, "the set holds k2")
	scopes, err := s.GetPublicKeyScopes(ctx(t), iss, sub, "k2")
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"deploy", "read"}, scopes)

	for _, c := range []struct{ iss, sub, kid string }{
		{"https://other.example.com", sub, "k1"},
		{iss, "someone-else", "k1"},
		{iss, sub, "k3"},
	} {
		what := fmt.Sprintf("issuer %q subject %q kid %q", c.iss, c.sub, c.kid)
		_, err := s.GetPublicKey(ctx(t), c.iss, c.sub, c.kid)
		requireNotFound(t, err, "GetPublicKey of "+what)
		_, err = s.GetPublicKeyScopes(ctx(t), c.iss, c.sub, c.kid)
		requireNotFound(t, err, "GetPublicKeyScopes of "+what)
		if c.kid == "k1" {
			_, err = s.GetPublicKeys(ctx(t), c.iss, c.sub)
			requireNotFound(t, err, "GetPublicKeys of "+what)
		}
	}

	// An upsert of the same issuer and subject replaces keys and scopes.
	_, k3 := rsaKey(t, "k3")
	require.NoError(t, s.UpsertTrustedIssuer(ctx(t), storage.TrustedIssuer{
		Issuer: iss, Subject: sub, Scopes: []string{"deploy"}, JWKS: jwks(t, k3),
	}))
	_, err = s.GetPublicKey(ctx(t), iss, sub, "k1")
	requireNotFound(t, err, "GetPublicKey of a key the upsert removed")
	got, err = s.GetPublicKey(ctx(t), iss, sub, "k3")
	require.NoError(t, err)
	requirePublicKey(t, k3, got)
	scopes, err = s.GetPublicKeyScopes(ctx(t), iss, sub, "k3")
	require.NoError(t, err)
	require.Equal(t, []string{"deploy"}, scopes)
}

func testTrustedIssuerAnySubject(t *testing.T, s storage.Store) {
	_, k1 := rsaKey(t, "k1")
	const iss = "https://any.example.com"
	require.NoError(t, s.UpsertTrustedIssuer(ctx(t), storage.TrustedIssuer{
		Issuer: iss, AllowAnySubject: true, Scopes: []string{"read"}, JWKS: jwks(t, k1),
	}))
	for _, sub := range []string{"alice", "bob", "svc:robot"} {
		got, err := s.GetPublicKey(ctx(t), iss, sub, "k1")
		require.NoErrorf(t, err, "GetPublicKey for subject %q of an issuer that allows any subject", sub)
		requirePublicKey(t, k1, got)
		set, err := s.GetPublicKeys(ctx(t), iss, sub)
		require.NoErrorf(t, err, "GetPublicKeys for subject %q", sub)
		require.Len(t, set.Keys, 1)
		scopes, err := s.GetPublicKeyScopes(ctx(t), iss, sub, "k1")
		require.NoErrorf(t, err, "GetPublicKeyScopes for subject %q", sub)
		require.Equal(t, []string{"read"}, scopes)
	}
	_, err := s.GetPublicKey(ctx(t), iss, "alice", "nope")
	requireNotFound(t, err, "GetPublicKey of an unknown kid of an any-subject issuer")
	_, err = s.GetPublicKey(ctx(t), "https://other.example.com", "alice", "k1")
	requireNotFound(t, err, "AllowAnySubject of one issuer says nothing of another")
}
