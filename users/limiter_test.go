package users_test

import (
	"fmt"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/latchauth/latch/users"
)

func TestLimiterDefaults(t *testing.T) {
	c := newClock()
	l := users.NewLimiter(users.LimiterOptions{Now: c.now})

	t.Run("user: 5 failures, then one every 12s", func(t *testing.T) {
		for i := range 5 {
			if !l.Allow("alice", fmt.Sprintf("10.0.0.%d", i)) {
				t.Fatalf("refused before failure %d", i)
			}
			l.Failure("alice", fmt.Sprintf("10.0.0.%d", i))
		}
		if l.Allow("alice", "10.0.1.1") {
			t.Fatal("allowed after 5 failures")
		}
		c.advance(11 * time.Second)
		if l.Allow("alice", "10.0.1.1") {
			t.Fatal("allowed after 11s")
		}
		c.advance(time.Second)
		if !l.Allow("alice", "10.0.1.1") {
			t.Fatal("refused after 12s")
		}
	})
	t.Run("address: 20 failures, then one every 3s", func(t *testing.T) {
		for i := range 20 {
			if !l.Allow(fmt.Sprintf("u%d", i), "192.0.2.9:1") {
				t.Fatalf("refused before failure %d", i)
			}
			l.Failure(fmt.Sprintf("u%d", i), "192.0.2.9:1")
		}
		if l.Allow("someone", "192.0.2.9:2") {
			t.Fatal("allowed after 20 failures")
		}
		c.advance(3 * time.Second)
		if !l.Allow("someone", "192.0.2.9:2") {
			t.Fatal("refused after 3s")
		}
	})
}

// TestLimiterDebt: failures beyond the budget (requests that raced past
// Allow) are owed, but at most one burst.
func TestLimiterDebt(t *testing.T) {
	c := newClock()
	l := users.NewLimiter(users.LimiterOptions{PerUser: rate.Every(10 * time.Second), UserBurst: 2, Now: c.now})
	for range 50 {
		l.Failure("alice", "10.0.0.1")
	}
	// 2 tokens spent, 2 owed: 3 tokens (30s) until one is available.
	tests := []struct {
		after time.Duration
		want  bool
	}{{10 * time.Second, false}, {29 * time.Second, false}, {31 * time.Second, true}}
	start := c.now()
	for _, tt := range tests {
		t.Run(tt.after.String(), func(t *testing.T) {
			c.t = start.Add(tt.after)
			if got := l.Allow("alice", "10.9.9.9"); got != tt.want {
				t.Fatalf("Allow after %v = %v, want %v", tt.after, got, tt.want)
			}
		})
	}
}

func TestLimiterMaxKeys(t *testing.T) {
	c := newClock()
	opts := users.LimiterOptions{UserBurst: 1, AddrBurst: 1000, MaxKeys: 4, Now: c.now}
	const addr = "10.0.0.1"
	const other = "10.9.9.9" // never fails, so never remembered

	t.Run("least recently used is forgotten", func(t *testing.T) {
		l := users.NewLimiter(opts)
		l.Failure("u1", addr) // keys: u1, addr
		l.Failure("u2", addr) // + u2
		l.Failure("u3", addr) // + u3 = 4
		if l.Allow("u1", other) {
			t.Fatal("u1 not limited while remembered")
		}
		// Allow just touched u1; u2 is now the least recently used.
		l.Failure("u4", addr)
		if l.Len() != 4 {
			t.Fatalf("Len = %d, want 4", l.Len())
		}
		want := map[string]bool{"u1": false, "u2": true, "u3": false, "u4": false}
		for user, allowed := range want {
			if got := l.Allow(user, other); got != allowed {
				t.Errorf("Allow(%s) = %v, want %v", user, got, allowed)
			}
		}
	})
	t.Run("bound holds under many keys", func(t *testing.T) {
		l := users.NewLimiter(users.LimiterOptions{MaxKeys: 100, Now: c.now})
		for i := range 5000 {
			l.Failure(fmt.Sprintf("user%d", i), fmt.Sprintf("10.%d.%d.%d:1", i>>16&255, i>>8&255, i&255))
			if l.Len() > 100 {
				t.Fatalf("Len = %d after %d failures", l.Len(), i+1)
			}
		}
	})
	t.Run("default bound", func(t *testing.T) {
		l := users.NewLimiter(users.LimiterOptions{Now: c.now})
		for i := range 6000 {
			l.Failure(fmt.Sprintf("user%d", i), "10.0.0.1")
		}
		if l.Len() != 6001 {
			t.Fatalf("Len = %d, want 6001 (below the default 10000)", l.Len())
		}
		for i := range 6000 {
			l.Failure(fmt.Sprintf("other%d", i), "10.0.0.1")
		}
		if l.Len() != 10000 {
			t.Fatalf("Len = %d, want 10000", l.Len())
		}
	})
	t.Run("allow remembers nothing", func(t *testing.T) {
		l := users.NewLimiter(opts)
		for i := range 100 {
			l.Allow(fmt.Sprintf("u%d", i), fmt.Sprintf("10.0.0.%d", i))
		}
		if l.Len() != 0 {
			t.Fatalf("Len = %d after Allow only", l.Len())
		}
	})
}

// TestLimiterKeys: a username and an address with the same text are two
// buckets; usernames are case-sensitive.
func TestLimiterKeys(t *testing.T) {
	c := newClock()
	l := users.NewLimiter(users.LimiterOptions{UserBurst: 1, AddrBurst: 1, Now: c.now})
	l.Failure("10.0.0.1", "10.0.0.2")
	tests := []struct {
		user, addr string
		want       bool
	}{
		{"10.0.0.1", "10.0.0.3", false},   // the user bucket
		{"someone", "10.0.0.2:80", false}, // the address bucket
		{"someone", "10.0.0.1", true},     // an address named like the user
		{"10.0.0.2", "10.0.0.3", true},    // a user named like the address
	}
	for _, tt := range tests {
		t.Run(tt.user+"@"+tt.addr, func(t *testing.T) {
			if got := l.Allow(tt.user, tt.addr); got != tt.want {
				t.Fatalf("Allow = %v, want %v", got, tt.want)
			}
		})
	}
	l.Failure("alice", "10.0.0.5")
	if !l.Allow("Alice", "10.0.0.6") {
		t.Fatal("Alice is limited by alice's failures")
	}
}

func TestLimiterConcurrent(t *testing.T) {
	l := users.NewLimiter(users.LimiterOptions{MaxKeys: 50})
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 500 {
				user, addr := fmt.Sprintf("u%d", i%70), fmt.Sprintf("10.0.%d.%d", g, i%30)
				if l.Allow(user, addr) {
					l.Failure(user, addr)
				}
			}
		}()
	}
	for range 8 {
		<-done
	}
	if l.Len() > 50 {
		t.Fatalf("Len = %d", l.Len())
	}
}
