package main

import (
	"database/sql"
	"strings"
	"testing"
)

// storedJWTSecret is a client's jwt_secret column as a copy of the
// database shows it.
func storedJWTSecret(t *testing.T, env map[string]string, id string) string {
	t.Helper()
	db, err := sql.Open("sqlite3", env["LATCH_DATABASE_DSN"])
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v string
	if err := db.QueryRow("SELECT jwt_secret FROM clients WHERE id = ?", id).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestClientsCreateSecretJWT: `clients create --token-endpoint-auth-method
// client_secret_jwt` prints the secret once and keeps it sealed under
// secrets.system; rotate-secret replaces the sealed copy, and `secrets
// rotate` re-seals it under the new system secret.
func TestClientsCreateSecretJWT(t *testing.T) {
	env := cliDB(t)
	a, b := withSecret(env, systemSecretA), withSecret(env, systemSecretB)
	out := mustLatch(t, a, "", "clients", "create", "--id", "hmac", "--grant-type", "client_credentials",
		"--scope", "read", "--token-endpoint-auth-method", "client_secret_jwt")
	secret := createdSecret(t, out)
	if len(secret) != 64 {
		t.Fatalf("generated secret %q: want 64 characters", secret)
	}
	stored := storedJWTSecret(t, env, "hmac")
	if !strings.HasPrefix(stored, "enc:v1:") || strings.Contains(stored, secret) {
		t.Fatalf("jwt_secret stored as %.40q: want it sealed", stored)
	}
	if got := getClientJSON(t, a, "hmac"); got["token_endpoint_auth_method"] != "client_secret_jwt" || strings.Contains(mustLatch(t, a, "", "clients", "get", "hmac", "--output", "json"), secret) {
		t.Fatalf("clients get: %v (must never show the secret)", got)
	}

	out = mustLatch(t, a, "", "clients", "rotate-secret", "hmac")
	rotated := strings.TrimSpace(strings.SplitN(strings.TrimPrefix(out, "new secret of client hmac: "), "\n", 2)[0])
	if rotated == secret || len(rotated) != 64 {
		t.Fatalf("rotate-secret printed %q", out)
	}
	if storedJWTSecret(t, env, "hmac") == stored {
		t.Fatal("rotate-secret left the sealed copy as it was")
	}

	out = mustLatch(t, b, "", "secrets", "rotate", "--old", systemSecretA)
	if !strings.HasPrefix(out, "re-encrypted 1 values") {
		t.Fatalf("secrets rotate printed %q, want the client secret re-encrypted (nothing else is sealed yet)", out)
	}
	if _, _, err := latch(t, a, "", "clients", "get", "hmac"); err == nil {
		t.Fatal("the old system secret still opens the client secret")
	}
	if got := getClientJSON(t, b, "hmac"); got["client_id"] != "hmac" {
		t.Fatalf("clients get with the new secret: %v", got)
	}
}
