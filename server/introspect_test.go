package server_test

import (
	"bytes"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const inactive = `{"active":false}`

// introspectFixture holds the tokens the table refers to by name.
type introspectFixture struct {
	cc        string    // access token of basic-client (client_credentials, scope "read write")
	ccAt      time.Time // when cc was issued
	grant     grant     // basic-client, for alice, scope "read offline_access"
	grantAt   time.Time // issuedAt of grant
	used      grant     // a grant whose refresh token was rotated away
	revoked   string    // a revoked access token
	bearer    string    // access token of other-client, to call with
	refreshed string    // the refresh token that replaced used.Refresh
}

func newIntrospectFixture(t *testing.T, ts *testServer) introspectFixture {
	var fx introspectFixture
	fx.ccAt = time.Now()
	fx.cc = ts.clientCredentials(t, "basic-client", "read write")
	fx.grantAt = time.Now().UTC()
	fx.grant = mintGrant(t, ts, "basic-client", fx.grantAt, "read", "offline_access")
	fx.used = issueGrant(t, ts, "basic-client", "read", "offline_access")
	fx.refreshed = ts.refreshOK(t, "basic-client", fx.used.Refresh).Refresh
	fx.revoked = ts.clientCredentials(t, "basic-client", "read")
	r := ts.post(t, "/oauth2/revoke", "form", map[string]string{"token": fx.revoked}, ts.as("basic-client"))
	require.Equal(t, http.StatusOK, r.Status)
	fx.bearer = ts.clientCredentials(t, "other-client", "read")
	return fx
}

func TestIntrospect(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	fx := newIntrospectFixture(t, ts)
	down := newTestServer(t)
	downBearer := down.clientCredentials(t, "other-client", "read")
	require.NoError(t, down.Store.Close())

	// want checks an active answer beyond the common fields.
	type want func(t *testing.T, got map[string]any)
	accessOfCC := func(t *testing.T, got map[string]any) {
		require.Equal(t, "read write", got["scope"])
		require.Equal(t, "basic-client", got["client_id"])
		require.Equal(t, "basic-client", got["sub"], "client_credentials: the client is the subject")
		require.Equal(t, "access_token", got["token_use"])
		requireUnix(t, fx.ccAt.Add(time.Hour), got["exp"], 2*time.Second)
		requireUnix(t, fx.ccAt, got["iat"], 2*time.Second)
	}
	accessOfGrant := func(t *testing.T, got map[string]any) {
		require.Equal(t, "read offline_access", got["scope"])
		require.Equal(t, "alice", got["sub"])
		require.Equal(t, "alice", got["username"])
		require.Equal(t, "access_token", got["token_use"])
		require.Equal(t, float64(fx.grantAt.Add(time.Hour).Round(time.Second).Unix()), got["exp"])
	}
	refreshOfGrant := func(t *testing.T, got map[string]any) {
		require.Equal(t, "read offline_access", got["scope"])
		require.Equal(t, "basic-client", got["client_id"])
		require.Equal(t, "alice", got["sub"])
		require.Equal(t, "refresh_token", got["token_use"])
		require.Equal(t, float64(fx.grantAt.Add(720*time.Hour).Round(time.Second).Unix()), got["exp"], "exp is the refresh token's expiry")
		require.Equal(t, float64(fx.grantAt.Unix()), got["iat"])
	}
	other := ts.as("other-client")

	for _, tc := range []struct {
		name       string
		down       bool
		caller     auth
		token      string
		omitToken  bool
		hint       string
		raw        string // raw form body
		wantStatus int
		wantError  string
		wantBody   string // exact body, e.g. inactive
		want       want   // checks of an active answer
	}{
		{name: "active access token", caller: other, token: fx.cc, wantStatus: 200, want: accessOfCC},
		{name: "active access token of a user grant", caller: other, token: fx.grant.Access, wantStatus: 200, want: accessOfGrant},
		{name: "active refresh token", caller: other, token: fx.grant.Refresh, wantStatus: 200, want: refreshOfGrant},
		{name: "rotated-in refresh token", caller: other, token: fx.refreshed, wantStatus: 200},
		{name: "caller by client_secret_post", caller: ts.as("post-client"), token: fx.cc, wantStatus: 200, want: accessOfCC},
		{name: "caller by bearer access token", caller: bearerAuth(fx.bearer), token: fx.cc, wantStatus: 200, want: accessOfCC},
		{name: "caller is the token's own client", caller: ts.as("basic-client"), token: fx.cc, wantStatus: 200, want: accessOfCC},
		{name: "wrong hint is only a hint", caller: other, token: fx.grant.Access, hint: "refresh_token", wantStatus: 200, want: accessOfGrant},
		{name: "right refresh hint", caller: other, token: fx.grant.Refresh, hint: "refresh_token", wantStatus: 200, want: refreshOfGrant},
		{name: "unknown hint", caller: other, token: fx.grant.Refresh, hint: "foo", wantStatus: 200, want: refreshOfGrant},

		{name: "unknown token", caller: other, token: "ory_at_unknown.unknown", wantStatus: 200, wantBody: inactive},
		{name: "malformed token %%%", caller: other, token: "%%%", wantStatus: 200, wantBody: inactive},
		{name: "malformed token a.b.c", caller: other, token: "a.b.c", wantStatus: 200, wantBody: inactive},
		{name: "token with a forged signature", caller: other, token: fx.cc[:len(fx.cc)-4] + "AAAA", wantStatus: 200, wantBody: inactive},
		{name: "revoked token", caller: other, token: fx.revoked, wantStatus: 200, wantBody: inactive},
		{name: "used refresh token", caller: other, token: fx.used.Refresh, hint: "refresh_token", wantStatus: 200, wantBody: inactive},
		{name: "access token ended by rotation", caller: other, token: fx.used.Access, wantStatus: 200, wantBody: inactive},

		{name: "bearer identical to the token", caller: bearerAuth(fx.cc), token: fx.cc, wantStatus: 401, wantError: "invalid_client"},
		{name: "inactive bearer", caller: bearerAuth(fx.revoked), token: fx.cc, wantStatus: 401, wantError: "invalid_client"},
		{name: "unknown bearer", caller: bearerAuth("ory_at_x.y"), token: fx.cc, wantStatus: 401, wantError: "invalid_client"},
		{name: "refresh token as bearer", caller: bearerAuth(fx.grant.Refresh), token: fx.cc, wantStatus: 401, wantError: "invalid_client"},
		{name: "public client caller", caller: ts.as("public-client"), token: fx.cc, wantStatus: 401, wantError: "invalid_client"},
		{name: "wrong secret", caller: basicAuth("other-client", "wrong"), token: fx.cc, wantStatus: 401, wantError: "invalid_client"},
		{name: "unknown caller", caller: postAuth("nobody", "x"), token: fx.cc, wantStatus: 401, wantError: "invalid_client"},
		{name: "no auth", caller: noAuth, token: fx.cc, wantStatus: 401, wantError: "invalid_client"},
		{name: "no auth, unknown token", caller: noAuth, token: "nope", wantStatus: 401, wantError: "invalid_client"},
		{name: "missing token", caller: other, omitToken: true, wantStatus: 400, wantError: "invalid_request"},
		{name: "malformed body", caller: other, raw: "token=%zz", wantStatus: 400, wantError: "invalid_request"},
		{name: "body over 64 KiB", caller: other, raw: "token=" + strings.Repeat("a", 70<<10), wantStatus: 400, wantError: "invalid_request"},

		{name: "database down, basic caller", down: true, caller: down.as("other-client"), token: "x", wantStatus: 503, wantError: "temporarily_unavailable"},
		{name: "database down, post caller", down: true, caller: down.as("post-client"), token: "x", wantStatus: 503, wantError: "temporarily_unavailable"},
		{name: "database down, bearer caller", down: true, caller: bearerAuth(downBearer), token: "x", wantStatus: 503, wantError: "temporarily_unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := ts
			if tc.down {
				srv = down
			}
			fields := map[string]string{}
			if !tc.omitToken {
				fields["token"] = tc.token
			}
			if tc.hint != "" {
				fields["token_type_hint"] = tc.hint
			}
			var r response
			if tc.raw != "" {
				r = srv.raw(t, http.MethodPost, "/oauth2/introspect", "application/x-www-form-urlencoded", tc.raw, tc.caller)
			} else {
				r = srv.post(t, "/oauth2/introspect", "form", fields, tc.caller)
			}
			require.Contains(t, r.Header.Get("Cache-Control"), "no-store")
			require.Contains(t, r.Header.Get("Content-Type"), "application/json")
			if tc.wantError != "" {
				requireError(t, r, tc.wantStatus, tc.wantError)
				if tc.wantStatus == http.StatusUnauthorized && tc.caller.kind == "bearer" {
					requireChallenge(t, r, challengeBearer)
				}
				if tc.wantStatus == http.StatusUnauthorized && tc.caller.kind == "basic" {
					requireChallenge(t, r, challengeBasic)
				}
				return
			}
			require.Equal(t, tc.wantStatus, r.Status, "%s", r.Body)
			if tc.wantBody != "" {
				require.Equal(t, tc.wantBody, string(bytes.TrimRight(r.Body, "\n")))
				return
			}
			requireActiveShape(t, srv, r.json(t))
			if tc.want != nil {
				tc.want(t, r.json(t))
			}
		})
	}

	t.Run("GET is 405", func(t *testing.T) {
		t.Parallel()
		r := ts.get(t, "/oauth2/introspect")
		requireError(t, r, http.StatusMethodNotAllowed, "invalid_request")
		require.Equal(t, "POST", r.Header.Get("Allow"))
	})
	t.Run("token in the query string is not read", func(t *testing.T) {
		t.Parallel()
		r := ts.raw(t, http.MethodPost, "/oauth2/introspect?token="+fx.cc, "application/x-www-form-urlencoded", "", other)
		requireError(t, r, http.StatusBadRequest, "invalid_request")
	})
}

// requireActiveShape checks the fields every active answer has, and that
// it has no others.
func requireActiveShape(t *testing.T, ts *testServer, got map[string]any) {
	t.Helper()
	keys := make([]string, 0, len(got))
	for k := range got {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"active", "client_id", "exp", "iat", "iss", "scope", "sub", "token_type", "token_use"}
	if _, ok := got["username"]; ok {
		// A token of a user's sign-in names the user (RFC 7662 §2.2).
		want = append(want, "username")
	}
	require.Equal(t, want, keys)
	require.Equal(t, true, got["active"])
	require.Equal(t, ts.URL, got["iss"])
	require.Equal(t, "Bearer", got["token_type"])
	require.Less(t, got["iat"].(float64), got["exp"].(float64))
}

func requireUnix(t *testing.T, want time.Time, got any, delta time.Duration) {
	t.Helper()
	f, ok := got.(float64)
	require.True(t, ok, "a number of seconds: %v", got)
	require.WithinDuration(t, want, time.Unix(int64(f), 0), delta)
}

// TestExpiry holds the one sleep of the suite: every expiry check shares it.
func TestExpiry(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withLifespans(time.Second, time.Second))
	cc := ts.clientCredentials(t, "basic-client", "read")
	g := issueGrant(t, ts, "basic-client", "read", "offline_access")
	bearer := ts.clientCredentials(t, "other-client", "read")
	for _, tok := range []string{cc, g.Access, g.Refresh} {
		require.True(t, ts.active(t, tok), "active before it expires")
	}

	time.Sleep(2100 * time.Millisecond)

	t.Run("introspection", func(t *testing.T) {
		for name, tok := range map[string]string{"client_credentials": cc, "access": g.Access, "refresh": g.Refresh} {
			r := ts.introspect(t, tok)
			require.Equal(t, http.StatusOK, r.Status)
			require.Equal(t, inactive, string(bytes.TrimRight(r.Body, "\n")), name)
		}
	})
	t.Run("expired bearer cannot introspect", func(t *testing.T) {
		r := ts.post(t, "/oauth2/introspect", "form", map[string]string{"token": cc}, bearerAuth(bearer))
		requireError(t, r, http.StatusUnauthorized, "invalid_client")
	})
	t.Run("expired refresh token is invalid_grant", func(t *testing.T) {
		requireError(t, ts.refresh(t, "basic-client", g.Refresh), http.StatusBadRequest, "invalid_grant")
	})
	t.Run("revoking an expired token is a success", func(t *testing.T) {
		for _, tok := range []string{cc, g.Refresh} {
			r := ts.post(t, "/oauth2/revoke", "form", map[string]string{"token": tok}, ts.as("basic-client"))
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			require.Empty(t, r.Body)
		}
	})
}

// TestIntrospectStorageFault: when the caller authenticates but the token
// lookup fails, the answer is 503, not {"active":false}: a resource server
// must not take a database outage for a revocation, nor cache it as one.
func TestIntrospectStorageFault(t *testing.T) {
	t.Parallel()
	ts, failLookup, _, _ := newFaultyServer(t)
	tok := ts.clientCredentials(t, "basic-client", "read")
	bearer := ts.clientCredentials(t, "other-client", "read")
	failLookup.Store(true)
	for _, caller := range []auth{ts.as("other-client"), ts.as("post-client"), bearerAuth(bearer)} {
		r := ts.post(t, "/oauth2/introspect", "form", map[string]string{"token": tok}, caller)
		requireError(t, r, http.StatusServiceUnavailable, "temporarily_unavailable")
	}
	failLookup.Store(false)
	require.True(t, ts.active(t, tok))
}
