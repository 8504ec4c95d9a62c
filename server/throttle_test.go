package server_test

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testClock is a clock the test moves; the server reads it from its
// handlers' goroutines.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// withClock gives the server a clock the test moves.
func withClock(c *testClock) option { return func(o *serverOptions) { o.cfg.Now = c.now } }

// behindProxy makes the loopback address, where every test request comes
// from, a trusted proxy: X-Forwarded-For then names the caller.
func behindProxy() option {
	return func(o *serverOptions) {
		o.cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	}
}

// forwardedFor sends every request of the browser as if through the
// proxy, from addr.
type forwardedFor struct {
	addr string
	next http.RoundTripper
}

func (f forwardedFor) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", f.addr)
	return f.next.RoundTrip(r)
}

// newBrowserAt is a browser whose requests come through the proxy from addr.
func (ts *testServer) newBrowserAt(t *testing.T, addr string) *browser {
	b := ts.newBrowser(t)
	b.client.Transport = forwardedFor{addr: addr, next: b.client.Transport}
	return b
}

// loginFails submits a wrong password for username n times from b, each
// on the login page the last answer showed.
func loginFails(t *testing.T, ts *testServer, b *browser, username string, n int) response {
	t.Helper()
	page := b.get(t, location(t, b.get(t, ts.authorizeURL("web-client", nil))))
	for range n {
		page = b.submit(t, page, map[string]string{"username": username, "password": "guessed-password"})
		flowRequirePage(t, page, http.StatusUnauthorized)
	}
	return page
}

// requireLoginAccepted requires r to be the answer of a successful login.
func requireLoginAccepted(t *testing.T, r response) {
	t.Helper()
	require.True(t, strings.HasPrefix(location(t, r), "/consent?challenge="), "signed in; body %s", r.Body)
}

func TestMadeUpUsernamesBehindAProxyDoNotLockOutOtherUsers(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, behindProxy())
	attacker := ts.newBrowserAt(t, "203.0.113.7")
	page := attacker.get(t, location(t, attacker.get(t, ts.authorizeURL("web-client", nil))))
	for i := range 20 {
		page = attacker.submit(t, page, map[string]string{"username": "made-up-" + strconv.Itoa(i), "password": "guess"})
		flowRequirePage(t, page, http.StatusUnauthorized)
	}
	page = attacker.submit(t, page, map[string]string{"username": "bob", "password": "bob-password"})
	flowRequirePage(t, page, http.StatusTooManyRequests)

	// Everyone else comes through the same proxy, from their own address.
	requireLoginAccepted(t, ts.newBrowserAt(t, "198.51.100.1").signIn(t, ts.authorizeURL("web-client", nil), "bob", "bob-password"))
	requireLoginAccepted(t, ts.newBrowserAt(t, "2001:db8:7::1").signIn(t, ts.authorizeURL("web-client", nil), "alice", "alice-password"))
}

func TestBobsFailuresFromAnAttackerDoNotStopBobsRightPasswordFromAFreshAddress(t *testing.T) {
	t.Parallel()
	clock := &testClock{t: time.Now()}
	ts := newTestServer(t, behindProxy(), withClock(clock))
	loginFails(t, ts, ts.newBrowserAt(t, "203.0.113.7"), "bob", 5)

	bob := ts.newBrowserAt(t, "198.51.100.1")
	page := bob.get(t, location(t, bob.get(t, ts.authorizeURL("web-client", nil))))
	r := bob.submit(t, page, map[string]string{"username": "bob", "password": "bob-password"})
	// The clock stands still, so the per-user wait has not passed yet.
	flowRequirePage(t, r, http.StatusTooManyRequests)
	wait, err := strconv.Atoi(r.Header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After %q", r.Header.Get("Retry-After"))
	require.LessOrEqual(t, wait, 5, "bob waits a few seconds at most")
	require.Contains(t, flowAlert(t, r), "Wait "+strconv.Itoa(wait)+" seconds")
	clock.advance(time.Duration(wait) * time.Second)
	requireLoginAccepted(t, bob.submit(t, r, map[string]string{"username": "bob", "password": "bob-password"}))
}

func TestTwoServersOnOneDatabaseShareLoginCounters(t *testing.T) {
	t.Parallel()
	one := newTestServer(t)
	o := one.opts
	o.secrets = one.secrets // the clients and users exist
	two := startServer(t, o)

	loginFails(t, one, one.newBrowser(t), "alice", 5)
	r := two.newBrowser(t).signIn(t, two.authorizeURL("web-client", nil), "alice", "alice-password")
	flowRequirePage(t, r, http.StatusTooManyRequests)
	require.NotEmpty(t, r.Header.Get("Retry-After"))
}
