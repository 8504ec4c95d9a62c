// Package secrets encrypts what Latch keeps at rest (private signing keys
// today; second-factor seeds and upstream connector secrets are meant to
// follow) under a key-encryption key derived from secrets.system, which is
// never stored in the database. A copy of the database alone then yields
// no usable key material.
//
// A sealed value is one printable string:
//
//	enc:v1:<key id>:<base64url(nonce || AES-256-GCM ciphertext)>
//
// The version names the algorithm, so it can change without guessing; the
// key id names the secret a value was sealed under, so a wrong secret is
// told apart from a damaged value, and rotation knows which rows still
// need re-encrypting. The caller passes associated data naming where the
// value is stored (table and row id): GCM authenticates it, so a value
// copied into another row does not open.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// MinSecretLen is the shortest system secret accepted: 256 bits when it
// is random, as config.yaml asks.
const MinSecretLen = 32

const (
	prefix = "enc:v1:"
	// HKDF info strings: the key and its id come from one secret but are
	// independent, so publishing the id says nothing about the key.
	infoKey = "latch secrets v1 key-encryption key"
	infoID  = "latch secrets v1 key id"
)

// ErrWrongKey: the value was sealed under another secret than this
// Cipher's (the key ids differ).
var ErrWrongKey = errors.New("secrets: sealed under a different secret")

// ErrAltered: the key id matches but the value does not authenticate: it
// was altered, truncated, or copied from another row.
var ErrAltered = errors.New("secrets: sealed value does not authenticate (altered, or moved from another row)")

// Cipher seals and opens values under the key-encryption key of one
// system secret. It is safe for concurrent use.
type Cipher struct {
	id   string
	aead cipher.AEAD
}

// NewCipher derives the key-encryption key (HKDF-SHA256, RFC 5869) and its
// key id from secret, which must be at least MinSecretLen bytes.
func NewCipher(secret []byte) (*Cipher, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("secrets: the system secret must be at least %d bytes, got %d", MinSecretLen, len(secret))
	}
	// No salt: the secret is high-entropy key material, for which RFC 5869
	// §3.1 says a salt adds nothing essential; a stored salt would be one
	// more thing to lose.
	key, err := hkdf.Key(sha256.New, secret, nil, infoKey, 32)
	if err != nil {
		return nil, fmt.Errorf("secrets: derive key: %w", err)
	}
	id, err := hkdf.Key(sha256.New, secret, nil, infoID, 8)
	if err != nil {
		return nil, fmt.Errorf("secrets: derive key id: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	return &Cipher{id: base64.RawURLEncoding.EncodeToString(id), aead: aead}, nil
}

// KeyID names the secret without revealing it, for error messages and
// logs.
func (c *Cipher) KeyID() string { return c.id }

// Seal encrypts plaintext bound to ad, which names where the value is
// stored. Each call draws a fresh random 96-bit nonce: with one key and a
// handful of values per rotation, the birthday bound of 2^32 messages is
// never approached.
func (c *Cipher) Seal(plaintext []byte, ad string) (string, error) {
	nonce := make([]byte, c.aead.NonceSize(), c.aead.NonceSize()+len(plaintext)+c.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("secrets: nonce: %w", err)
	}
	sealed := c.aead.Seal(nonce, nonce, plaintext, []byte(ad))
	return prefix + c.id + ":" + base64.RawURLEncoding.EncodeToString(sealed), nil
}

// Open decrypts a value Seal made with the same secret and ad. It returns
// ErrWrongKey when another secret sealed it and ErrAltered when it does
// not authenticate; a value that is not sealed at all is an error too.
func (c *Cipher) Open(sealed, ad string) ([]byte, error) {
	id, body, ok := parse(sealed)
	if !ok {
		return nil, errors.New("secrets: not a sealed value")
	}
	if id != c.id {
		return nil, fmt.Errorf("%w (sealed under key id %s, this secret is %s)", ErrWrongKey, id, c.id)
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil || len(raw) < c.aead.NonceSize()+c.aead.Overhead() {
		return nil, ErrAltered
	}
	n := c.aead.NonceSize()
	plain, err := c.aead.Open(nil, raw[:n], raw[n:], []byte(ad))
	if err != nil {
		return nil, ErrAltered
	}
	return plain, nil
}

// Sealed reports whether v is a sealed value, and the key id of the secret
// it was sealed under. Stored plaintext (a JSON key, base64) never starts
// with the prefix, so rows written before encryption are told apart.
func Sealed(v string) (keyID string, ok bool) {
	id, _, ok := parse(v)
	return id, ok
}

func parse(v string) (id, body string, ok bool) {
	rest, ok := strings.CutPrefix(v, prefix)
	if !ok {
		return "", "", false
	}
	id, body, ok = strings.Cut(rest, ":")
	return id, body, ok && id != ""
}
