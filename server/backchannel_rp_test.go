package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/server"
)

// The relying party of the back-channel logout tests: an httptest server
// that receives logout tokens, and the checks §2.6 asks of it.

const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// fastBackchannel makes deliveries quick for tests: a 50 ms poll, a 50 ms
// first retry, and a 2 s attempt timeout.
func fastBackchannel() option {
	return func(o *serverOptions) {
		o.cfg.Backchannel = server.BackchannelOptions{Poll: 50 * time.Millisecond, RetryBase: 50 * time.Millisecond, Timeout: 2 * time.Second}
	}
}

// runLogoutWorker runs ts's delivery worker until the test ends.
func runLogoutWorker(t *testing.T, ts *testServer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		ts.Server.LogoutDeliveries(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// rpPost is one request the relying party received.
type rpPost struct {
	method, contentType string
	form                url.Values
	at                  time.Time
}

// testRP is a relying party's back-channel logout endpoint. answer gives
// the status of the n-th POST (from 0); hang, when set for that POST,
// holds the answer until the request is cancelled or the test releases it.
type testRP struct {
	srv    *httptest.Server
	answer func(n int) int
	hang   func(n int) bool

	mu      sync.Mutex
	posts   []rpPost
	ended   []time.Time // when each held request ended
	release chan struct{}
}

func newTestRP(t *testing.T, answer func(n int) int) *testRP {
	t.Helper()
	rp := &testRP{answer: answer, hang: func(int) bool { return false }, release: make(chan struct{})}
	rp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		rp.mu.Lock()
		n := len(rp.posts)
		rp.posts = append(rp.posts, rpPost{method: r.Method, contentType: r.Header.Get("Content-Type"), form: r.PostForm, at: time.Now()})
		rp.mu.Unlock()
		if rp.hang(n) {
			select {
			case <-r.Context().Done():
			case <-rp.release:
			}
			rp.mu.Lock()
			rp.ended = append(rp.ended, time.Now())
			rp.mu.Unlock()
		}
		w.WriteHeader(rp.answer(n))
	}))
	// Cleanups run last-in first-out: release held requests, then close.
	t.Cleanup(rp.srv.Close)
	t.Cleanup(func() { close(rp.release) })
	return rp
}

func answerAlways(status int) func(int) int { return func(int) int { return status } }

func (rp *testRP) uri() string { return rp.srv.URL + "/backchannel-logout" }

// wait returns the first n POSTs once they have arrived (within 15 s).
func (rp *testRP) wait(t *testing.T, n int) []rpPost {
	t.Helper()
	for range 300 {
		rp.mu.Lock()
		got := append([]rpPost(nil), rp.posts...)
		rp.mu.Unlock()
		if len(got) >= n {
			return got[:n]
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the relying party did not receive %d logout requests", n)
	return nil
}

func (rp *testRP) count() int {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return len(rp.posts)
}

// setBackchannel gives clientID the back-channel logout URI uri.
func setBackchannel(t *testing.T, ts *testServer, clientID, uri string) {
	t.Helper()
	fc, err := ts.Store.GetClient(t.Context(), clientID)
	require.NoError(t, err)
	c := fc.(*clients.Client).Clone()
	c.BackchannelLogoutURI, c.BackchannelLogoutSessionRequired = uri, true
	require.NoError(t, ts.Store.UpdateClient(t.Context(), c))
}

// webClientWithRP starts a server with quick deliveries and its worker,
// and a relying party, answering answer, as web-client's back-channel URI.
func webClientWithRP(t *testing.T, answer func(int) int) (*testServer, *testRP) {
	t.Helper()
	ts := newTestServer(t, fastBackchannel())
	rp := newTestRP(t, answer)
	setBackchannel(t, ts, "web-client", rp.uri())
	runLogoutWorker(t, ts)
	return ts, rp
}

// verifyLogoutToken checks the logout token of p as a relying party must
// (Back-Channel Logout 1.0 §2.6), for clientID, and returns its claims.
func verifyLogoutToken(t *testing.T, ts *testServer, p rpPost, clientID string) map[string]any {
	t.Helper()
	// §2.5: a POST of application/x-www-form-urlencoded with logout_token.
	require.Equal(t, http.MethodPost, p.method)
	require.Equal(t, "application/x-www-form-urlencoded", p.contentType)
	require.Len(t, p.form, 1, "only logout_token: %v", p.form)
	raw := p.form.Get("logout_token")
	require.NotEmpty(t, raw)

	// §2.4: typ logout+jwt, signed with a key of the JWKS (go-oidc checks
	// the signature, iss, aud and exp like an ID token's, §2.6 steps 2-3).
	h := jwtHeader(t, raw)
	require.Equal(t, "logout+jwt", h["typ"])
	require.Contains(t, ts.publishedKIDs(t), h["kid"])
	idt, err := ts.provider(t, t.Context()).Verifier(&oidc.Config{ClientID: clientID}).Verify(t.Context(), raw)
	require.NoError(t, err, "go-oidc verifies the logout token against the JWKS")
	var claims map[string]any
	require.NoError(t, idt.Claims(&claims))

	require.Equal(t, ts.URL, claims["iss"])
	require.Equal(t, clientID, claims["aud"])
	iat, exp := time.Unix(int64(claims["iat"].(float64)), 0), time.Unix(int64(claims["exp"].(float64)), 0)
	require.WithinDuration(t, time.Now(), iat, time.Minute, "iat is now")
	require.True(t, exp.After(time.Now()), "not expired")
	require.LessOrEqual(t, exp.Sub(iat), 2*time.Minute, "short-lived")
	require.NotEmpty(t, claims["jti"], "a jti (§2.4)")
	// §2.6 step 4: sub or sid; Latch sends both.
	require.NotEmpty(t, claims["sub"])
	require.NotEmpty(t, claims["sid"])
	// §2.6 step 5: events holds the back-channel logout member, a JSON object.
	events, ok := claims["events"].(map[string]any)
	require.True(t, ok, "events is a JSON object: %v", claims["events"])
	require.Len(t, events, 1)
	member, ok := events[backchannelEvent].(map[string]any)
	require.True(t, ok, "the back-channel logout event is a JSON object: %v", events)
	require.Empty(t, member)
	// §2.6 step 6: never a nonce, so it can never pass for an ID token.
	require.NotContains(t, claims, "nonce")
	return claims
}

// idTokenSID is the sid of an ID token, which go-oidc verifies.
func idTokenSID(t *testing.T, ts *testServer, raw, clientID string) string {
	t.Helper()
	_, claims := ts.verifyIDToken(t, raw, clientID)
	sid, _ := claims["sid"].(string)
	require.NotEmpty(t, sid, "the ID token carries sid")
	return sid
}

func queued(t *testing.T, ts *testServer) int64 {
	t.Helper()
	n, err := ts.Store.CountLogoutDeliveries(t.Context())
	require.NoError(t, err)
	return n
}

// requireEventually waits (at most 10 s) for cond.
func requireEventually(t *testing.T, cond func() bool) {
	t.Helper()
	for range 200 {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the condition did not hold within 10 s")
}
