package users

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/latchauth/latch/passhash"
	"github.com/latchauth/latch/storage"
)

var (
	// ErrInvalidCredentials is the one answer to an unknown username and to
	// a wrong password, so the login page cannot be used to find out which
	// users exist.
	ErrInvalidCredentials = errors.New("users: invalid username or password")
	// ErrRateLimited: too many failed logins for this username, from this
	// address, or of this username from this address; the password was not
	// checked. The error returned is a *RateLimitedError.
	ErrRateLimited = errors.New("users: too many failed logins")
)

// RateLimitedError says how long to wait before the next attempt.
type RateLimitedError struct{ RetryAfter time.Duration }

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("%v: retry after %v", ErrRateLimited, e.RetryAfter)
}

func (e *RateLimitedError) Unwrap() error { return ErrRateLimited }

// LoginRules are the three counters a failed login counts against. Zero
// Rules take DefaultLoginRules' one.
//
// They are built so that nobody can use them to lock a user out:
//   - Pair, one username from one address, is strict: whoever fails there
//     repeatedly is almost certainly guessing, and waiting locks out only
//     that address for that user.
//   - User, one username from anywhere, stops guessing one account from
//     many addresses, but its wait stays short (a few seconds at most), so
//     failures others cause for bob delay bob's right password from his
//     own address by seconds, never minutes.
//   - Addr, one address across every username, is a ceiling for one
//     address spraying many accounts. Behind a reverse proxy the address
//     is right only when trusted_proxies names the proxy.
type LoginRules struct {
	Pair, User, Addr Rule
}

// DefaultLoginRules: five free failures per pair, then 30 s doubling up to
// 30 min, remembered a day; five per username, then 1 s doubling up to
// 4 s, remembered an hour; twenty per address, then 10 s doubling up to
// 15 min, remembered an hour.
var DefaultLoginRules = LoginRules{
	Pair: Rule{Free: 5, Base: 30 * time.Second, Max: 30 * time.Minute, Forget: 24 * time.Hour},
	User: Rule{Free: 5, Base: time.Second, Max: 4 * time.Second, Forget: time.Hour},
	Addr: Rule{Free: 20, Base: 10 * time.Second, Max: 15 * time.Minute, Forget: time.Hour},
}

func (r LoginRules) withDefaults() LoginRules {
	for _, p := range []struct{ r, d *Rule }{{&r.Pair, &DefaultLoginRules.Pair}, {&r.User, &DefaultLoginRules.User}, {&r.Addr, &DefaultLoginRules.Addr}} {
		if *p.r == (Rule{}) {
			*p.r = *p.d
		}
	}
	return r
}

// Authenticator checks a username and password in constant-ish time: an
// unknown user costs one password check too, so timing does not tell
// whether a user exists. Usernames are compared exactly as stored
// (case-sensitive).
type Authenticator struct {
	Store storage.UserStore
	// Throttle counts failed logins; nil: no throttling.
	Throttle *Throttle
	Rules    LoginRules
	// Factors keeps second factors (totp.go); nil when only passwords
	// are checked.
	Factors storage.MFAStore
}

// dummyHash is what the password of an unknown user is checked against. It
// is made by passhash.Hash, so it costs what a current hash costs even
// after the parameters change.
var dummyHash = sync.OnceValue(func() string {
	h, err := passhash.Hash("latch: no such user")
	if err != nil {
		return ""
	}
	return h
})

// Authenticate returns the user whose username and password these are.
// Otherwise it returns ErrInvalidCredentials (unknown user or wrong
// password, the same value for both), a *RateLimitedError (the throttle
// refused the attempt before the password was checked), or a storage
// error wrapping storage.ErrUnavailable: a database failure is not a wrong
// password, and is not counted as a failed login.
//
// addr is the caller's address as a throttling key (the server groups
// IPv6 addresses by /64). A successful login clears the counter of this
// username from this address only: the username's and the address's
// counters keep what others did.
func (a *Authenticator) Authenticate(ctx context.Context, username, password, addr string) (*storage.User, error) {
	counters, err := a.admit(ctx, username, addr)
	if err != nil {
		return nil, err
	}
	u, err := a.Store.GetUser(ctx, username)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		u = nil
	case err != nil:
		return nil, fmt.Errorf("users: look up user: %w", err)
	case u.Username != username:
		// A store with case-insensitive collation found another spelling.
		u = nil
	}
	if u == nil || !passhash.IsHash(u.PasswordHash) {
		// No user, or one without a usable password: spend the time of a
		// real check, then fail.
		_ = passhash.Verify(dummyHash(), password)
		return nil, a.fail(ctx, counters)
	}
	if passhash.Verify(u.PasswordHash, password) != nil {
		return nil, a.fail(ctx, counters)
	}
	if a.Throttle != nil {
		if err := a.Throttle.Forget(ctx, counters[0]); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// counters are the pair, user and address counters, in that order.
func (a *Authenticator) counters(username, addr string) []Counter {
	r := a.Rules.withDefaults()
	return []Counter{
		NewCounter("login pair", username+"\x00"+addr, r.Pair),
		NewCounter("login user", username, r.User),
		NewCounter("login addr", addr, r.Addr),
	}
}

// fail counts a failed login. A failure that cannot be counted is
// reported as the database failure it is, not as a wrong password.
func (a *Authenticator) fail(ctx context.Context, counters []Counter) error {
	if a.Throttle != nil {
		if err := a.Throttle.Fail(ctx, counters...); err != nil {
			return err
		}
	}
	return ErrInvalidCredentials
}

// Check runs check, which verifies a password somewhere else (the
// directory behind a password connector), under the throttling of
// Authenticate: refused without running check while username or addr
// waits (*RateLimitedError), a false answer counted as a failed login
// (ErrInvalidCredentials), a true one clearing the pair's counter.
// check's own error (the directory is down) is returned as is, uncounted.
func (a *Authenticator) Check(ctx context.Context, username, addr string, check func(context.Context) (bool, error)) error {
	counters, err := a.admit(ctx, username, addr)
	if err != nil {
		return err
	}
	ok, err := check(ctx)
	switch {
	case err != nil:
		return err
	case !ok:
		return a.fail(ctx, counters)
	case a.Throttle != nil:
		return a.Throttle.Forget(ctx, counters[0])
	}
	return nil
}
