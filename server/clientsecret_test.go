package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/passhash"
)

// chosenSecretServer is a test server with a client whose secret a person
// chose (stored with argon2id), and a count of the argon2id runs.
func chosenSecretServer(t *testing.T) (*testServer, *atomic.Int64) {
	t.Helper()
	var runs atomic.Int64
	hasher := clients.NewHasher(100)
	hasher.Verify = func(hash, secret string) error {
		runs.Add(1)
		return passhash.Verify(hash, secret)
	}
	ts := newTestServer(t, func(o *serverOptions) { o.cfg.Hasher = hasher })
	_, err := (&clients.Manager{Store: ts.Store, Hasher: hasher}).Create(context.Background(), &clients.Client{
		ID: "chosen-client", TokenEndpointAuthMethod: clients.AuthMethodBasic,
		GrantTypes: []string{"client_credentials"}, Scopes: []string{"read"},
	}, "a secret a person chose")
	require.NoError(t, err)
	return ts, &runs
}

func ccRequest(t *testing.T, ts *testServer, a auth) response {
	return ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "client_credentials", "scope": "read"}, a)
}

// TestWrongSecretOneHashRun: concurrent callers with wrong secrets cost
// one argon2id run each, not two (the refusal used to drop the client from
// the cache and check the secret again), and the right secret, verified
// before, needs no run at all afterwards.
func TestWrongSecretOneHashRun(t *testing.T) {
	t.Parallel()
	ts, runs := chosenSecretServer(t)
	require.Equal(t, http.StatusOK, ccRequest(t, ts, basicAuth("chosen-client", "a secret a person chose")).Status)
	require.EqualValues(t, 1, runs.Load(), "the first right secret runs argon2id once")

	const callers = 8
	var wg sync.WaitGroup
	statuses := make(chan int, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- ccRequest(t, ts, basicAuth("chosen-client", fmt.Sprintf("wrong secret %d", i))).Status
		}()
	}
	wg.Wait()
	close(statuses)
	for st := range statuses {
		require.Equal(t, http.StatusUnauthorized, st)
	}
	require.EqualValues(t, 1+callers, runs.Load(), "one argon2id run per wrong secret")

	require.Equal(t, http.StatusOK, ccRequest(t, ts, basicAuth("chosen-client", "a secret a person chose")).Status)
	require.EqualValues(t, 1+callers, runs.Load(), "the verified secret needs no run")
}

// TestWrongSecretBudgetThrottles: past its failure budget a client's
// unverified secrets are 429 too_many_requests with Retry-After and cost no
// argon2id run; the secret it verified before still works.
func TestWrongSecretBudgetThrottles(t *testing.T) {
	t.Parallel()
	ts, runs := chosenSecretServer(t)
	require.Equal(t, http.StatusOK, ccRequest(t, ts, basicAuth("chosen-client", "a secret a person chose")).Status)
	var r response
	for i := 0; i < 100; i++ {
		r = ccRequest(t, ts, basicAuth("chosen-client", fmt.Sprintf("guess %d", i)))
		if r.Status != http.StatusUnauthorized {
			break
		}
	}
	requireError(t, r, http.StatusTooManyRequests, "too_many_requests")
	secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After %q", r.Header.Get("Retry-After"))
	require.Positive(t, secs)
	before := runs.Load()
	require.LessOrEqual(t, before, int64(12), "the budget is ten wrong secrets")

	requireError(t, ts.post(t, "/oauth2/introspect", "form", map[string]string{"token": "x"}, basicAuth("chosen-client", "another guess")),
		http.StatusTooManyRequests, "too_many_requests")
	require.Equal(t, before, runs.Load(), "a throttled check ran argon2id")
	require.Equal(t, http.StatusOK, ccRequest(t, ts, basicAuth("chosen-client", "a secret a person chose")).Status,
		"the client's verified secret works while guesses are throttled")
}

// TestClientAuthErrorHidesAuthMethod: a refused client authentication
// does not tell an unauthenticated caller which method the client is
// registered for, nor whether the client exists.
func TestClientAuthErrorHidesAuthMethod(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	var bodies []string
	for _, a := range []auth{
		basicAuth("post-client", ts.secrets["post-client"]),  // registered for client_secret_post
		postAuth("basic-client", ts.secrets["basic-client"]), // registered for client_secret_basic
		postAuth("public-client", "made-up"),                 // registered for none
		basicAuth("basic-client", "wrong"),
		basicAuth("nobody", "secret"),
	} {
		r := ccRequest(t, ts, a)
		requireError(t, r, http.StatusUnauthorized, "invalid_client")
		for _, method := range []string{"client_secret_basic", "client_secret_post", "'none'", "does not exist"} {
			require.NotContains(t, string(r.Body), method, "%s %s", a.kind, a.id)
		}
		bodies = append(bodies, string(r.Body))
	}
	for _, b := range bodies[1:] {
		require.Equal(t, bodies[0], b, "every refusal reads the same")
	}
}
