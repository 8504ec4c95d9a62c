package users_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/latchauth/latch/storage"
	"github.com/latchauth/latch/users"
)

// throttled is an Authenticator with the default rules on st, its clock c.
func throttled(st *storage.GormStore, c *clock) *users.Authenticator {
	return &users.Authenticator{Store: st, Throttle: users.NewThrottle(st, []byte("test throttle key"), c.now)}
}

// retryAfter is the wait of a refused attempt; it fails the test for any
// other error.
func retryAfter(t *testing.T, err error) time.Duration {
	t.Helper()
	var limited *users.RateLimitedError
	if !errors.As(err, &limited) || !errors.Is(err, users.ErrRateLimited) {
		t.Fatalf("got %v, want a *RateLimitedError", err)
	}
	if limited.RetryAfter <= 0 {
		t.Fatalf("RetryAfter = %v", limited.RetryAfter)
	}
	return limited.RetryAfter
}

func TestRuleWaitDoublesFromBaseUpToMax(t *testing.T) {
	st := seeded(t)
	c := newClock()
	th := users.NewThrottle(st, []byte("k"), c.now)
	ctr := users.NewCounter("test", "x", users.Rule{Free: 2, Base: time.Second, Max: 5 * time.Second, Forget: time.Hour})
	want := []time.Duration{0, 0, time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	for i, w := range want {
		got, err := th.Wait(t.Context(), ctr)
		if err != nil {
			t.Fatal(err)
		}
		if got != w {
			t.Fatalf("after %d failures: wait %v, want %v", i, got, w)
		}
		if err := th.Fail(t.Context(), ctr); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMadeUpUsernamesFromOneAddressDoNotLockOtherUsers(t *testing.T) {
	st := seeded(t, aliceUser(), bobUser())
	c := newClock()
	a := throttled(st, c)
	ctx := t.Context()
	const attacker = "203.0.113.7"
	for i := range 40 {
		_, err := a.Authenticate(ctx, fmt.Sprintf("made-up-%d", i), "guess", attacker)
		if i < users.DefaultLoginRules.Addr.Free {
			if err != users.ErrInvalidCredentials {
				t.Fatalf("failure %d: %v", i, err)
			}
		} else {
			retryAfter(t, err) // the address hit its ceiling
		}
	}
	for _, who := range []struct{ user, password, addr string }{
		{"alice", "alice-password", "198.51.100.1"},
		{"bob", "bob-password", "198.51.100.2"},
		{"bob", "bob-password", "2001:db8:1::/64"},
	} {
		if _, err := a.Authenticate(ctx, who.user, who.password, who.addr); err != nil {
			t.Fatalf("%s from %s: %v", who.user, who.addr, err)
		}
	}
}

func TestFailuresForBobFromAttackerDelayBobsRightPasswordBySecondsOnly(t *testing.T) {
	st := seeded(t, bobUser())
	c := newClock()
	a := throttled(st, c)
	ctx := t.Context()
	for i := range 5 {
		if _, err := a.Authenticate(ctx, "bob", "guess", "203.0.113.7"); err != users.ErrInvalidCredentials {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	_, err := a.Authenticate(ctx, "bob", "bob-password", "198.51.100.1")
	wait := retryAfter(t, err)
	if wait > 5*time.Second {
		t.Fatalf("bob must wait %v: more than a few seconds", wait)
	}
	c.advance(wait)
	if u, err := a.Authenticate(ctx, "bob", "bob-password", "198.51.100.1"); err != nil || u.Username != "bob" {
		t.Fatalf("bob after %v from a fresh address: %v", wait, err)
	}
	if _, err := a.Authenticate(ctx, "bob", "bob-password", "203.0.113.7"); err == nil {
		t.Fatal("the attacker's address passed its own strict limit for bob")
	}
}

// TestUserWaitStaysShortUnderADistributedAttack: however many addresses
// fail for bob, as fast as they are let, bob's own wait never exceeds the
// per-user maximum.
func TestUserWaitStaysShortUnderADistributedAttack(t *testing.T) {
	st := seeded(t, bobUser())
	c := newClock()
	a := throttled(st, c)
	ctx := t.Context()
	failures := 0
	for i := range 60 {
		_, err := a.Authenticate(ctx, "bob", "guess", fmt.Sprintf("192.0.2.%d", i))
		switch {
		case err == users.ErrInvalidCredentials:
			failures++
		case errors.Is(err, users.ErrRateLimited):
			c.advance(retryAfter(t, err))
		default:
			t.Fatal(err)
		}
		_, err = a.Authenticate(ctx, "bob", "bob-password", "198.51.100.1")
		if err != nil && retryAfter(t, err) > users.DefaultLoginRules.User.Max {
			t.Fatalf("after %d failures bob waits %v", failures, retryAfter(t, err))
		}
	}
	if failures >= 60 {
		t.Fatal("the per-user delay never refused the attacker")
	}
}

func TestPairThrottleIsStrictAndGrows(t *testing.T) {
	st := seeded(t, aliceUser())
	c := newClock()
	a := throttled(st, c)
	ctx := t.Context()
	for range 5 {
		if _, err := a.Authenticate(ctx, "alice", "guess", "192.0.2.9"); err != users.ErrInvalidCredentials {
			t.Fatal(err)
		}
	}
	_, err := a.Authenticate(ctx, "alice", "alice-password", "192.0.2.9")
	first := retryAfter(t, err)
	if first < 30*time.Second {
		t.Fatalf("the pair waits %v, want at least 30s", first)
	}
	c.advance(first)
	if _, err := a.Authenticate(ctx, "alice", "guess", "192.0.2.9"); err != users.ErrInvalidCredentials {
		t.Fatal(err)
	}
	_, err = a.Authenticate(ctx, "alice", "alice-password", "192.0.2.9")
	if second := retryAfter(t, err); second != 2*first {
		t.Fatalf("second wait %v, want %v", second, 2*first)
	}
}

func TestRefusedAttemptsAreNotCounted(t *testing.T) {
	st := seeded(t, aliceUser())
	c := newClock()
	a := throttled(st, c)
	ctx := t.Context()
	for range 5 {
		_, _ = a.Authenticate(ctx, "alice", "guess", "192.0.2.9")
	}
	_, err := a.Authenticate(ctx, "alice", "guess", "192.0.2.9")
	wait := retryAfter(t, err)
	for range 20 {
		_, _ = a.Authenticate(ctx, "alice", "guess", "192.0.2.9")
	}
	c.advance(wait)
	if _, err := a.Authenticate(ctx, "alice", "alice-password", "192.0.2.9"); err != nil {
		t.Fatalf("refused attempts pushed the wait out: %v", err)
	}
}

func TestSuccessClearsOnlyTheCounterOfItsAddress(t *testing.T) {
	st := seeded(t, aliceUser())
	c := newClock()
	a := throttled(st, c)
	ctx := t.Context()
	// Five seconds apart: past the per-user wait, so every one counts.
	fail := func(password, addr string) {
		t.Helper()
		if _, err := a.Authenticate(ctx, "alice", password, addr); err != users.ErrInvalidCredentials {
			t.Fatal(err)
		}
		c.advance(5 * time.Second)
	}
	for range 4 {
		fail("typo", "192.0.2.1")
		fail("guess", "192.0.2.2")
	}
	if _, err := a.Authenticate(ctx, "alice", "alice-password", "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	// 192.0.2.1 starts again with five free failures...
	for range 4 {
		fail("typo", "192.0.2.1")
	}
	if _, err := a.Authenticate(ctx, "alice", "alice-password", "192.0.2.1"); err != nil {
		t.Fatalf("after a success and four typos: %v", err)
	}
	// ...while 192.0.2.2 keeps its four and is stopped by the fifth.
	fail("guess", "192.0.2.2")
	_, err := a.Authenticate(ctx, "alice", "alice-password", "192.0.2.2")
	retryAfter(t, err)
}

func TestThrottleCountersExpireAndTheJanitorDeletesThem(t *testing.T) {
	st := seeded(t)
	c := newClock()
	a := throttled(st, c)
	ctx := t.Context()
	for range 5 {
		_, _ = a.Authenticate(ctx, "nobody", "guess", "192.0.2.1")
	}
	_, err := a.Authenticate(ctx, "nobody", "guess", "192.0.2.1")
	retryAfter(t, err)
	c.advance(users.DefaultLoginRules.Pair.Forget + time.Second)
	if _, err := a.Authenticate(ctx, "nobody", "guess", "192.0.2.1"); err != users.ErrInvalidCredentials {
		t.Fatalf("after the counters expired: %v", err)
	}
	// That failure renewed its three counters; the janitor at a later
	// time takes them.
	n, err := st.DeleteExpired(ctx, c.now().Add(users.DefaultLoginRules.Pair.Forget+time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("the clean-up deleted %d rows, want the 3 counters", n)
	}
}

func TestTwoThrottlesOnOneDatabaseShareCounters(t *testing.T) {
	st := seeded(t, aliceUser())
	c := newClock()
	one, two := throttled(st, c), throttled(st, c)
	ctx := t.Context()
	for range 5 {
		if _, err := one.Authenticate(ctx, "alice", "guess", "192.0.2.1"); err != users.ErrInvalidCredentials {
			t.Fatal(err)
		}
	}
	_, err := two.Authenticate(ctx, "alice", "alice-password", "192.0.2.1")
	retryAfter(t, err)
}
