package server_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/storage/conformance"
)

// forEachBackend runs fn on a SQLite file and, when
// LATCH_TEST_POSTGRES_DSN names a database, on PostgreSQL (a schema of its
// own, dropped at the end). fn starts its servers with the options it is
// given.
func forEachBackend(t *testing.T, fn func(t *testing.T, backend ...option)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t)
	})
	dsn := os.Getenv("LATCH_TEST_POSTGRES_DSN")
	if dsn == "" {
		return
	}
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, withPostgres(t, dsn))
	})
}

// withPostgres serves from PostgreSQL at dsn, in a fresh schema.
func withPostgres(t *testing.T, dsn string) option {
	dsn = conformance.PostgresSchema(t, dsn)
	return func(o *serverOptions) { o.driver, o.dsn = "postgres", dsn }
}

// withGrace opens the store with a refresh token grace period.
func withGrace(grace time.Duration) option {
	return func(o *serverOptions) { o.grace = grace }
}

// race sends every request of reqs with client at the same moment
// (conformance.Together releases them). It returns the answers in the order of reqs. Transport errors fail the test
// after every answer is in (require must not run off the test's
// goroutine).
func race(t *testing.T, client *http.Client, reqs []*http.Request) []response {
	t.Helper()
	out := make([]response, len(reqs))
	errs := make([]error, len(reqs))
	conformance.Together(len(reqs), func(i int) {
		res, err := client.Do(reqs[i])
		if err != nil {
			errs[i] = err
			return
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		errs[i] = err
		out[i] = response{Status: res.StatusCode, Header: res.Header, Body: body}
	})
	for i, err := range errs {
		require.NoError(t, err, "request %d of the race", i)
		if stackTrace.Match(out[i].Body) {
			t.Errorf("request %d of the race: the answer carries a stack trace: %s", i, out[i].Body)
		}
	}
	return out
}

// raceForm sends n copies of one form POST to path at once, authenticated
// as a.
func (ts *testServer) raceForm(t *testing.T, n int, path string, fields map[string]string, a auth) []response {
	t.Helper()
	reqs := make([]*http.Request, n)
	for i := range reqs {
		reqs[i] = ts.formRequest(t, path, fields, a)
	}
	return race(t, ts.http, reqs)
}

// formRequest is the request ts.post(t, path, "form", fields, a) sends.
func (ts *testServer) formRequest(t *testing.T, path string, fields map[string]string, a auth) *http.Request {
	t.Helper()
	form := url.Values{}
	for k, v := range fields {
		form.Set(k, v)
	}
	switch a.kind {
	case "post":
		form.Set("client_id", a.id)
		form.Set("client_secret", a.secret)
	case "id":
		form.Set("client_id", a.id)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.URL+path, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	switch a.kind {
	case "basic":
		req.SetBasicAuth(url.QueryEscape(a.id), url.QueryEscape(a.secret))
	case "bearer":
		req.Header.Set("Authorization", "Bearer "+a.secret)
	}
	return req
}

// requireOneWinner checks the answers of a race for one single-use thing:
// exactly one is 200, every other is loserStatus with error loserCode
// (never a 5xx). It returns the winner's answer.
func requireOneWinner(t *testing.T, answers []response, loserStatus int, loserCode string) response {
	t.Helper()
	var winners []response
	var got []string
	for _, r := range answers {
		got = append(got, fmt.Sprintf("%d %s", r.Status, bytes.TrimSpace(r.Body[:min(len(r.Body), 160)])))
		if r.Status == http.StatusOK {
			winners = append(winners, r)
		}
	}
	require.Lenf(t, winners, 1, "exactly one of %d concurrent uses wins; answers:\n%s", len(answers), strings.Join(got, "\n"))
	for _, r := range answers {
		if r.Status != http.StatusOK {
			requireError(t, r, loserStatus, loserCode)
		}
	}
	return winners[0]
}
