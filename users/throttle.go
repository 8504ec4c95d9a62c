package users

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/latchauth/latch/storage"
)

// Rule is how failures of one kind of counter slow further attempts:
// Free failures cost nothing; after them each attempt must wait, from the
// last failure, Base, then twice as long with every further failure, up
// to Max. A counter is forgotten Forget after its last failure. Attempts
// refused while waiting are not failures: they change nothing, so an
// attacker cannot push a wait further out by hammering.
type Rule struct {
	Free   int
	Base   time.Duration
	Max    time.Duration
	Forget time.Duration
}

// wait is how long after the last of failures the next attempt may come.
func (r Rule) wait(failures int) time.Duration {
	if failures < r.Free || r.Base <= 0 {
		return 0
	}
	d := r.Base
	for i := r.Free; i < failures && d < r.Max; i++ {
		d *= 2
	}
	return min(d, r.Max)
}

// Counter is one thing failures are counted against: a username, an
// address, or a pair of the two, with its Rule.
type Counter struct {
	kind, value string
	rule        Rule
}

// NewCounter is the counter of value within kind ("user", "addr", ...):
// kinds keep a user called "10.0.0.1" apart from that address.
func NewCounter(kind, value string, rule Rule) Counter {
	return Counter{kind: kind, value: value, rule: rule}
}

// Throttle slows repeated failures down with counters kept in the
// database (storage.ThrottleStore), so that every instance of a
// deployment sees the same counts. Counters are stored under an HMAC of
// their kind and value: a fixed-size key whatever a caller sends, and no
// username or address in clear in the database or its backups.
//
// Wait and Fail are two steps: attempts that check their counters at the
// same moment may all go ahead before any of them fails. That many
// concurrent password checks are bounded by the server (one per CPU), so
// the overshoot is a handful of attempts, and each still counts.
type Throttle struct {
	store storage.ThrottleStore
	key   []byte
	now   func() time.Time
}

// NewThrottle returns a Throttle on st. key keys the HMAC of the stored
// counter keys; every instance must use the same one (the server derives
// it from the system secret). now is the clock (nil: time.Now).
func NewThrottle(st storage.ThrottleStore, key []byte, now func() time.Time) *Throttle {
	if now == nil {
		now = time.Now
	}
	return &Throttle{store: st, key: key, now: now}
}

func (t *Throttle) storageKey(c Counter) string {
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte(c.kind))
	m.Write([]byte{0})
	m.Write([]byte(c.value))
	return hex.EncodeToString(m.Sum(nil))
}

// Wait returns how long until an attempt counted against counters may go
// ahead: zero when it may now.
func (t *Throttle) Wait(ctx context.Context, counters ...Counter) (time.Duration, error) {
	keys := make([]string, len(counters))
	for i, c := range counters {
		keys[i] = t.storageKey(c)
	}
	now := t.now()
	counts, err := t.store.ThrottleCounts(ctx, keys, now)
	if err != nil {
		return 0, fmt.Errorf("users: read failure counters: %w", err)
	}
	var wait time.Duration
	for i, c := range counters {
		n, ok := counts[keys[i]]
		if !ok {
			continue
		}
		wait = max(wait, n.LastFailure.Add(c.rule.wait(n.Failures)).Sub(now))
	}
	return wait, nil
}

// Fail counts one failure against every counter.
func (t *Throttle) Fail(ctx context.Context, counters ...Counter) error {
	now := t.now()
	fs := make([]storage.ThrottleFailure, len(counters))
	for i, c := range counters {
		fs[i] = storage.ThrottleFailure{Key: t.storageKey(c), ExpiresAt: now.Add(c.rule.Forget)}
	}
	if err := t.store.CountFailure(ctx, now, fs...); err != nil {
		return fmt.Errorf("users: count a failure: %w", err)
	}
	return nil
}

// Forget clears counters.
func (t *Throttle) Forget(ctx context.Context, counters ...Counter) error {
	keys := make([]string, len(counters))
	for i, c := range counters {
		keys[i] = t.storageKey(c)
	}
	if err := t.store.ForgetFailures(ctx, keys...); err != nil {
		return fmt.Errorf("users: forget failures: %w", err)
	}
	return nil
}
