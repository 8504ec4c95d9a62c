package secrets_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/latchauth/latch/secrets"
)

func cipherOf(t *testing.T, secret string) *secrets.Cipher {
	t.Helper()
	c, err := secrets.NewCipher([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const (
	secretA = "first-system-secret-of-32-bytes-or-more"
	secretB = "second-system-secret-of-32-bytes-or-more"
)

func TestSealOpenRoundTrip(t *testing.T) {
	c := cipherOf(t, secretA)
	plain := []byte(`{"kty":"EC","d":"private part"}`)
	sealed, err := c.Seal(plain, "signing_keys\x00k1")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "private part") || !strings.HasPrefix(sealed, "enc:v1:"+c.KeyID()+":") {
		t.Fatalf("sealed value %q", sealed)
	}
	if id, ok := secrets.Sealed(sealed); !ok || id != c.KeyID() {
		t.Fatalf("Sealed(%q) = %q, %v", sealed, id, ok)
	}
	// The same secret in another process derives the same key.
	got, err := cipherOf(t, secretA).Open(sealed, "signing_keys\x00k1")
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	again, _ := c.Seal(plain, "signing_keys\x00k1")
	if again == sealed {
		t.Fatal("two seals of one value are equal: the nonce is not fresh")
	}
}

func TestOpenTellsWrongSecretFromAlteredValue(t *testing.T) {
	a, b := cipherOf(t, secretA), cipherOf(t, secretB)
	if a.KeyID() == b.KeyID() {
		t.Fatal("two secrets share a key id")
	}
	sealed, _ := a.Seal([]byte("key material"), "signing_keys\x00k1")
	if _, err := b.Open(sealed, "signing_keys\x00k1"); !errors.Is(err, secrets.ErrWrongKey) {
		t.Fatalf("another secret: %v, want ErrWrongKey", err)
	}
	if _, err := a.Open(sealed, "signing_keys\x00k2"); !errors.Is(err, secrets.ErrAltered) {
		t.Fatalf("moved to another row: %v, want ErrAltered", err)
	}
	flipped := []byte(sealed)
	flipped[len(flipped)-3] ^= 1
	if _, err := a.Open(string(flipped), "signing_keys\x00k1"); !errors.Is(err, secrets.ErrAltered) {
		t.Fatalf("one character changed: %v, want ErrAltered", err)
	}
	if _, err := a.Open(sealed[:len(sealed)-40], "signing_keys\x00k1"); !errors.Is(err, secrets.ErrAltered) {
		t.Fatalf("truncated: %v, want ErrAltered", err)
	}
	// Another secret with a forged key id still does not open.
	forged := strings.Replace(sealed, a.KeyID(), b.KeyID(), 1)
	if _, err := b.Open(forged, "signing_keys\x00k1"); !errors.Is(err, secrets.ErrAltered) {
		t.Fatalf("forged key id: %v, want ErrAltered", err)
	}
}

func TestPlaintextIsNotSealed(t *testing.T) {
	for _, v := range []string{`{"kty":"RSA"}`, "c2VjcmV0", "", "enc:v1:", "enc:v2:id:body"} {
		if _, ok := secrets.Sealed(v); ok {
			t.Errorf("Sealed(%q) is true", v)
		}
		if _, err := cipherOf(t, secretA).Open(v, ""); err == nil {
			t.Errorf("Open(%q) succeeded", v)
		}
	}
}

func TestShortSecretRefused(t *testing.T) {
	if _, err := secrets.NewCipher([]byte("only-31-bytes-long-xxxxxxxxxxxx")); err == nil {
		t.Fatal("a 31-byte secret was accepted")
	}
}
