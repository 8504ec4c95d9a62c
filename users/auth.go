package users

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/latchauth/latch/passhash"
	"github.com/latchauth/latch/storage"
)

var (
	// ErrInvalidCredentials is the one answer to an unknown username and to
	// a wrong password, so the login page cannot be used to find out which
	// users exist.
	ErrInvalidCredentials = errors.New("users: invalid username or password")
	// ErrRateLimited: too many failed logins for this username or from this
	// address; the password was not checked.
	ErrRateLimited = errors.New("users: too many failed logins")
)

// Authenticator checks a username and password in constant-ish time: an
// unknown user costs one password check too, so timing does not tell
// whether a user exists. Usernames are compared exactly as stored
// (case-sensitive).
type Authenticator struct {
	Store   storage.UserStore
	Limiter *Limiter // may be nil: no limit
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
// password, the same value for both), ErrRateLimited (the limiter refused
// the attempt before the password was checked), or a storage error wrapping
// storage.ErrUnavailable: a database failure is not a wrong password, and is
// not counted as a failed login.
//
// remoteAddr is the client's address, host:port or bare IP; the limiter
// counts it by IP. A successful login does not refund earlier failures of
// the user or the address.
func (a *Authenticator) Authenticate(ctx context.Context, username, password, remoteAddr string) (*storage.User, error) {
	if a.Limiter != nil && !a.Limiter.Allow(username, remoteAddr) {
		return nil, ErrRateLimited
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
		return nil, a.fail(username, remoteAddr)
	}
	if passhash.Verify(u.PasswordHash, password) != nil {
		return nil, a.fail(username, remoteAddr)
	}
	return u, nil
}

func (a *Authenticator) fail(username, remoteAddr string) error {
	if a.Limiter != nil {
		a.Limiter.Failure(username, remoteAddr)
	}
	return ErrInvalidCredentials
}

// hostOf is the IP of a host:port address, or addr itself when it has no
// port. An IP is written canonically, so "[::1]:80", "::1" and
// "[0:0::1]" share one key, as do an IPv4 address and its IPv4-mapped IPv6
// form.
func hostOf(addr string) string {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	if ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")); err == nil {
		return ip.Unmap().WithZone("").String()
	}
	return host
}
