package server_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// sendFrom sends method path with form (the query of a GET, the body of a
// POST) as a caller at addr behind the trusted loopback proxy, without
// following redirects.
func (ts *testServer) sendFrom(t *testing.T, addr, method, path string, form url.Values) response {
	t.Helper()
	target, body := ts.URL+path, ""
	if method == http.MethodGet {
		target += "?" + form.Encode()
	} else {
		body = form.Encode()
	}
	req, err := http.NewRequestWithContext(t.Context(), method, target, strings.NewReader(body))
	require.NoError(t, err)
	if method != http.MethodGet {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("X-Forwarded-For", addr)
	client := *ts.http
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return ts.doWith(t, &client, req)
}

// storedBytes returns how many rows table holds and the bytes of their
// text columns together.
func storedBytes(t *testing.T, ts *testServer, table string) (rows, size int64) {
	t.Helper()
	err := ts.Store.SQLDB().QueryRowContext(t.Context(), `SELECT COUNT(*), COALESCE(SUM(LENGTH(signature) + LENGTH(request_id) +
		LENGTH(client_id) + LENGTH(subject) + LENGTH(requested_scopes) + LENGTH(granted_scopes) + LENGTH(requested_audience) +
		LENGTH(granted_audience) + LENGTH(form) + LENGTH(session_data) + LENGTH(extra) + LENGTH(access_signature) +
		LENGTH(origin)), 0) FROM `+table).Scan(&rows, &size)
	require.NoError(t, err)
	return rows, size
}

// junk is n parameters of size bytes each that no flow reads.
func junk(form url.Values, n, size int) url.Values {
	for i := range n {
		form.Set(fmt.Sprintf("junk%d", i), strings.Repeat("x", size))
	}
	return form
}

func authorizeForm(clientID string) url.Values {
	return url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {callback},
		"scope": {"openid profile"}, "state": {"state-1234567890"}, "nonce": {"nonce-1234567890"},
		"code_challenge": {strings.Repeat("c", 43)}, "code_challenge_method": {"S256"}}
}

// What an unauthenticated caller makes the database keep is small and
// does not grow with junk parameters: a 30 KB parameter is refused; junk
// under the caps is not stored. Before these bounds, 49 KiB were kept per
// authorization request and 60 to 69 KiB per device or pushed request.
func TestJunkParametersAreNotStored(t *testing.T) {
	t.Parallel()
	ts := newDeviceServer(t, withTrustedLoopbackProxy())
	const maxRowBytes = 2 << 10
	for _, tc := range []struct {
		name, method, path, table string
		form                      url.Values
	}{
		{"authorization request", http.MethodGet, "/oauth2/auth", "oauth2_challenge", authorizeForm("public-client")},
		{"pushed authorization request", http.MethodPost, "/oauth2/par", "oauth2_par", authorizeForm("public-client")},
		{"device authorization", http.MethodPost, "/oauth2/device/auth", "oauth2_device", url.Values{"client_id": {"device-client"}, "scope": {"openid"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.sendFrom(t, "203.0.113.1", tc.method, tc.path, junk(tc.form, 1, 30<<10))
			if tc.method == http.MethodGet {
				require.Equal(t, "invalid_request", flowCallbackError(t, r), "a 30 KB parameter is refused")
			} else {
				requireError(t, r, http.StatusBadRequest, "invalid_request")
			}
			rows, _ := storedBytes(t, ts, tc.table)
			require.Zero(t, rows, "nothing stored for a refused request")

			const requests = 5
			for i := range requests {
				r := ts.sendFrom(t, fmt.Sprintf("203.0.113.%d", 10+i), tc.method, tc.path, junk(tc.form, 7, 2000))
				require.Less(t, r.Status, 400, "junk under the caps is accepted: %s", r.Body)
			}
			rows, size := storedBytes(t, ts, tc.table)
			require.Equal(t, int64(requests), rows)
			t.Logf("%s: %d bytes per request stored", tc.table, size/rows)
			require.Less(t, size/rows, int64(maxRowBytes), "bytes stored per request with 14 KB of junk")
		})
	}
}

// flowCallbackError is the error an authorization request answered with
// at the client's callback.
func flowCallbackError(t *testing.T, r response) string {
	t.Helper()
	u, err := url.Parse(location(t, r))
	require.NoError(t, err)
	return u.Query().Get("error")
}

// Each parameter has a cap (larger for a request object), and so has
// their sum; the answer names the parameter.
func TestParameterCaps(t *testing.T) {
	t.Parallel()
	ts := newDeviceServer(t)
	over := strings.Repeat("s", 2<<10+1)
	for _, tc := range []struct {
		name string
		form url.Values
		path string
	}{
		{"state over 2 KiB", func() url.Values { f := authorizeForm("public-client"); f.Set("state", over); return f }(), "/oauth2/par"},
		{"login_hint over 2 KiB", func() url.Values { f := authorizeForm("public-client"); f.Set("login_hint", over); return f }(), "/oauth2/par"},
		{"all together over 16 KiB", junk(authorizeForm("public-client"), 9, 2000), "/oauth2/par"},
		{"device scope over 2 KiB", url.Values{"client_id": {"device-client"}, "scope": {over}}, "/oauth2/device/auth"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.sendFrom(t, "203.0.113.1", http.MethodPost, tc.path, tc.form)
			requireError(t, r, http.StatusBadRequest, "invalid_request")
		})
	}
	r := ts.sendFrom(t, "203.0.113.1", http.MethodGet, "/oauth2/auth", func() url.Values {
		f := authorizeForm("public-client")
		f.Set("login_hint", over)
		return f
	}())
	u, err := url.Parse(location(t, r))
	require.NoError(t, err)
	require.Equal(t, "invalid_request", u.Query().Get("error"))
	require.Contains(t, u.Query().Get("error_description"), "'login_hint'")
	require.Equal(t, "state-1234567890", u.Query().Get("state"))
}

// withPendingBounds sets the bounds of waiting requests.
func withPendingBounds(perClient, perAddress int) option {
	return func(o *serverOptions) { o.cfg.PendingPerClient, o.cfg.PendingPerAddress = perClient, perAddress }
}

// The requests waiting at once are bounded per caller address and per
// client, counted in the database: beyond either, 429 with Retry-After.
func TestPendingRequestsAreBoundedPerAddressAndClient(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, method, path string
		form               url.Values
		ok                 int
	}{
		{"authorization requests", http.MethodGet, "/oauth2/auth", authorizeForm("public-client"), http.StatusFound},
		{"pushed authorization requests", http.MethodPost, "/oauth2/par", authorizeForm("public-client"), http.StatusCreated},
		{"device authorizations", http.MethodPost, "/oauth2/device/auth", url.Values{"client_id": {"device-client"}}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := newDeviceServer(t, withTrustedLoopbackProxy(), withPendingBounds(5, 3))
			send := func(addr string) response { return ts.sendFrom(t, addr, tc.method, tc.path, tc.form) }
			for range 3 {
				require.Equal(t, tc.ok, send("203.0.113.1").Status)
			}
			r := send("203.0.113.1")
			require.Equal(t, http.StatusTooManyRequests, r.Status, "the address's bound: %s", r.Body)
			require.Equal(t, "60", r.Header.Get("Retry-After"))
			if tc.method == http.MethodPost {
				requireError(t, r, http.StatusTooManyRequests, "too_many_requests")
			} else {
				flowRequirePage(t, r, http.StatusTooManyRequests)
			}
			// IPv6 callers count per /64.
			require.Equal(t, tc.ok, send("2001:db8:5:6::1").Status)
			require.Equal(t, tc.ok, send("2001:db8:5:6::2").Status)
			require.Equal(t, http.StatusTooManyRequests, send("198.51.100.7").Status, "the client's bound")
		})
	}
}
