package main

import (
	"database/sql"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const (
	systemSecretA = "system-secret-A-of-at-least-32-bytes-0123"
	systemSecretB = "system-secret-B-of-at-least-32-bytes-4567"
)

// withSecret is env with LATCH_SECRETS_SYSTEM set to secret ("" unsets it).
func withSecret(env map[string]string, secret string) map[string]string {
	out := maps.Clone(env)
	delete(out, "LATCH_SECRETS_SYSTEM")
	if secret != "" {
		out["LATCH_SECRETS_SYSTEM"] = secret
	}
	return out
}

// storedPrivateJWKs reads the signing keys as a copy of the database shows
// them to whoever holds it.
func storedPrivateJWKs(t *testing.T, env map[string]string) []string {
	t.Helper()
	db, err := sql.Open("sqlite3", env["LATCH_DATABASE_DSN"])
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT private_jwk FROM signing_keys")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// onlyKID is the kid of the one signing key `keys list` shows.
func onlyKID(t *testing.T, env map[string]string) string {
	t.Helper()
	keys := listKeys(t, env)
	if len(keys) != 1 {
		t.Fatalf("keys list: %+v, want one key", keys)
	}
	return keys[0].KID
}

func TestServeWithWrongSystemSecretFailsClearlyWithoutNewKey(t *testing.T) {
	env := cliDB(t)
	a := withSecret(env, systemSecretA)
	mustLatch(t, a, "", "keys", "rotate")
	kid := onlyKID(t, a)
	stored := storedPrivateJWKs(t, env)

	for name, e := range map[string]map[string]string{
		"another secret": withSecret(env, systemSecretB),
		"no secret":      env,
	} {
		_, _, err := latch(t, e, "", "serve", "--listen", "127.0.0.1:0")
		if err == nil {
			t.Fatalf("%s: serve started", name)
		}
		if !strings.Contains(err.Error(), "signing key "+kid+" is encrypted under a system secret with key id") {
			t.Fatalf("%s: serve failed with %q, which does not say why", name, err)
		}
	}
	if got := storedPrivateJWKs(t, env); !slices.Equal(got, stored) {
		t.Fatal("a failed start changed or added signing keys")
	}
	if onlyKID(t, a) != kid {
		t.Fatal("the right secret no longer reads the key")
	}
}

var reencryptedLine = regexp.MustCompile(`^re-encrypted (\d+) values`)

func TestSecretsRotateRoundTrip(t *testing.T) {
	env := cliDB(t)
	a, b := withSecret(env, systemSecretA), withSecret(env, systemSecretB)
	mustLatch(t, a, "", "keys", "rotate")
	kid := onlyKID(t, a)

	out := mustLatch(t, b, "", "secrets", "rotate", "--old", systemSecretA)
	if m := reencryptedLine.FindStringSubmatch(out); m == nil || m[1] != "1" {
		t.Fatalf("secrets rotate printed %q, want one value re-encrypted", out)
	}
	if onlyKID(t, b) != kid {
		t.Fatal("the key changed in the rotation")
	}
	if _, _, err := latch(t, a, "", "keys", "list"); err == nil {
		t.Fatal("the old secret still reads the keys")
	}
	issuer, _ := startServe(t, b, "--listen", "127.0.0.1:0")
	if kids := publishedKIDs(t, issuer); !slices.Equal(kids, []string{kid}) {
		t.Fatalf("after the rotation the server publishes %v, want [%s]", kids, kid)
	}

	// Back, with the old secret on standard input rather than a flag.
	out = mustLatch(t, a, systemSecretB+"\n", "secrets", "rotate")
	if m := reencryptedLine.FindStringSubmatch(out); m == nil || m[1] != "1" {
		t.Fatalf("secrets rotate printed %q, want one value re-encrypted", out)
	}
	if onlyKID(t, a) != kid {
		t.Fatal("the key changed in the second rotation")
	}
}

func TestSecretsRotateRefusesBadInput(t *testing.T) {
	env := cliDB(t)
	a := withSecret(env, systemSecretA)
	mustLatch(t, a, "", "keys", "rotate")
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no new secret", env, []string{"--old", systemSecretA}, "secrets.system is not set"},
		{"old is the new", a, []string{"--old", systemSecretA}, "the old secret is the configured one"},
		{"old too short", a, []string{"--old", "short"}, "at least 32 bytes"},
		{"old is not the secret of the keys", withSecret(env, systemSecretB), []string{"--old", "some-other-secret-of-at-least-32-bytes"}, "is encrypted under a system secret with key id"},
	} {
		_, _, err := latch(t, tc.env, "", append([]string{"secrets", "rotate"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	onlyKID(t, a) // still readable under A: nothing changed
}

// TestServeEncryptsPlaintextDatabaseOnFirstStartWithSecret: a database of
// a Latch run without secrets.system keeps its keys, now encrypted, when
// the secret is configured; and only a server without it warns.
func TestServeEncryptsPlaintextDatabaseOnFirstStartWithSecret(t *testing.T) {
	env := cliDB(t)
	var kid string
	t.Run("without secret", func(t *testing.T) {
		issuer, _, logs := startServeLogs(t, env, "--listen", "127.0.0.1:0")
		kid = publishedKIDs(t, issuer)[0]
		if !strings.Contains(logs.String(), "secrets.system is not set") {
			t.Fatalf("no warning without secrets.system:\n%s", logs)
		}
	})
	if stored := storedPrivateJWKs(t, env); len(stored) != 1 || !strings.Contains(stored[0], `"d":`) {
		t.Fatalf("without a secret the key should lie in clear, got %v", stored)
	}
	t.Run("with secret", func(t *testing.T) {
		issuer, _, logs := startServeLogs(t, withSecret(env, systemSecretA), "--listen", "127.0.0.1:0")
		if kids := publishedKIDs(t, issuer); !slices.Equal(kids, []string{kid}) {
			t.Fatalf("after the upgrade the server publishes %v, want the old key %s", kids, kid)
		}
		if strings.Contains(logs.String(), "secrets.system is not set") {
			t.Fatalf("warned although secrets.system is set:\n%s", logs)
		}
	})
	stored := storedPrivateJWKs(t, env)
	if len(stored) != 1 || strings.Contains(stored[0], `"d"`) || !strings.HasPrefix(stored[0], "enc:v1:") {
		t.Fatalf("after a start with secrets.system the key is stored as %.60q", stored)
	}
}
