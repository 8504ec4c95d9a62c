package clients

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
)

// client_secret_jwt (RFC 7523 §2.2, OIDC Core §9) needs the secret itself
// on the server: the client MACs its assertion with it, and a hash cannot
// verify a MAC. So a client_secret_jwt client keeps, besides its hash, the
// clear secret in JWTSecret, which the store seals under secrets.system
// like a signing key. No other method keeps it.

// MinJWTSecretLen is the shortest secret of a client_secret_jwt client,
// in bytes: RFC 7518 §3.2 wants an HMAC key at least as long as the hash
// output, 32 bytes for HS256. HS384 and HS512 need 48 and 64 bytes, which
// the assertion check asks of the secret in use (JWTSecretFits).
const MinJWTSecretLen = 32

// jwtSecretBytes is the randomness of a generated client_secret_jwt
// secret: 48 bytes, 64 base64url characters, long enough a key for HS512.
const jwtSecretBytes = 48

// NeedsSecret reports whether a client with this token endpoint auth
// method authenticates with a secret.
func NeedsSecret(method string) bool {
	return method == AuthMethodBasic || method == AuthMethodPost || method == AuthMethodSecretJWT
}

// NeedsNewSecret reports whether c, changed to its current method, lacks
// the secret that method needs: a public client made confidential, or a
// client moved to client_secret_jwt whose secret is kept only as a hash.
func NeedsNewSecret(c *Client) bool {
	method := c.GetTokenEndpointAuthMethod()
	return NeedsSecret(method) && (c.SecretHash == "" || method == AuthMethodSecretJWT && c.JWTSecret == "")
}

// SetSecret gives c the secret clear, stored as hash; a client_secret_jwt
// client also keeps clear, for the store to seal.
func (c *Client) SetSecret(clear, hash string) {
	c.SecretHash, c.JWTSecret = hash, ""
	if c.GetTokenEndpointAuthMethod() == AuthMethodSecretJWT {
		c.JWTSecret = clear
	}
}

// NewSecret gives c a new generated secret, hashed as generated secrets
// are, and returns it to show once. A client_secret_jwt client's is longer
// (see jwtSecretBytes).
func NewSecret(c *Client) (string, error) {
	secret, err := GenerateSecret()
	if c.GetTokenEndpointAuthMethod() == AuthMethodSecretJWT {
		b := make([]byte, jwtSecretBytes)
		if _, err = rand.Read(b); err != nil {
			return "", fmt.Errorf("clients: generate secret: %w", err)
		}
		secret = base64.RawURLEncoding.EncodeToString(b)
	}
	if err != nil {
		return "", err
	}
	c.SetSecret(secret, HashGenerated(secret))
	return secret, nil
}

// JWTSecretFits reports whether secret is long enough a key for the HMAC
// algorithm alg (HS256, HS384 or HS512) by RFC 7518 §3.2.
func JWTSecretFits(secret, alg string) bool {
	need := map[string]int{"HS256": 32, "HS384": 48, "HS512": 64}[alg]
	return need > 0 && len(secret) >= need
}
