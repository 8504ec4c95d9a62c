package keys_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite/token/jwt"
	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/storage"
)

// idClaims is an ID token's claims. fosite checks exp, iat and nbf against
// the real time (jwt.TimeFunc), not the Manager's clock.
func idClaims(exp time.Time) jwt.MapClaims {
	now := time.Now().UTC()
	c := &jwt.IDTokenClaims{
		JTI:         "jti-1",
		Issuer:      "https://issuer.example",
		Subject:     "alice",
		Audience:    []string{"client-1"},
		Nonce:       "n-0S6_WzA2Mj",
		ExpiresAt:   exp,
		IssuedAt:    now,
		RequestedAt: now,
		AuthTime:    now,
	}
	return c.ToMapClaims()
}

// headerKID is the kid in token's header ("" when none).
func headerKID(t *testing.T, token string) string {
	t.Helper()
	jws, err := jose.ParseSigned(token)
	require.NoError(t, err)
	require.Len(t, jws.Signatures, 1)
	return jws.Signatures[0].Protected.KeyID
}

// requireDecodes checks that s accepts token through both Decode and
// Validate.
func requireDecodes(t *testing.T, s jwt.Signer, token string) {
	t.Helper()
	ctx := context.Background()
	tok, err := s.Decode(ctx, token)
	require.NoError(t, err)
	require.True(t, tok.Valid())
	require.Equal(t, "alice", tok.Claims["sub"])
	sig, err := s.Validate(ctx, token)
	require.NoError(t, err)
	wantSig, err := s.GetSignature(ctx, token)
	require.NoError(t, err)
	require.Equal(t, wantSig, sig)
}

// requireRefused checks that s refuses token through both Decode and
// Validate, as a bad signature (never as a mere expiry, which fosite
// tolerates for id_token_hint).
func requireRefused(t *testing.T, s jwt.Signer, token string) {
	t.Helper()
	ctx := context.Background()
	tok, err := s.Decode(ctx, token)
	require.Error(t, err)
	require.True(t, tok == nil || !tok.Valid())
	var ve *jwt.ValidationError
	require.Truef(t, errors.As(err, &ve), "want a *jwt.ValidationError, got %T: %v", err, err)
	require.False(t, ve.Has(jwt.ValidationErrorExpired), "refused as expired: %v", err)
	sig, err := s.Validate(ctx, token)
	require.Error(t, err)
	require.Empty(t, sig)
}

// TestSignerVerifiesRetiredKey is the reason for Signer: after Rotate, a
// token of the retired key still verifies while the key is published.
func TestSignerVerifiesRetiredKey(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			ctx := context.Background()
			clk := newClock()
			m := newManager(t, openStore(t, dbPath(t)), alg, clk)
			require.NoError(t, m.Ensure(ctx))
			s := m.Signer()
			oldKID := currentKID(t, m)

			oldToken, oldSig, err := s.Generate(ctx, idClaims(time.Now().Add(24*time.Hour)), &jwt.Headers{})
			require.NoError(t, err)
			require.Equal(t, oldKID, headerKID(t, oldToken), "signed with the current key, kid in the header")
			gotSig, err := s.GetSignature(ctx, oldToken)
			require.NoError(t, err)
			require.Equal(t, oldSig, gotSig)
			requireDecodes(t, s, oldToken)
			// A genuine but expired token of the retired key is reported
			// as expired only, with its claims: fosite accepts that as
			// id_token_hint.
			expired, _, err := s.Generate(ctx, idClaims(time.Now().Add(-time.Hour)), &jwt.Headers{})
			require.NoError(t, err)

			clk.Advance(time.Second)
			require.NoError(t, m.Rotate(ctx, time.Hour))
			newKID := currentKID(t, m)
			require.NotEqual(t, oldKID, newKID)

			// The problem Signer solves: DefaultSigner checks the current
			// key only.
			def := &jwt.DefaultSigner{GetPrivateKey: m.GetPrivateKey}
			_, err = def.Decode(ctx, oldToken)
			require.Error(t, err)

			requireDecodes(t, s, oldToken)
			// The Signer signs with the new key at once.
			newToken, _, err := s.Generate(ctx, idClaims(time.Now().Add(24*time.Hour)), &jwt.Headers{})
			require.NoError(t, err)
			require.Equal(t, newKID, headerKID(t, newToken))
			requireDecodes(t, s, newToken)
			// And signs the same way DefaultSigner does.
			_, err = def.Validate(ctx, newToken)
			require.NoError(t, err)

			tok, err := s.Decode(ctx, expired)
			var ve *jwt.ValidationError
			require.True(t, errors.As(err, &ve), "%v", err)
			require.Equal(t, jwt.ValidationErrorExpired, ve.Errors)
			require.NotNil(t, tok)
			require.Equal(t, "alice", tok.Claims["sub"])
			sig, err := s.Validate(ctx, expired)
			require.Error(t, err)
			require.Empty(t, sig)

			// Still published just before publishFor ends, through
			// several cache refreshes.
			clk.Advance(59 * time.Minute)
			requireDecodes(t, s, oldToken)

			// Past publishFor and past the 5 s cache: refused, while the
			// current key's tokens still verify.
			clk.Advance(time.Minute + 6*time.Second)
			require.Equal(t, []string{newKID}, publishedKIDs(t, m))
			requireRefused(t, s, oldToken)
			// Even expired: an unpublished key's token is not "merely
			// expired".
			requireRefused(t, s, expired)
			requireDecodes(t, s, newToken)
		})
	}
}

// TestSignerZeroPublish: a key rotated away with publishFor 0 (compromised)
// no longer verifies anything.
func TestSignerZeroPublish(t *testing.T) {
	ctx := context.Background()
	m := newManager(t, openStore(t, dbPath(t)), "ES256", newClock())
	require.NoError(t, m.Ensure(ctx))
	s := m.Signer()
	token, _, err := s.Generate(ctx, idClaims(time.Now().Add(time.Hour)), &jwt.Headers{})
	require.NoError(t, err)
	requireDecodes(t, s, token)
	require.NoError(t, m.Rotate(ctx, 0))
	requireRefused(t, s, token)
}

// TestSignerRefuses: tokens that do not name a published key by kid, or
// whose alg is not that key's, are refused even when their signature is
// made by one of the Manager's private keys.
func TestSignerRefuses(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			ctx := context.Background()
			clk := newClock()
			m := newManager(t, openStore(t, dbPath(t)), alg, clk)
			require.NoError(t, m.Ensure(ctx))
			s := m.Signer()
			k, err := m.GetPrivateKey(ctx)
			require.NoError(t, err)
			priv := k.(*jose.JSONWebKey)
			kid := priv.KeyID
			claims := idClaims(time.Now().Add(time.Hour))

			// The control: the same claims signed normally verify.
			good, _, err := s.Generate(ctx, claims, &jwt.Headers{})
			require.NoError(t, err)
			requireDecodes(t, s, good)

			t.Run("unknown kid, real key", func(t *testing.T) {
				token, _, err := s.Generate(ctx, claims, &jwt.Headers{Extra: map[string]interface{}{"kid": "unknown"}})
				require.NoError(t, err)
				require.Equal(t, "unknown", headerKID(t, token))
				requireRefused(t, s, token)
			})

			t.Run("foreign key with its own kid", func(t *testing.T) {
				foreign, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				require.NoError(t, err)
				token := jwsToken(t, jose.ES256, foreign, "foreign", claims)
				requireRefused(t, s, token)
			})

			t.Run("foreign key with the published kid", func(t *testing.T) {
				foreign, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				require.NoError(t, err)
				token := jwsToken(t, jose.ES256, foreign, kid, claims)
				requireRefused(t, s, token)
			})

			t.Run("missing kid, real key", func(t *testing.T) {
				raw := &jwt.DefaultSigner{GetPrivateKey: func(context.Context) (interface{}, error) {
					return priv.Key, nil // a bare key: no kid in the header
				}}
				token, _, err := raw.Generate(ctx, claims, &jwt.Headers{})
				require.NoError(t, err)
				require.Empty(t, headerKID(t, token))
				requireRefused(t, s, token)
			})

			t.Run("HS256 keyed with the public key", func(t *testing.T) {
				pub := priv.Public()
				secret, err := json.Marshal(&pub)
				require.NoError(t, err)
				token := jwsToken(t, jose.HS256, secret, kid, claims)
				requireRefused(t, s, token)
			})

			t.Run("alg none", func(t *testing.T) {
				token := unsignedToken(t, map[string]any{"alg": "none", "typ": "JWT", "kid": kid}, claims)
				requireRefused(t, s, token)
			})

			t.Run("alg swapped in a signed token's header", func(t *testing.T) {
				// Re-label the genuine token's header: the signature no
				// longer covers it.
				parts := splitToken(t, good)
				other := "ES256"
				if alg == "ES256" {
					other = "RS256"
				}
				hdr, err := json.Marshal(map[string]any{"alg": other, "typ": "JWT", "kid": kid})
				require.NoError(t, err)
				requireRefused(t, s, base64.RawURLEncoding.EncodeToString(hdr)+"."+parts[1]+"."+parts[2])
			})

			if alg == "RS256" {
				t.Run("PS256 by the real RSA key", func(t *testing.T) {
					// go-jose alone would accept this signature with the
					// published RS256 key: only the alg check refuses it.
					token := jwsToken(t, jose.PS256, priv.Key, kid, claims)
					jws, err := jose.ParseSigned(token)
					require.NoError(t, err)
					set, err := m.PublicKeys(ctx)
					require.NoError(t, err)
					_, err = jws.Verify(set.Key(kid)[0].Key)
					require.NoError(t, err, "the signature itself is good")
					requireRefused(t, s, token)
				})
			}

			t.Run("malformed", func(t *testing.T) {
				for _, tok := range []string{"", " ", "foo.bar", "foo.", ".foo", "a.b.c"} {
					_, err := s.Decode(ctx, tok)
					require.Error(t, err, "%q", tok)
					sig, err := s.Validate(ctx, tok)
					require.Error(t, err, "%q", tok)
					require.Empty(t, sig)
				}
			})
		})
	}
}

// TestSignerAcrossInstances: another instance verifies the tokens of both
// keys once its cache has caught up with the rotation (at most 5 s).
func TestSignerAcrossInstances(t *testing.T) {
	ctx := context.Background()
	path, clk := dbPath(t), newClock()
	a := newManager(t, openStore(t, path), "ES256", clk)
	b := newManager(t, openStore(t, path), "ES256", clk)
	require.NoError(t, a.Ensure(ctx))
	sa, sb := a.Signer(), b.Signer()
	exp := time.Now().Add(24 * time.Hour)
	oldToken, _, err := sa.Generate(ctx, idClaims(exp), &jwt.Headers{})
	require.NoError(t, err)
	requireDecodes(t, sb, oldToken) // B reads the store now

	require.NoError(t, a.Rotate(ctx, time.Hour))
	newToken, _, err := sa.Generate(ctx, idClaims(exp), &jwt.Headers{})
	require.NoError(t, err)
	// Within its cache lifetime B does not know the new kid yet.
	requireRefused(t, sb, newToken)
	requireDecodes(t, sb, oldToken)

	clk.Advance(5 * time.Second)
	requireDecodes(t, sb, newToken)
	requireDecodes(t, sb, oldToken)
}

// TestSignerHash: Hash and GetSigningMethodLength are DefaultSigner's for
// the Manager's algorithms (SHA-256 for RS256 and ES256).
func TestSignerHash(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			ctx := context.Background()
			clk := newClock()
			m := newManager(t, openStore(t, dbPath(t)), alg, clk)
			require.NoError(t, m.Ensure(ctx))
			s := m.Signer()
			def := &jwt.DefaultSigner{GetPrivateKey: m.GetPrivateKey}
			for _, in := range [][]byte{nil, []byte("access-token.abc"), make([]byte, 1000)} {
				want, err := def.Hash(ctx, in)
				require.NoError(t, err)
				got, err := s.Hash(ctx, in)
				require.NoError(t, err)
				require.Equal(t, want, got)
			}
			require.Equal(t, def.GetSigningMethodLength(ctx), s.GetSigningMethodLength(ctx))
			require.Equal(t, jwt.SHA256HashSize, s.GetSigningMethodLength(ctx))

			require.NoError(t, m.Rotate(ctx, time.Hour))
			got, err := s.Hash(ctx, []byte("x"))
			require.NoError(t, err)
			want, err := def.Hash(ctx, []byte("x"))
			require.NoError(t, err)
			require.Equal(t, want, got)
		})
	}
}

// TestSignerStoreDown: a store failure is reported as such, not as a bad
// token.
func TestSignerStoreDown(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	st := openStore(t, dbPath(t))
	m := newManager(t, st, "ES256", clk)
	require.NoError(t, m.Ensure(ctx))
	s := m.Signer()
	token, _, err := s.Generate(ctx, idClaims(time.Now().Add(time.Hour)), &jwt.Headers{})
	require.NoError(t, err)
	require.NoError(t, st.Close())
	clk.Advance(5 * time.Second) // the cache expires

	_, err = s.Decode(ctx, token)
	require.ErrorIs(t, err, storage.ErrUnavailable)
	var ve *jwt.ValidationError
	require.False(t, errors.As(err, &ve))
	_, err = s.Validate(ctx, token)
	require.ErrorIs(t, err, storage.ErrUnavailable)
	_, _, err = s.Generate(ctx, idClaims(time.Now().Add(time.Hour)), &jwt.Headers{})
	require.ErrorIs(t, err, storage.ErrUnavailable)
	_, err = s.Hash(ctx, []byte("x"))
	require.ErrorIs(t, err, storage.ErrUnavailable)
	require.Equal(t, jwt.SHA256HashSize, s.GetSigningMethodLength(ctx))
}

// jwsToken signs claims with key under alg, with kid in the header.
func jwsToken(t *testing.T, alg jose.SignatureAlgorithm, key interface{}, kid string, claims jwt.MapClaims) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid)
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	require.NoError(t, err)
	payload, err := json.Marshal(map[string]interface{}(claims))
	require.NoError(t, err)
	jws, err := sig.Sign(payload)
	require.NoError(t, err)
	token, err := jws.CompactSerialize()
	require.NoError(t, err)
	return token
}

func unsignedToken(t *testing.T, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	h, err := json.Marshal(header)
	require.NoError(t, err)
	c, err := json.Marshal(map[string]interface{}(claims))
	require.NoError(t, err)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "."
}

func splitToken(t *testing.T, token string) []string {
	t.Helper()
	parts := strings.Split(token, ".")
	require.Len(t, parts, 3)
	return parts
}
