package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch/storage"
)

// sessionsDB is a CLI database with users alice and bob, each signed in
// in two browsers.
func sessionsDB(t *testing.T) (map[string]string, *storage.GormStore) {
	t.Helper()
	env := cliDB(t)
	mustLatch(t, env, "", "migrate")
	st, err := storage.Open(t.Context(), storage.Options{Driver: "sqlite", DSN: env["LATCH_DATABASE_DSN"]})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	now := time.Now().UTC()
	for _, name := range []string{"alice", "bob"} {
		mustLatch(t, env, name+"-password\n", "users", "add", "--username", name)
		for _, id := range []string{name + "-browser-1", name + "-browser-2"} {
			if err := st.CreateLoginSession(t.Context(), &storage.LoginSession{ID: id, Username: name, AuthTime: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return env, st
}

// requireSessions checks which of the sessions sessionsDB made still hold.
func requireSessions(t *testing.T, st *storage.GormStore, want map[string]bool) {
	t.Helper()
	for id, live := range want {
		_, err := st.GetLoginSession(t.Context(), id)
		if got := err == nil; got != live || (err != nil && !errors.Is(err, storage.ErrNotFound)) {
			t.Errorf("session %s: live %v (%v), want %v", id, got, err, live)
		}
	}
}

func TestSessionsListAndRevokeOneUser(t *testing.T) {
	env, st := sessionsDB(t)
	var listed []sessionView
	if err := json.Unmarshal([]byte(mustLatch(t, env, "", "sessions", "list", "--subject", "bob", "-o", "json")), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 2 || listed[0].Subject != "bob" || len(listed[0].ID) != 64 {
		t.Fatalf("bob's sessions: %+v", listed)
	}
	table := mustLatch(t, env, "", "sessions", "list", "--all")
	if lines := strings.Split(strings.TrimSpace(table), "\n"); len(lines) != 5 || !strings.HasPrefix(lines[0], "SUBJECT") {
		t.Fatalf("every session, a header and four rows:\n%s", table)
	}

	if out := mustLatch(t, env, "", "sessions", "revoke", "--subject", "bob"); out != "ended 2 login sessions of subject bob\n" {
		t.Fatalf("revoke printed %q", out)
	}
	requireSessions(t, st, map[string]bool{"bob-browser-1": false, "bob-browser-2": false, "alice-browser-1": true})

	if out := mustLatch(t, env, "", "sessions", "revoke", "--all"); out != "ended 2 login sessions of every user\n" {
		t.Fatalf("revoke --all printed %q", out)
	}
	requireSessions(t, st, map[string]bool{"alice-browser-1": false, "alice-browser-2": false})
}

func TestSessionsCommandErrors(t *testing.T) {
	env, _ := sessionsDB(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"sessions", "list"}, "give exactly one of --subject USERNAME or --all"},
		{[]string{"sessions", "revoke", "--subject", "bob", "--all"}, "give exactly one of --subject USERNAME or --all"},
		{[]string{"sessions", "revoke", "--subject", "nobody"}, `user "nobody" not found`},
		{[]string{"sessions", "list", "--subject", "nobody"}, `user "nobody" not found`},
	} {
		if out, _, err := latch(t, env, "", tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("latch %s: %v (printed %q), want an error with %q", strings.Join(tc.args, " "), err, out, tc.want)
		}
	}
}

func TestSetPasswordEndsTheUsersSessions(t *testing.T) {
	env, st := sessionsDB(t)
	mustLatch(t, env, "new-bob-password\n", "users", "set-password", "bob")
	requireSessions(t, st, map[string]bool{"bob-browser-1": false, "bob-browser-2": false, "alice-browser-1": true})
}

func TestTokensRevokeSubjectEndsItsSessions(t *testing.T) {
	env, st := sessionsDB(t)
	out := mustLatch(t, env, "", "tokens", "revoke", "--subject", "alice")
	if out != "revoked 0 grants of subject alice\nended 2 login sessions of subject alice\n" {
		t.Fatalf("tokens revoke printed %q", out)
	}
	requireSessions(t, st, map[string]bool{"alice-browser-1": false, "bob-browser-1": true})
}
