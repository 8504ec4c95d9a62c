package users

import (
	"container/list"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// LimiterOptions configure a Limiter. Zero values take the defaults.
type LimiterOptions struct {
	// PerUser and UserBurst: a username may fail UserBurst times in a row,
	// then once per 1/PerUser. Default: 5, then one every 12 s.
	PerUser   rate.Limit
	UserBurst int
	// PerAddr and AddrBurst: the same per client IP address, across every
	// username. Default: 20, then one every 3 s.
	PerAddr   rate.Limit
	AddrBurst int
	// MaxKeys bounds how many usernames and addresses (together) are
	// remembered; the least recently used is forgotten first. Default 10000,
	// at least 2.
	MaxKeys int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Limiter rate-limits failed logins per username and per client address
// with token buckets (golang.org/x/time/rate). Only failures spend tokens;
// while either bucket of an attempt is empty, Allow refuses it, whatever
// the password. The per-user limit stops guessing one account from many
// addresses; the per-address limit stops one address from spraying many
// accounts.
//
// A failure while a bucket is already empty still counts, as debt of up to
// one burst: attempts that raced past Allow together (each check takes tens
// of milliseconds) are paid for, and a bucket that is refused stays refused
// until the debt refills. Debt stops at one burst, so a key is never refused
// for much longer than it takes to refill two bursts (2 minutes per user and
// per address with the defaults).
//
// Memory is bounded by MaxKeys. A key untouched for burst/rate (60 s with
// the defaults) has refilled, so forgetting it loses nothing; only more than
// MaxKeys distinct failing keys within that time can make the limiter
// forget a partly spent bucket.
//
// The state is in memory, per process: several instances behind a load
// balancer each grant the full budget.
//
// A Limiter is safe for concurrent use.
type Limiter struct {
	o LimiterOptions

	mu    sync.Mutex
	order *list.List // of *bucket, most recently used first
	byKey map[limitKey]*list.Element
}

// limitKey keeps usernames and addresses apart: a user called "10.0.0.1"
// does not share the bucket of that address.
type limitKey struct {
	addr bool
	name string
}

type bucket struct {
	key limitKey
	lim *rate.Limiter
}

// NewLimiter returns a Limiter with o, defaults filled in.
func NewLimiter(o LimiterOptions) *Limiter {
	if o.PerUser <= 0 {
		o.PerUser = rate.Every(12 * time.Second)
	}
	if o.UserBurst <= 0 {
		o.UserBurst = 5
	}
	if o.PerAddr <= 0 {
		o.PerAddr = rate.Every(3 * time.Second)
	}
	if o.AddrBurst <= 0 {
		o.AddrBurst = 20
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = 10000
	}
	// One failure remembers two keys; fewer would forget half of it at once.
	o.MaxKeys = max(o.MaxKeys, 2)
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Limiter{o: o, order: list.New(), byKey: map[limitKey]*list.Element{}}
}

// Allow reports whether a login of username from addr may be checked now:
// both the user's and the address's bucket hold a token. It spends nothing.
// addr may be a host:port (http.Request.RemoteAddr) or a bare IP.
func (l *Limiter) Allow(username, addr string) bool {
	now := l.o.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	ok := true
	for _, k := range l.keys(username, addr) {
		if b := l.get(k); b != nil && b.lim.TokensAt(now) < 1 {
			ok = false // keep going: touch both keys
		}
	}
	return ok
}

// Failure records a failed login of username from addr: it spends a token
// of both buckets.
func (l *Limiter) Failure(username, addr string) {
	now := l.o.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range l.keys(username, addr) {
		b := l.get(k)
		if b == nil {
			b = l.add(k)
		}
		if b.lim.TokensAt(now) > -float64(b.lim.Burst()) {
			b.lim.ReserveN(now, 1) // may go into debt; see the type's comment
		}
	}
}

func (l *Limiter) keys(username, addr string) [2]limitKey {
	return [2]limitKey{{name: username}, {addr: true, name: hostOf(addr)}}
}

// get returns the bucket of k, marking it used, or nil.
func (l *Limiter) get(k limitKey) *bucket {
	e, ok := l.byKey[k]
	if !ok {
		return nil
	}
	l.order.MoveToFront(e)
	return e.Value.(*bucket)
}

// add creates a full bucket for k and forgets the least recently used
// buckets beyond MaxKeys.
func (l *Limiter) add(k limitKey) *bucket {
	b := &bucket{key: k}
	if k.addr {
		b.lim = rate.NewLimiter(l.o.PerAddr, l.o.AddrBurst)
	} else {
		b.lim = rate.NewLimiter(l.o.PerUser, l.o.UserBurst)
	}
	l.byKey[k] = l.order.PushFront(b)
	for l.order.Len() > l.o.MaxKeys {
		oldest := l.order.Back()
		l.order.Remove(oldest)
		delete(l.byKey, oldest.Value.(*bucket).key)
	}
	return b
}
