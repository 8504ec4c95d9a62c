package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/latchauth/latch/passhash"
	"github.com/latchauth/latch/storage"
)

// storedUser reads a user straight from the CLI's database.
func storedUser(t *testing.T, env map[string]string, username string) (*storage.User, error) {
	t.Helper()
	st, err := storage.Open(context.Background(), storage.Options{Driver: "sqlite", DSN: env["LATCH_DATABASE_DSN"]})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	return st.GetUser(t.Context(), username)
}

func TestUsersAddListSetPasswordDelete(t *testing.T) {
	env := cliDB(t)
	out := mustLatch(t, env, "correct horse battery staple\n", "users", "add", "--username", "alice",
		"--email", "alice@example.com", "--email-verified", "--name", "Alice Example", "--group", "admins", "--group", "dev ops")
	if out != "added user alice\n" {
		t.Fatalf("users add printed %q", out)
	}
	u, err := storedUser(t, env, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if passhash.Verify(u.PasswordHash, "correct horse battery staple") != nil || !strings.HasPrefix(u.PasswordHash, "$argon2id$") {
		t.Fatalf("the stored hash %q does not verify the password read from stdin", u.PasswordHash)
	}
	// Without a trailing newline, and with CRLF, the line is the password.
	mustLatch(t, env, "bob-password", "users", "add", "--username", "bob")
	mustLatch(t, env, "carol-password\r\n", "users", "add", "--username", "carol")
	for user, pw := range map[string]string{"bob": "bob-password", "carol": "carol-password"} {
		if u, err := storedUser(t, env, user); err != nil || passhash.Verify(u.PasswordHash, pw) != nil {
			t.Fatalf("%s's password was not read as one line (err %v)", user, err)
		}
	}

	t.Run("list as json", func(t *testing.T) {
		out := mustLatch(t, env, "", "users", "list", "--output", "json")
		if strings.Contains(out, "$argon2id$") || strings.Contains(out, "password") {
			t.Fatalf("users list shows a password hash:\n%s", out)
		}
		var got []map[string]any
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("users list --output json printed %q: %v", out, err)
		}
		if len(got) != 3 || got[0]["username"] != "alice" || got[0]["email"] != "alice@example.com" || got[0]["email_verified"] != true ||
			got[0]["name"] != "Alice Example" || fmt.Sprint(got[0]["groups"]) != "[admins dev ops]" || fmt.Sprint(got[1]["groups"]) != "[]" {
			t.Fatalf("users list --output json: %v", got)
		}
	})
	t.Run("list as table", func(t *testing.T) {
		lines := strings.Split(strings.TrimSpace(mustLatch(t, env, "", "users", "list")), "\n")
		if len(lines) != 4 || !strings.HasPrefix(lines[0], "USERNAME  NAME") {
			t.Fatalf("users list:\n%s", strings.Join(lines, "\n"))
		}
		col := strings.Index(lines[0], "EMAIL")
		if !strings.HasPrefix(lines[1], "alice     Alice Example") || !strings.HasPrefix(lines[1][col:], "alice@example.com") ||
			!strings.Contains(lines[1], "admins,dev ops") {
			t.Fatalf("users list row:\n%s", strings.Join(lines, "\n"))
		}
	})

	t.Run("set-password", func(t *testing.T) {
		if out := mustLatch(t, env, "a new password\n", "users", "set-password", "alice"); out != "changed the password of user alice\n" {
			t.Fatalf("set-password printed %q", out)
		}
		u, err := storedUser(t, env, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if passhash.Verify(u.PasswordHash, "a new password") != nil || passhash.Verify(u.PasswordHash, "correct horse battery staple") == nil {
			t.Fatal("set-password did not replace the password")
		}
		if u.Email != "alice@example.com" || len(u.Groups) != 2 {
			t.Fatalf("set-password changed the profile: %+v", u)
		}
	})

	t.Run("delete", func(t *testing.T) {
		if out := mustLatch(t, env, "", "users", "delete", "bob"); out != "deleted user bob and revoked their tokens, sessions and consents\n" {
			t.Fatalf("users delete printed %q", out)
		}
		if _, err := storedUser(t, env, "bob"); err == nil {
			t.Fatal("bob is still stored")
		}
	})
}

func TestUsersErrors(t *testing.T) {
	env := cliDB(t)
	mustLatch(t, env, "alice-password\n", "users", "add", "--username", "alice")
	cases := []struct {
		name, stdin string
		args        []string
		want        string
	}{
		{"add without username", "pw\n", []string{"users", "add"}, "--username is required"},
		{"add an existing user", "pw\n", []string{"users", "add", "--username", "alice"}, `user "alice" already exists`},
		{"empty password", "\n", []string{"users", "add", "--username", "bob"}, "password for bob must not be empty"},
		{"no input at all", "", []string{"users", "add", "--username", "bob"}, "password for bob must not be empty"},
		{"password as a flag", "", []string{"users", "add", "--username", "bob", "--password", "pw"}, "unknown flag: --password"},
		{"set-password of an unknown user", "pw\n", []string{"users", "set-password", "nobody"}, `user "nobody" not found`},
		{"set-password to empty", "\n", []string{"users", "set-password", "alice"}, "must not be empty"},
		{"delete an unknown user", "", []string{"users", "delete", "nobody"}, `user "nobody" not found`},
		{"delete without username", "", []string{"users", "delete"}, "give one username: latch users delete USERNAME"},
		{"unknown output", "", []string{"users", "list", "-o", "xml"}, `--output must be table or json, not "xml"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := latch(t, env, tc.stdin, tc.args...)
			if err == nil {
				t.Fatalf("succeeded; printed:\n%s", out)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
	// The failures changed nothing: alice keeps her password, bob was not added.
	u, err := storedUser(t, env, "alice")
	if err != nil || passhash.Verify(u.PasswordHash, "alice-password") != nil {
		t.Fatalf("alice changed (err %v)", err)
	}
	if _, err := storedUser(t, env, "bob"); err == nil {
		t.Fatal("bob was added by a failed command")
	}
}

// TestUsersAddRefusesClientID: a user may not take a client's id as its
// name, since that client's client_credentials tokens have it as subject.
func TestUsersAddRefusesClientID(t *testing.T) {
	env := cliDB(t)
	mustLatch(t, env, "", "clients", "create", "--id", "svc")
	_, _, err := latch(t, env, "svc-password\n", "users", "add", "--username", "svc")
	if err == nil || !strings.Contains(err.Error(), "a username may not be a client id") {
		t.Fatalf("users add --username svc: %v, want a refusal", err)
	}
	if _, err := storedUser(t, env, "svc"); err == nil {
		t.Fatal("the user was added")
	}
}
