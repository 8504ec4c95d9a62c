package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestConcurrency mixes issuing, introspection and revocation from many
// goroutines against one SQLite file: no 5xx, no transport error, and
// every revocation that answered 200 holds afterwards.
func TestConcurrency(t *testing.T) {
	t.Parallel()
	const (
		workers       = 32
		maxIterations = 200
		budget        = 2 * time.Second
	)
	ts := newTestServer(t)
	owners := []string{"basic-client", "post-client", "other-client"}

	var (
		requests, fiveXX, transportErrs, unexpected atomic.Int64
		mu                                          sync.Mutex
		problems                                    []string
	)
	report := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	// call never fails the test from a goroutine; it counts and reports.
	call := func(ctx context.Context, path, clientID string, fields map[string]string) (int, map[string]any) {
		requests.Add(1)
		a := ts.as(clientID)
		form := url.Values{}
		for k, v := range fields {
			form.Set(k, v)
		}
		if a.kind == "post" {
			form.Set("client_id", a.id)
			form.Set("client_secret", a.secret)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+path, strings.NewReader(form.Encode()))
		if err != nil {
			panic(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if a.kind == "basic" {
			req.SetBasicAuth(url.QueryEscape(a.id), url.QueryEscape(a.secret))
		}
		res, err := ts.http.Do(req)
		if err != nil {
			transportErrs.Add(1)
			report("%s: transport: %v", path, err)
			return 0, nil
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			transportErrs.Add(1)
			report("%s: read body: %v", path, err)
			return 0, nil
		}
		if res.StatusCode >= 500 {
			fiveXX.Add(1)
			report("%s: %d %s", path, res.StatusCode, body)
		}
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		return res.StatusCode, m
	}

	revoked := make([][]string, workers)
	deadline := time.Now().Add(budget)
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := owners[w%len(owners)]
			for i := 0; i < maxIterations && time.Now().Before(deadline); i++ {
				status, m := call(ctx, "/oauth2/token", owner, map[string]string{"grant_type": "client_credentials", "scope": "read"})
				tok, _ := m["access_token"].(string)
				if status != http.StatusOK || tok == "" {
					unexpected.Add(1)
					report("issue: %d %v", status, m)
					continue
				}
				if status, m := call(ctx, "/oauth2/introspect", owners[(w+1)%len(owners)], map[string]string{"token": tok}); status != http.StatusOK || m["active"] != true {
					unexpected.Add(1)
					report("introspect fresh token: %d %v", status, m)
				}
				if i%2 == 1 {
					continue
				}
				if status, m := call(ctx, "/oauth2/revoke", owner, map[string]string{"token": tok}); status != http.StatusOK {
					unexpected.Add(1)
					report("revoke: %d %v", status, m)
					continue
				}
				revoked[w] = append(revoked[w], tok)
			}
		}()
	}
	wg.Wait()
	t.Logf("%d requests in the mixed phase", requests.Load())

	// Every revocation that answered 200 holds.
	var stillActive atomic.Int64
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, tok := range revoked[w] {
				status, m := call(ctx, "/oauth2/introspect", "other-client", map[string]string{"token": tok})
				if status != http.StatusOK || m["active"] != false {
					stillActive.Add(1)
					report("revoked token: %d %v", status, m)
				}
			}
		}()
	}
	wg.Wait()

	for _, p := range problems {
		t.Error(p)
	}
	require.Zero(t, transportErrs.Load(), "transport errors")
	require.Zero(t, fiveXX.Load(), "5xx answers")
	require.Zero(t, unexpected.Load(), "unexpected answers")
	require.Zero(t, stillActive.Load(), "revoked tokens still active")
	n := 0
	for _, r := range revoked {
		n += len(r)
	}
	require.Positive(t, n, "some tokens were revoked")
}
