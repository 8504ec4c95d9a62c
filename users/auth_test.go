package users_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/time/rate"

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

func TestAuthenticateStorageUnavailable(t *testing.T) {
	st := seeded(t, aliceUser())
	c := newClock()
	lim := users.NewLimiter(users.LimiterOptions{UserBurst: 1, AddrBurst: 1, Now: c.now})
	a := &users.Authenticator{Store: st, Limiter: lim}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		_, err := a.Authenticate(t.Context(), "alice", "alice-password", "192.0.2.1")
		if !errors.Is(err, storage.ErrUnavailable) || errors.Is(err, users.ErrInvalidCredentials) {
			t.Fatalf("attempt %d on a closed store = %v, want storage.ErrUnavailable only", i, err)
		}
	}
	if !lim.Allow("alice", "192.0.2.1") {
		t.Fatal("storage errors were counted as failed logins")
	}
}

func TestAuthenticateUserLimit(t *testing.T) {
	const burst = 3
	st := seeded(t, aliceUser(), bobUser())
	c := newClock()
	lim := users.NewLimiter(users.LimiterOptions{PerUser: rate.Every(10 * time.Second), UserBurst: burst, Now: c.now})
	a := &users.Authenticator{Store: st, Limiter: lim}
	ctx := t.Context()
	// Each failure from its own address, so only the per-user limit acts.
	addr := func(i int) string { return fmt.Sprintf("198.51.100.%d:4000", i) }

	for i := range burst {
		if _, err := a.Authenticate(ctx, "alice", "guess", addr(i)); err != users.ErrInvalidCredentials {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	t.Run("right password is refused too", func(t *testing.T) {
		if _, err := a.Authenticate(ctx, "alice", "alice-password", addr(100)); err != users.ErrRateLimited {
			t.Fatalf("got %v, want ErrRateLimited", err)
		}
	})
	t.Run("other users are unaffected", func(t *testing.T) {
		if _, err := a.Authenticate(ctx, "bob", "bob-password", addr(0)); err != nil {
			t.Fatalf("bob: %v", err)
		}
	})
	t.Run("not yet refilled", func(t *testing.T) {
		c.advance(9 * time.Second)
		if _, err := a.Authenticate(ctx, "alice", "alice-password", addr(101)); err != users.ErrRateLimited {
			t.Fatalf("after 9s: %v, want ErrRateLimited", err)
		}
	})
	t.Run("refilled by the clock", func(t *testing.T) {
		c.advance(time.Second)
		if _, err := a.Authenticate(ctx, "alice", "alice-password", addr(102)); err != nil {
			t.Fatalf("after 10s: %v", err)
		}
	})
	t.Run("success does not refund", func(t *testing.T) {
		// The one refilled token was not spent by the success, so one more
		// failure empties the bucket again.
		if _, err := a.Authenticate(ctx, "alice", "guess", addr(103)); err != users.ErrInvalidCredentials {
			t.Fatal(err)
		}
		if _, err := a.Authenticate(ctx, "alice", "alice-password", addr(104)); err != users.ErrRateLimited {
			t.Fatalf("got %v, want ErrRateLimited", err)
		}
	})
	t.Run("unknown users are limited alike", func(t *testing.T) {
		for i := range burst {
			if _, err := a.Authenticate(ctx, "ghost", "guess", addr(i)); err != users.ErrInvalidCredentials {
				t.Fatal(err)
			}
		}
		if _, err := a.Authenticate(ctx, "ghost", "guess", addr(0)); err != users.ErrRateLimited {
			t.Fatalf("got %v, want ErrRateLimited", err)
		}
	})
}

func TestAuthenticateAddrLimit(t *testing.T) {
	const burst = 4
	st := seeded(t, aliceUser())
	c := newClock()
	lim := users.NewLimiter(users.LimiterOptions{PerAddr: rate.Every(5 * time.Second), AddrBurst: burst, Now: c.now})
	a := &users.Authenticator{Store: st, Limiter: lim}
	ctx := t.Context()

	// One address sprays many usernames, each failing once; the port
	// changes every time and must not matter.
	for i := range burst {
		if _, err := a.Authenticate(ctx, fmt.Sprintf("user%d", i), "guess", fmt.Sprintf("203.0.113.7:%d", 1000+i)); err != users.ErrInvalidCredentials {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	tests := []struct {
		name, user, password, addr string
		want                       error
	}{
		{"same address, new user", "user99", "guess", "203.0.113.7:9999", users.ErrRateLimited},
		{"same address without port", "alice", "alice-password", "203.0.113.7", users.ErrRateLimited},
		{"same address, IPv4-mapped", "alice", "alice-password", "[::ffff:203.0.113.7]:1", users.ErrRateLimited},
		{"other address", "alice", "alice-password", "203.0.113.8:1000", nil},
		{"IPv6 address", "alice", "alice-password", "[2001:db8::1]:443", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := a.Authenticate(ctx, tt.user, tt.password, tt.addr); err != tt.want {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	c.advance(5 * time.Second)
	if _, err := a.Authenticate(ctx, "alice", "alice-password", "203.0.113.7:1"); err != nil {
		t.Fatalf("after refill: %v", err)
	}
}
