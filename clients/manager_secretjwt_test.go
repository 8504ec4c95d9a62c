package clients_test

import (
	"context"
	"testing"

	"github.com/latchauth/latch/clients"
)

// TestManagerSecretJWT: a client_secret_jwt client keeps its clear secret
// (to verify MACs) through create, rotation and updates, and loses it when
// it leaves the method.
func TestManagerSecretJWT(t *testing.T) {
	ctx := context.Background()
	m, _ := newManager(t)
	c := confidentialClient()
	c.TokenEndpointAuthMethod = clients.AuthMethodSecretJWT
	secret := mustCreate(t, m, c, "")
	if len(secret) != 64 {
		t.Fatalf("generated client_secret_jwt secret %q: want 64 characters (48 random bytes, a key for HS512)", secret)
	}
	if got := mustGet(t, m, "backend"); got.JWTSecret != secret || !verifies(t, m, "backend", secret) {
		t.Fatalf("stored: JWTSecret %q, hash verifies %v", got.JWTSecret, verifies(t, m, "backend", secret))
	}

	rotated, err := m.RotateSecret(ctx, "backend")
	if err != nil {
		t.Fatalf("RotateSecret: %v", err)
	}
	if got := mustGet(t, m, "backend"); got.JWTSecret != rotated || rotated == secret {
		t.Fatalf("after rotation JWTSecret = %q, want the new secret %q", got.JWTSecret, rotated)
	}

	// An update that says nothing of the secret keeps it.
	upd := confidentialClient()
	upd.TokenEndpointAuthMethod = clients.AuthMethodSecretJWT
	upd.Name, upd.SecretHash = "renamed", ""
	if err := m.Update(ctx, upd); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if got := mustGet(t, m, "backend"); got.JWTSecret != rotated {
		t.Fatalf("after update JWTSecret = %q, want it kept", got.JWTSecret)
	}

	// Leaving the method drops the clear copy; coming back needs a new secret.
	upd.TokenEndpointAuthMethod = clients.AuthMethodBasic
	if err := m.Update(ctx, upd); err != nil {
		t.Fatalf("Update to basic: %v", err)
	}
	back := mustGet(t, m, "backend")
	if back.JWTSecret != "" || !verifies(t, m, "backend", rotated) {
		t.Fatalf("after moving to basic: JWTSecret %q (want none), the hash still verifies: %v", back.JWTSecret, verifies(t, m, "backend", rotated))
	}
	back.TokenEndpointAuthMethod = clients.AuthMethodSecretJWT
	if err := m.Update(ctx, back); err == nil {
		t.Fatal("a client moved back to client_secret_jwt with only a hash was accepted")
	}
	if !clients.NeedsNewSecret(back) {
		t.Fatal("NeedsNewSecret is false for a client_secret_jwt client without its secret")
	}

	short := confidentialClient()
	short.ID, short.TokenEndpointAuthMethod = "short", clients.AuthMethodSecretJWT
	if _, err := m.Create(ctx, short, "a-chosen-secret"); err == nil {
		t.Fatal("a client_secret_jwt client with a 15-byte secret was accepted")
	}
}
