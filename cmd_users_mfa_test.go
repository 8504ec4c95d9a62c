package main

import (
	"context"
	"strings"
	"testing"

	"github.com/latchauth/latch/storage"
)

// enrolTOTP gives username a confirmed TOTP straight in the CLI's database.
func enrolTOTP(t *testing.T, env map[string]string, username string) {
	t.Helper()
	st, err := storage.Open(context.Background(), storage.Options{Driver: "sqlite", DSN: env["LATCH_DATABASE_DSN"]})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.SaveTOTPEnrolment(t.Context(), username, "JBSWY3DPEHPK3PXP"); err != nil {
		t.Fatal(err)
	}
	pending, err := st.GetTOTP(t.Context(), username)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.UseTOTPStep(t.Context(), pending, 1, true); err != nil {
		t.Fatal(err)
	}
}

// TestUsersListShowsAndMFAResetRemovesSecondFactors covers `latch users
// list` (table and JSON) and `latch users mfa reset --username`.
func TestUsersListShowsAndMFAResetRemovesSecondFactors(t *testing.T) {
	env := cliDB(t)
	mustLatch(t, env, "alice-password\n", "users", "add", "--username", "alice")
	mustLatch(t, env, "bob-password\n", "users", "add", "--username", "bob")
	enrolTOTP(t, env, "alice")

	table := mustLatch(t, env, "", "users", "list")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	col := strings.Index(lines[0], "MFA")
	if col < 0 || !strings.HasPrefix(lines[1][col:], "totp") || !strings.HasPrefix(lines[2][col:], "-") {
		t.Fatalf("users list does not show the second factors:\n%s", table)
	}
	if out := mustLatch(t, env, "", "users", "list", "--output", "json"); !strings.Contains(out, `"second_factors": [
      "totp"
    ]`) {
		t.Fatalf("users list --output json:\n%s", out)
	}

	if out := mustLatch(t, env, "", "users", "mfa", "reset", "--username", "alice"); out != "removed the second factors and recovery codes of user alice\n" {
		t.Fatalf("mfa reset printed %q", out)
	}
	if out := mustLatch(t, env, "", "users", "mfa", "reset", "--username", "alice"); out != "user alice has no second factor\n" {
		t.Fatalf("a second mfa reset printed %q", out)
	}
	if _, _, err := latch(t, env, "", "users", "mfa", "reset", "--username", "nobody"); err == nil || !strings.Contains(err.Error(), `user "nobody" not found`) {
		t.Fatalf("mfa reset of an unknown user: %v", err)
	}
	if _, _, err := latch(t, env, "", "users", "mfa", "reset"); err == nil || !strings.Contains(err.Error(), "--username") {
		t.Fatalf("mfa reset without --username: %v", err)
	}
}
