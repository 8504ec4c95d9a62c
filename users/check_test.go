package users_test

import (
	"context"
	"errors"
	"testing"

	"github.com/latchauth/latch/users"
)

// Check throttles a password checked elsewhere (a directory) as
// Authenticate does a local one: wrong answers are counted and then
// refused before the check runs; the directory's own failure is not a
// wrong password and is not counted; a right answer clears the pair.
func TestCheckThrottlesLikeAuthenticate(t *testing.T) {
	st := seeded(t, aliceUser())
	c := newClock()
	a := &users.Authenticator{Store: st, Throttle: users.NewThrottle(st, []byte("k"), c.now), Rules: users.DefaultLoginRules}
	ctx := t.Context()
	calls := 0
	answer := func(ok bool, err error) func(context.Context) (bool, error) {
		return func(context.Context) (bool, error) { calls++; return ok, err }
	}
	down := errors.New("directory unreachable")
	for range 10 {
		if err := a.Check(ctx, "corp\x00ann", "192.0.2.1", answer(false, down)); !errors.Is(err, down) {
			t.Fatalf("a directory failure = %v, want it as is", err)
		}
	}
	if err := a.Check(ctx, "corp\x00ann", "192.0.2.1", answer(true, nil)); err != nil {
		t.Fatalf("uncounted failures must not throttle: %v", err)
	}
	calls = 0
	var limited *users.RateLimitedError
	for i := range 10 {
		err := a.Check(ctx, "corp\x00ann", "192.0.2.1", answer(false, nil))
		if errors.As(err, &limited) {
			if i < users.DefaultLoginRules.User.Free {
				t.Fatalf("throttled after %d failures", i)
			}
			break
		}
		if !errors.Is(err, users.ErrInvalidCredentials) {
			t.Fatalf("attempt %d = %v, want ErrInvalidCredentials", i, err)
		}
	}
	if limited == nil {
		t.Fatal("ten wrong answers in a row were never throttled")
	}
	before := calls
	if err := a.Check(ctx, "corp\x00ann", "192.0.2.1", answer(true, nil)); !errors.As(err, &limited) {
		t.Fatalf("while throttled = %v, want RateLimitedError", err)
	}
	if calls != before {
		t.Error("the directory was asked while the pair was throttled")
	}
}
