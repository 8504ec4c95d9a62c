package users_test

import (
	"errors"
	"testing"
	"time"

	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/storage"
	"github.com/latchauth/latch/users"
)

// clock is a test clock; the test goroutine alone moves it.
type clock struct{ t time.Time }

func newClock() *clock                   { return &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)} }
func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func seeded(t *testing.T, list ...config.User) *storage.GormStore {
	t.Helper()
	st, _ := newStore(t)
	if err := users.Seed(t.Context(), st, list); err != nil {
		t.Fatal(err)
	}
	return st
}

func aliceUser() config.User {
	return config.User{Username: "alice", Password: "alice-password", Email: "alice@example.com"}
}

func bobUser() config.User { return config.User{Username: "bob", Password: "bob-password"} }

func TestAuthenticate(t *testing.T) {
	st := seeded(t, aliceUser(), bobUser())
	a := &users.Authenticator{Store: st}
	tests := []struct {
		name, user, password string
		wantErr              error
	}{
		{"right password", "alice", "alice-password", nil},
		{"wrong password", "alice", "bob-password", users.ErrInvalidCredentials},
		{"empty password", "alice", "", users.ErrInvalidCredentials},
		{"unknown user", "mallory", "alice-password", users.ErrInvalidCredentials},
		{"empty username", "", "alice-password", users.ErrInvalidCredentials},
		{"case differs", "Alice", "alice-password", users.ErrInvalidCredentials},
		{"trailing space", "alice ", "alice-password", users.ErrInvalidCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := a.Authenticate(t.Context(), tt.user, tt.password, "192.0.2.1:5555")
			if err != tt.wantErr { // the same value, not merely errors.Is
				t.Fatalf("Authenticate = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && (u == nil || u.Username != tt.user || u.Email != "alice@example.com") {
				t.Fatalf("user = %+v", u)
			}
			if tt.wantErr != nil && u != nil {
				t.Fatalf("user %+v returned with an error", u)
			}
		})
	}
}

// TestAuthenticateUnknownUserTakesTime: an unknown user costs a password
// check too. Without the dummy check it would be a hundred times faster, so
// a loose bound is enough and not flaky.
func TestAuthenticateUnknownUserTakesTime(t *testing.T) {
	st := seeded(t, aliceUser())
	a := &users.Authenticator{Store: st}
	measure := func(user string) time.Duration {
		best := time.Duration(1<<63 - 1)
		for range 3 {
			start := time.Now()
			if _, err := a.Authenticate(t.Context(), user, "wrong", "192.0.2.1"); err != users.ErrInvalidCredentials {
				t.Fatal(err)
			}
			best = min(best, time.Since(start))
		}
		return best
	}
	known, unknown := measure("alice"), measure("nobody")
	if unknown < known/4 {
		t.Fatalf("unknown user answered in %v, a known one in %v: timing tells users apart", unknown, known)
	}
}

func TestAuthenticateStorageUnavailableIsNotAFailedLogin(t *testing.T) {
	st := seeded(t, aliceUser())
	c := newClock()
	a := &users.Authenticator{Store: st, Throttle: users.NewThrottle(st, []byte("k"), c.now)}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		_, err := a.Authenticate(t.Context(), "alice", "alice-password", "192.0.2.1")
		if !errors.Is(err, storage.ErrUnavailable) || errors.Is(err, users.ErrInvalidCredentials) {
			t.Fatalf("attempt %d on a closed store = %v, want storage.ErrUnavailable only", i, err)
		}
	}
}
