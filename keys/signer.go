package keys

import (
	"context"
	"crypto"
	_ "crypto/sha256" // crypto.SHA256.New
	_ "crypto/sha512" // crypto.SHA384.New, crypto.SHA512.New
	"errors"
	"fmt"
	"strconv"

	"github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite/token/jwt"
)

// Signer returns a fosite jwt.Signer that signs with the current key, exactly
// as jwt.DefaultSigner{GetPrivateKey: m.GetPrivateKey} does, but verifies
// (Decode, Validate) with the published key whose kid matches the token
// header's kid, chosen from m.PublicKeys. So tokens signed by a retired key
// that is still published (ID tokens sent back as id_token_hint, JWT access
// tokens) keep verifying after Rotate, until publishFor has passed.
//
// A token without kid, with a kid that is not published, or whose header alg
// is not exactly the algorithm of the key its kid names is refused with a
// *jwt.ValidationError, as a bad signature is. A store failure is returned
// as is, as DefaultSigner returns a GetPrivateKey failure.
//
// Hash and GetSigningMethodLength follow the current key's algorithm by the
// rule fosite applies to at_hash and c_hash (SHA-384 for *384, SHA-512 for
// *512, SHA-256 otherwise): for RS256 and ES256 that is SHA-256, the same as
// DefaultSigner's.
func (m *Manager) Signer() jwt.Signer {
	return &signer{m: m, sign: jwt.DefaultSigner{GetPrivateKey: m.GetPrivateKey}}
}

type signer struct {
	m    *Manager
	sign jwt.DefaultSigner
}

var _ jwt.Signer = (*signer)(nil)

// Generate signs claims with the current key (DefaultSigner.Generate).
func (s *signer) Generate(ctx context.Context, claims jwt.MapClaims, header jwt.Mapper) (string, string, error) {
	return s.sign.Generate(ctx, claims, header)
}

// Validate verifies token as Decode does and returns its signature.
func (s *signer) Validate(ctx context.Context, token string) (string, error) {
	if _, err := s.Decode(ctx, token); err != nil {
		return "", err
	}
	return s.sign.GetSignature(ctx, token)
}

// Decode parses token and verifies it with the published key of its kid,
// then checks exp, iat and nbf (jwt.ParseWithClaims). Like
// DefaultSigner.Decode it returns the parsed token along with a
// *jwt.ValidationError, so callers can accept an expired but genuine token
// (fosite does for id_token_hint).
func (s *signer) Decode(ctx context.Context, token string) (*jwt.Token, error) {
	set, err := s.m.PublicKeys(ctx)
	if err != nil {
		return nil, err
	}
	return jwt.ParseWithClaims(token, jwt.MapClaims{}, func(t *jwt.Token) (interface{}, error) {
		return verificationKey(set, t)
	})
}

// verificationKey is the key of set that t's header names, or a
// *jwt.ValidationError.
func verificationKey(set *jose.JSONWebKeySet, t *jwt.Token) (interface{}, error) {
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return nil, &jwt.ValidationError{
			Errors: jwt.ValidationErrorUnverifiable,
			Inner:  errors.New("keys: token header has no kid"),
		}
	}
	matches := set.Key(kid)
	if len(matches) != 1 {
		return nil, &jwt.ValidationError{
			Errors: jwt.ValidationErrorUnverifiable,
			Inner:  fmt.Errorf("keys: token kid %q is not a published signing key", kid),
		}
	}
	k := matches[0]
	// go-jose would verify, say, a PS256 signature with an RS256 key:
	// the header's alg must be the key's own.
	if k.Algorithm == "" || string(t.Method) != k.Algorithm {
		return nil, &jwt.ValidationError{
			Errors: jwt.ValidationErrorSignatureInvalid,
			Inner:  fmt.Errorf("keys: token alg %q does not match key %q (%s)", t.Method, kid, k.Algorithm),
		}
	}
	if !k.IsPublic() || !k.Valid() {
		// PublicKeys publishes only public halves; never verify with
		// anything else (a symmetric key would accept HS* forgeries).
		return nil, &jwt.ValidationError{
			Errors: jwt.ValidationErrorUnverifiable,
			Inner:  fmt.Errorf("keys: key %q is not a public key", kid),
		}
	}
	return k.Key, nil
}

// GetSignature returns the signature part of token (DefaultSigner's).
func (s *signer) GetSignature(ctx context.Context, token string) (string, error) {
	return s.sign.GetSignature(ctx, token)
}

// Hash hashes in with the current key's hash function.
func (s *signer) Hash(ctx context.Context, in []byte) ([]byte, error) {
	h, err := s.currentHash(ctx)
	if err != nil {
		return nil, err
	}
	hh := h.New()
	_, _ = hh.Write(in) // hash.Hash.Write never fails
	return hh.Sum(nil), nil
}

// GetSigningMethodLength is the size of the current key's hash. The
// interface leaves no room for an error: when the key cannot be read it
// answers DefaultSigner's SHA-256 size (and Hash reports the error).
func (s *signer) GetSigningMethodLength(ctx context.Context) int {
	h, err := s.currentHash(ctx)
	if err != nil {
		return jwt.SHA256HashSize
	}
	return h.Size()
}

func (s *signer) currentHash(ctx context.Context) (crypto.Hash, error) {
	k, err := s.m.GetPrivateKey(ctx)
	if err != nil {
		return 0, err
	}
	jwk, ok := k.(*jose.JSONWebKey)
	if !ok {
		return 0, fmt.Errorf("keys: unexpected private key type %T", k)
	}
	return hashFor(jwk.Algorithm), nil
}

// hashFor is fosite's at_hash rule (openid.IDTokenHandleHelper.ComputeHash).
func hashFor(alg string) crypto.Hash {
	if len(alg) > 2 {
		switch size, _ := strconv.Atoi(alg[2:]); size {
		case 384:
			return crypto.SHA384
		case 512:
			return crypto.SHA512
		}
	}
	return crypto.SHA256
}
