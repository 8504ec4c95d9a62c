package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/storage"
)

// The exact error bodies of the revocation endpoint.
const (
	bodyMissingToken = `{"error":"invalid_request","error_description":"The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed. The 'token' parameter is missing."}`
	bodyBadJSON      = `{"error":"invalid_request","error_description":"The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed. The request body is not a JSON object of string fields."}`
	bodyBadForm      = `{"error":"invalid_request","error_description":"The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed. The request body is not a valid form."}`
	bodyBadClient    = `{"error":"invalid_client","error_description":"Client authentication failed (e.g., unknown client, no client authentication included, or unsupported authentication method)."}`
	bodyNoClient     = `{"error":"invalid_client","error_description":"Client authentication failed (e.g., unknown client, no client authentication included, or unsupported authentication method). Client authentication is missing: use HTTP Basic, client_id and client_secret in the body, or a client assertion."}`
	bodyOtherClient  = `{"error":"unauthorized_client","error_description":"The client is not authorized to request a token using this method. Make sure that client id and secret are correctly specified and that the client exists."}`
	bodyUnavailable  = `{"error":"temporarily_unavailable","error_description":"The authorization server is currently unable to handle the request due to a temporary overloading or maintenance of the server."}`
)

// revokeFixture is what a case revokes and what must hold afterwards.
type revokeFixture struct {
	token string
	gone  []string // inactive after the request
	kept  []string // still active after the request
}

// Fixture makers; owner is the client the token is issued to.
func ccToken(owner string) func(*testing.T, *testServer) revokeFixture {
	return func(t *testing.T, ts *testServer) revokeFixture {
		tok := ts.clientCredentials(t, owner, "read")
		return revokeFixture{token: tok, gone: []string{tok}}
	}
}

func grantToken(owner string, refresh bool) func(*testing.T, *testServer) revokeFixture {
	return func(t *testing.T, ts *testServer) revokeFixture {
		g := issueGrant(t, ts, owner, "read", "offline_access")
		tok := g.Access
		if refresh {
			tok = g.Refresh
		}
		return revokeFixture{token: tok, gone: []string{g.Access, g.Refresh}}
	}
}

func othersToken(owner string, refresh bool) func(*testing.T, *testServer) revokeFixture {
	return func(t *testing.T, ts *testServer) revokeFixture {
		g := issueGrant(t, ts, owner, "read", "offline_access")
		tok := g.Access
		if refresh {
			tok = g.Refresh
		}
		return revokeFixture{token: tok, kept: []string{g.Access, g.Refresh}}
	}
}

func fixedToken(tok string) func(*testing.T, *testServer) revokeFixture {
	return func(*testing.T, *testServer) revokeFixture { return revokeFixture{token: tok} }
}

// expiredAccess: the access token expired an hour ago, the refresh token of
// its grant has not.
func expiredAccess(t *testing.T, ts *testServer) revokeFixture {
	g := mintGrant(t, ts, "basic-client", time.Now().Add(-2*time.Hour), "read", "offline_access")
	require.False(t, ts.active(t, g.Access), "fixture: the access token has expired")
	require.True(t, ts.active(t, g.Refresh), "fixture: the refresh token has not")
	return revokeFixture{token: g.Access, gone: []string{g.Refresh}}
}

func alreadyRevoked(t *testing.T, ts *testServer) revokeFixture {
	g := issueGrant(t, ts, "basic-client", "read", "offline_access")
	r := ts.post(t, "/oauth2/revoke", "form", map[string]string{"token": g.Refresh}, ts.as("basic-client"))
	require.Equal(t, http.StatusOK, r.Status, "fixture: first revocation: %s", r.Body)
	return revokeFixture{token: g.Refresh, gone: []string{g.Access, g.Refresh}}
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	down := newTestServer(t)
	require.NoError(t, down.Store.Close(), "the database of down is gone")

	authFor := func(ts *testServer, kind string) auth {
		switch kind {
		case "basic":
			return ts.as("basic-client")
		case "post":
			return ts.as("post-client")
		case "public":
			return ts.as("public-client")
		case "bad":
			return basicAuth("basic-client", "wrong-secret")
		case "badpost":
			return postAuth("post-client", "wrong-secret")
		case "unknown":
			return basicAuth("nobody", "secret")
		case "postAsBasic":
			return basicAuth("post-client", ts.secrets["post-client"])
		case "publicWithSecret":
			return postAuth("public-client", "made-up")
		}
		return noAuth
	}

	for _, tc := range []struct {
		name        string
		enc         string // form | json
		auth        string // see authFor
		setup       func(*testing.T, *testServer) revokeFixture
		hint        string
		noToken     bool
		contentType string // overrides the one of enc
		raw         string // a raw body instead of the fields
		down        bool   // against the server whose database is closed
		wantStatus  int
		wantBody    string // exact JSON; "" for an empty body
	}{
		// Success: a token of the caller is revoked, however it is sent.
		{name: "form basic access token", enc: "form", auth: "basic", setup: ccToken("basic-client"), wantStatus: 200},
		{name: "form post access token", enc: "form", auth: "post", setup: ccToken("post-client"), wantStatus: 200},
		{name: "form basic refresh token", enc: "form", auth: "basic", setup: grantToken("basic-client", true), wantStatus: 200},
		{name: "form public client by client_id", enc: "form", auth: "public", setup: grantToken("public-client", true), wantStatus: 200},
		{name: "form public client access token", enc: "form", auth: "public", setup: grantToken("public-client", false), wantStatus: 200},
		{name: "json basic access token", enc: "json", auth: "basic", setup: ccToken("basic-client"), wantStatus: 200},
		{name: "json post refresh token", enc: "json", auth: "post", setup: grantToken("post-client", true), wantStatus: 200},
		{name: "json public client by client_id", enc: "json", auth: "public", setup: grantToken("public-client", true), wantStatus: 200},
		{name: "json with charset", enc: "json", auth: "basic", contentType: "application/json; charset=utf-8",
			setup: ccToken("basic-client"), wantStatus: 200},

		// token_type_hint is a hint, never a filter.
		{name: "hint access_token, right", enc: "form", auth: "basic", hint: "access_token", setup: grantToken("basic-client", false), wantStatus: 200},
		{name: "hint refresh_token, right", enc: "form", auth: "basic", hint: "refresh_token", setup: grantToken("basic-client", true), wantStatus: 200},
		{name: "hint refresh_token for an access token", enc: "form", auth: "basic", hint: "refresh_token", setup: grantToken("basic-client", false), wantStatus: 200},
		{name: "hint access_token for a refresh token", enc: "json", auth: "basic", hint: "access_token", setup: grantToken("basic-client", true), wantStatus: 200},
		{name: "unknown hint is ignored", enc: "form", auth: "basic", hint: "foo", setup: grantToken("basic-client", false), wantStatus: 200},
		{name: "unknown hint is ignored (json)", enc: "json", auth: "post", hint: "foo", setup: ccToken("post-client"), wantStatus: 200},

		// Nothing to revoke is still a success.
		{name: "unknown token", enc: "form", auth: "basic", setup: fixedToken("ory_at_unknown.unknown"), wantStatus: 200},
		{name: "malformed token", enc: "json", auth: "basic", setup: fixedToken("%%%"), wantStatus: 200},
		{name: "expired access token, cascades to its refresh token", enc: "form", auth: "basic", setup: expiredAccess, wantStatus: 200},
		{name: "already revoked", enc: "form", auth: "basic", setup: alreadyRevoked, wantStatus: 200},

		// Another client's token is refused and kept.
		{name: "another client's access token", enc: "form", auth: "basic", setup: othersToken("other-client", false),
			wantStatus: 400, wantBody: bodyOtherClient},
		{name: "another client's refresh token (json)", enc: "json", auth: "post", setup: othersToken("basic-client", true),
			wantStatus: 400, wantBody: bodyOtherClient},
		{name: "public client, confidential client's token", enc: "form", auth: "public", setup: othersToken("basic-client", true),
			wantStatus: 400, wantBody: bodyOtherClient},

		// Bad requests.
		{name: "missing token (form)", enc: "form", auth: "basic", noToken: true, wantStatus: 400, wantBody: bodyMissingToken},
		{name: "missing token (json)", enc: "json", auth: "post", noToken: true, wantStatus: 400, wantBody: bodyMissingToken},
		{name: "missing token and no auth", enc: "form", auth: "none", noToken: true, wantStatus: 400, wantBody: bodyMissingToken},
		{name: "empty body", enc: "form", auth: "basic", raw: " ", wantStatus: 400, wantBody: bodyMissingToken},
		{name: "malformed json", enc: "json", auth: "basic", raw: `{"token":`, wantStatus: 400, wantBody: bodyBadJSON},
		{name: "json token not a string", enc: "json", auth: "basic", raw: `{"token":5}`, wantStatus: 400, wantBody: bodyBadJSON},
		{name: "json array", enc: "json", auth: "basic", raw: `["token"]`, wantStatus: 400, wantBody: bodyBadJSON},
		{name: "malformed form", enc: "form", auth: "basic", raw: "token=%zz", wantStatus: 400, wantBody: bodyBadForm},
		{name: "form over 64 KiB", enc: "form", auth: "basic", raw: "token=" + strings.Repeat("a", 70<<10), wantStatus: 400, wantBody: bodyBadForm},
		{name: "json over 64 KiB", enc: "json", auth: "basic", raw: `{"token":"` + strings.Repeat("a", 70<<10) + `"}`,
			wantStatus: 400, wantBody: bodyBadJSON},

		// Failed client authentication.
		{name: "bad secret by basic", enc: "form", auth: "bad", setup: ccToken("basic-client"), wantStatus: 401, wantBody: bodyBadClient},
		{name: "bad secret by basic (json)", enc: "json", auth: "bad", setup: ccToken("basic-client"), wantStatus: 401, wantBody: bodyBadClient},
		{name: "bad secret by post", enc: "form", auth: "badpost", setup: ccToken("post-client"), wantStatus: 401, wantBody: bodyBadClient},
		{name: "unknown client", enc: "form", auth: "unknown", setup: ccToken("basic-client"), wantStatus: 401, wantBody: bodyBadClient},
		{name: "registered method not used", enc: "form", auth: "postAsBasic", setup: ccToken("post-client"), wantStatus: 401},
		{name: "public client with a secret", enc: "form", auth: "publicWithSecret", setup: grantToken("public-client", true), wantStatus: 401},
		{name: "no auth at all", enc: "form", auth: "none", setup: ccToken("basic-client"), wantStatus: 401, wantBody: bodyNoClient},
		{name: "no auth at all (json)", enc: "json", auth: "none", setup: ccToken("basic-client"), wantStatus: 401, wantBody: bodyNoClient},

		// A database failure is never a 200.
		{name: "database down (form, basic)", enc: "form", auth: "basic", down: true, setup: fixedToken("ory_at_x.y"), wantStatus: 503, wantBody: bodyUnavailable},
		{name: "database down (json, post)", enc: "json", auth: "post", down: true, setup: fixedToken("ory_rt_x.y"), wantStatus: 503, wantBody: bodyUnavailable},
		{name: "database down (public)", enc: "form", auth: "public", down: true, setup: fixedToken("ory_rt_x.y"), wantStatus: 503, wantBody: bodyUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := ts
			if tc.down {
				srv = down
			}
			var fx revokeFixture
			if tc.setup != nil {
				fx = tc.setup(t, srv)
			}
			fields := map[string]string{}
			if !tc.noToken {
				fields["token"] = fx.token
			}
			if tc.hint != "" {
				fields["token_type_hint"] = tc.hint
			}
			a := authFor(srv, tc.auth)
			var r response
			switch {
			case tc.raw != "" || tc.contentType != "":
				ct, body := tc.contentType, tc.raw
				if ct == "" {
					ct = map[string]string{"form": "application/x-www-form-urlencoded", "json": "application/json"}[tc.enc]
				}
				if body == "" {
					body = fmt.Sprintf(`{"token":%q}`, fx.token)
				}
				r = srv.raw(t, http.MethodPost, "/oauth2/revoke", ct, body, a)
			default:
				r = srv.post(t, "/oauth2/revoke", tc.enc, fields, a)
			}

			require.Equal(t, tc.wantStatus, r.Status, "status; body %s", r.Body)
			require.Contains(t, r.Header.Get("Cache-Control"), "no-store")
			if tc.wantStatus == http.StatusOK {
				require.Empty(t, r.Body, "a revocation answers an empty body")
			} else {
				requireError(t, r, tc.wantStatus, r.json(t)["error"].(string))
				if tc.wantBody != "" {
					requireJSONEqual(t, tc.wantBody, r.Body)
				}
			}
			if a.kind == "basic" && r.Status == http.StatusUnauthorized {
				requireChallenge(t, r, challengeBasic)
			}
			if r.Status != http.StatusOK {
				// A refused request changes nothing.
				fx.kept, fx.gone = append(fx.kept, fx.gone...), nil
			}
			if tc.down {
				require.Equal(t, "1", r.Header.Get("Retry-After"), "a 503 says when to retry")
				return // nothing to look at: the database is gone
			}
			for _, tok := range fx.gone {
				require.False(t, srv.active(t, tok), "token must be inactive after the request")
			}
			for _, tok := range fx.kept {
				require.True(t, srv.active(t, tok), "token must still be active after the request")
			}
		})
	}

	t.Run("GET is 405", func(t *testing.T) {
		t.Parallel()
		requireError(t, ts.get(t, "/oauth2/revoke"), http.StatusMethodNotAllowed, "invalid_request")
	})
}

// TestRevokeCascade: revoking either token of a grant ends both, seen at
// introspection and at the token endpoint.
func TestRevokeCascade(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for _, tc := range []struct {
		name    string
		revoke  func(grant) string
		refresh bool
	}{
		{name: "revoking the refresh token ends the access token", revoke: func(g grant) string { return g.Refresh }},
		{name: "revoking the access token ends the refresh token", revoke: func(g grant) string { return g.Access }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := issueGrant(t, ts, "basic-client", "read", "offline_access")
			r := ts.post(t, "/oauth2/revoke", "form", map[string]string{"token": tc.revoke(g)}, ts.as("basic-client"))
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			require.False(t, ts.active(t, g.Access), "access token")
			require.False(t, ts.active(t, g.Refresh), "refresh token")
			requireError(t, ts.refresh(t, "basic-client", g.Refresh), http.StatusBadRequest, "invalid_grant")
		})
	}

	t.Run("revoking the newest refresh token ends the whole rotated chain", func(t *testing.T) {
		t.Parallel()
		g1 := issueGrant(t, ts, "basic-client", "read", "offline_access")
		g2 := ts.refreshOK(t, "basic-client", g1.Refresh)
		g3 := ts.refreshOK(t, "basic-client", g2.Refresh)
		r := ts.post(t, "/oauth2/revoke", "form", map[string]string{"token": g3.Refresh, "token_type_hint": "refresh_token"}, ts.as("basic-client"))
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		for i, g := range []grant{g1, g2, g3} {
			require.False(t, ts.active(t, g.Access), "access token %d", i+1)
			require.False(t, ts.active(t, g.Refresh), "refresh token %d", i+1)
			requireError(t, ts.refresh(t, "basic-client", g.Refresh), http.StatusBadRequest, "invalid_grant")
		}
	})
}

// faultyStore fails chosen token operations while failing is set, as a
// database that drops out between two queries would.
type faultyStore struct {
	storage.Store
	failLookup, failRevoke, failWrite *atomic.Bool
}

// newFaultyServer is a server whose store fails what the returned switches
// say.
func newFaultyServer(t *testing.T) (ts *testServer, failLookup, failRevoke, failWrite *atomic.Bool) {
	failLookup, failRevoke, failWrite = new(atomic.Bool), new(atomic.Bool), new(atomic.Bool)
	ts = newTestServer(t, withStoreWrapper(func(st storage.Store) storage.Store {
		return faultyStore{Store: st, failLookup: failLookup, failRevoke: failRevoke, failWrite: failWrite}
	}))
	return ts, failLookup, failRevoke, failWrite
}

func (f faultyStore) CreateAccessTokenSession(ctx context.Context, sig string, r fosite.Requester) error {
	if f.failWrite.Load() {
		return errInjected
	}
	return f.Store.CreateAccessTokenSession(ctx, sig, r)
}

var errInjected = fmt.Errorf("%w: injected fault", storage.ErrUnavailable)

func (f faultyStore) GetAccessTokenSession(ctx context.Context, sig string, s fosite.Session) (fosite.Requester, error) {
	if f.failLookup.Load() {
		return nil, errInjected
	}
	return f.Store.GetAccessTokenSession(ctx, sig, s)
}

func (f faultyStore) GetRefreshTokenSession(ctx context.Context, sig string, s fosite.Session) (fosite.Requester, error) {
	if f.failLookup.Load() {
		return nil, errInjected
	}
	return f.Store.GetRefreshTokenSession(ctx, sig, s)
}

func (f faultyStore) RevokeAccessToken(ctx context.Context, requestID string) error {
	if f.failRevoke.Load() {
		return errInjected
	}
	return f.Store.RevokeAccessToken(ctx, requestID)
}

// TestRevokeStorageFault: the client authenticates, then the database
// fails; the answer is 503 and the token still works.
func TestRevokeStorageFault(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		lookup bool
	}{
		{name: "token lookup fails", lookup: true},
		{name: "revocation write fails", lookup: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts, failLookup, failRevoke, _ := newFaultyServer(t)
			tok := ts.clientCredentials(t, "basic-client", "read")
			failLookup.Store(tc.lookup)
			failRevoke.Store(!tc.lookup)
			r := ts.post(t, "/oauth2/revoke", "form", map[string]string{"token": tok, "token_type_hint": "access_token"}, ts.as("basic-client"))
			requireError(t, r, http.StatusServiceUnavailable, "temporarily_unavailable")
			requireJSONEqual(t, bodyUnavailable, r.Body)
			failLookup.Store(false)
			failRevoke.Store(false)
			require.True(t, ts.active(t, tok), "the token was not revoked, and the client was not told it was")
		})
	}
}
