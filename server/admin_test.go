package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/stretchr/testify/require"
)

const adminToken = "admin-token-for-tests-0123456789"

// newAdminServer is a test server with the admin API on.
func newAdminServer(t *testing.T) *testServer {
	t.Helper()
	return newTestServer(t, withAdminToken(adminToken))
}

// admin sends an admin API request with the admin token. body is nil (no
// body), a string (sent as is) or a value sent as JSON.
func (ts *testServer) admin(t *testing.T, method, path string, body any) response {
	t.Helper()
	var raw, contentType string
	switch b := body.(type) {
	case nil:
	case string:
		raw, contentType = b, "application/json"
	default:
		j, err := json.Marshal(b)
		require.NoError(t, err)
		raw, contentType = string(j), "application/json"
	}
	r := ts.raw(t, method, path, contentType, raw, bearerAuth(adminToken))
	require.Contains(t, r.Header.Get("Cache-Control"), "no-store", "%s %s: every admin answer is no-store", method, path)
	return r
}

// adminOK sends an admin request that must answer status, and decodes the
// JSON answer into a map (nil for 204).
func (ts *testServer) adminOK(t *testing.T, method, path string, body any, status int) map[string]any {
	t.Helper()
	r := ts.admin(t, method, path, body)
	require.Equal(t, status, r.Status, "%s %s: %s", method, path, r.Body)
	if status == http.StatusNoContent {
		require.Empty(t, r.Body)
		return nil
	}
	require.Contains(t, r.Header.Get("Content-Type"), "application/json")
	return r.json(t)
}

// requireFields checks a 400 invalid_request that names exactly these
// fields (each with a reason).
func requireFields(t *testing.T, r response, fields ...string) {
	t.Helper()
	requireError(t, r, http.StatusBadRequest, "invalid_request")
	var body struct {
		Description string `json:"error_description"`
		Fields      []struct{ Field, Reason string }
	}
	require.NoError(t, json.Unmarshal(r.Body, &body))
	require.NotEmpty(t, body.Description)
	var got []string
	for _, f := range body.Fields {
		require.NotEmpty(t, f.Reason, "field %s has a reason", f.Field)
		got = append(got, f.Field)
	}
	require.ElementsMatch(t, fields, got, "fields of %s", r.Body)
}

func TestAdminAuth(t *testing.T) {
	t.Parallel()
	ts := newAdminServer(t)
	requests := []struct{ method, path, body string }{
		{http.MethodGet, "/admin/clients", ""},
		{http.MethodPost, "/admin/clients", `{"client_id":"x","grant_types":["client_credentials"]}`},
		{http.MethodDelete, "/admin/clients/basic-client", ""},
		{http.MethodPost, "/admin/clients/basic-client/secret", ""},
		{http.MethodGet, "/admin/users/alice", ""},
		{http.MethodDelete, "/admin/users/alice", ""},
		{http.MethodPost, "/admin/tokens/revoke", `{"subject":"alice"}`},
		{http.MethodGet, "/admin/consents?subject=alice", ""},
		{http.MethodPost, "/admin/keys/rotate", ""},
	}
	credentials := []struct {
		name, header, code string
	}{
		{"none", "", "unauthorized"},
		{"wrong token", "Bearer not-the-admin-token", "invalid_token"},
		{"token prefix", "Bearer " + adminToken[:10], "invalid_token"},
		{"token with more", "Bearer " + adminToken + "x", "invalid_token"},
		{"empty bearer", "Bearer ", "unauthorized"},
		{"basic with the token", "Basic " + basicValue("admin", adminToken), "unauthorized"},
		{"token without scheme", adminToken, "unauthorized"},
	}
	for _, req := range requests {
		for _, c := range credentials {
			t.Run(req.method+" "+req.path+"/"+c.name, func(t *testing.T) {
				hreq, err := http.NewRequestWithContext(t.Context(), req.method, ts.URL+req.path, strings.NewReader(req.body))
				require.NoError(t, err)
				hreq.Header.Set("Content-Type", "application/json")
				if c.header != "" {
					hreq.Header.Set("Authorization", c.header)
				}
				r := ts.do(t, hreq)
				requireError(t, r, http.StatusUnauthorized, c.code)
				require.True(t, strings.HasPrefix(r.Header.Get("WWW-Authenticate"), `Bearer realm="latch-admin"`),
					"challenge %q", r.Header.Get("WWW-Authenticate"))
			})
		}
	}
	// Nothing of the refused requests happened.
	ts.adminOK(t, http.MethodGet, "/admin/users/alice", nil, http.StatusOK)
	ts.adminOK(t, http.MethodGet, "/admin/clients/basic-client", nil, http.StatusOK)
	ts.clientCredentials(t, "basic-client", "read")

	t.Run("scheme is case-insensitive", func(t *testing.T) {
		hreq, err := http.NewRequestWithContext(t.Context(), http.MethodGet, ts.URL+"/admin/users", nil)
		require.NoError(t, err)
		hreq.Header.Set("Authorization", "bearer "+adminToken)
		require.Equal(t, http.StatusOK, ts.do(t, hreq).Status)
	})
	t.Run("unknown admin path", func(t *testing.T) {
		requireError(t, ts.admin(t, http.MethodGet, "/admin/nothing", nil), http.StatusNotFound, "not_found")
	})
	t.Run("method not allowed", func(t *testing.T) {
		r := ts.admin(t, http.MethodPatch, "/admin/clients/basic-client", "{}")
		requireError(t, r, http.StatusMethodNotAllowed, "invalid_request")
		require.Equal(t, "GET, PUT, DELETE", r.Header.Get("Allow"))
	})
}

func basicValue(id, secret string) string {
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	req.SetBasicAuth(id, secret)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

// TestAdminOff: without admin.token there is no admin API at all, whatever
// the request carries.
func TestAdminOff(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for _, path := range []string{"/admin/clients", "/admin/users", "/admin/clients/basic-client", "/admin/consents?subject=alice"} {
		for _, a := range []auth{noAuth, bearerAuth(adminToken), bearerAuth("")} {
			requireError(t, ts.raw(t, http.MethodGet, path, "", "", a), http.StatusNotFound, "not_found")
		}
	}
	for _, path := range []string{"/admin/tokens/revoke", "/admin/keys/rotate", "/admin/clients"} {
		requireError(t, ts.raw(t, http.MethodPost, path, "application/json", `{"subject":"alice"}`, bearerAuth(adminToken)),
			http.StatusNotFound, "not_found")
	}
}

func TestAdminRevokeTokens(t *testing.T) {
	t.Parallel()
	t.Run("by client", func(t *testing.T) {
		t.Parallel()
		ts := newAdminServer(t)
		mine := []string{ts.clientCredentials(t, "basic-client", "read"), ts.clientCredentials(t, "basic-client", "write")}
		code := issueGrant(t, ts, "basic-client", "read", "offline_access")
		other := ts.clientCredentials(t, "other-client", "read")

		m := ts.adminOK(t, http.MethodPost, "/admin/tokens/revoke", map[string]string{"client_id": "basic-client"}, http.StatusOK)
		require.Equal(t, map[string]any{"revoked_grants": float64(3)}, m)
		for _, tok := range append(mine, code.Access, code.Refresh) {
			require.False(t, ts.active(t, tok), "a token of basic-client is inactive at once")
		}
		requireError(t, ts.refresh(t, "basic-client", code.Refresh), http.StatusBadRequest, "invalid_grant")
		require.True(t, ts.active(t, other), "other clients keep their tokens")
		ts.clientCredentials(t, "basic-client", "read") // the client itself still works

		m = ts.adminOK(t, http.MethodPost, "/admin/tokens/revoke", `{"client_id":"basic-client"}`, http.StatusOK)
		require.Equal(t, float64(1), m["revoked_grants"], "only the grant issued since")
	})
	t.Run("by subject", func(t *testing.T) {
		t.Parallel()
		ts := newAdminServer(t)
		web := issueGrant(t, ts, "web-client", "openid", "offline_access")
		pub := issueGrant(t, ts, "public-client", "openid", "offline_access")
		machine := ts.clientCredentials(t, "basic-client", "read")

		m := ts.adminOK(t, http.MethodPost, "/admin/tokens/revoke", map[string]string{"subject": "alice"}, http.StatusOK)
		require.Equal(t, map[string]any{"revoked_grants": float64(2), "ended_sessions": float64(0)}, m)
		for _, tok := range []string{web.Access, web.Refresh, pub.Access, pub.Refresh} {
			require.False(t, ts.active(t, tok), "alice's tokens are inactive at once")
		}
		require.True(t, ts.active(t, machine), "other subjects keep their tokens")
		m = ts.adminOK(t, http.MethodPost, "/admin/tokens/revoke", map[string]string{"subject": "nobody"}, http.StatusOK)
		require.Equal(t, float64(0), m["revoked_grants"])
	})
	t.Run("bad requests", func(t *testing.T) {
		t.Parallel()
		ts := newAdminServer(t)
		for _, tt := range []struct {
			name, body string
			fields     []string
		}{
			{"both", `{"client_id":"basic-client","subject":"alice"}`, []string{"client_id", "subject"}},
			{"neither", `{}`, []string{"client_id", "subject"}},
			{"empty values", `{"client_id":"","subject":""}`, []string{"client_id", "subject"}},
			{"unknown member", `{"client":"basic-client"}`, []string{"client"}},
			{"wrong type", `{"client_id":7}`, []string{"client_id"}},
			{"not JSON", `client_id=basic-client`, nil},
			{"empty body", ``, nil},
			{"array", `[]`, nil},
			{"two objects", `{"subject":"alice"}{"subject":"bob"}`, nil},
		} {
			t.Run(tt.name, func(t *testing.T) {
				requireFields(t, ts.admin(t, http.MethodPost, "/admin/tokens/revoke", tt.body), tt.fields...)
			})
		}
		requireError(t, ts.admin(t, http.MethodPost, "/admin/tokens/revoke", `{"client_id":"no-such-client"}`), http.StatusNotFound, "not_found")
	})
}

func TestAdminConsents(t *testing.T) {
	t.Parallel()
	ts := newAdminServer(t)
	ctx := context.Background()
	require.NoError(t, ts.Store.SaveConsent(ctx, "alice", "web-client", []string{"openid", "profile"}))
	require.NoError(t, ts.Store.SaveConsent(ctx, "alice", "skip-client", []string{"openid"}))
	require.NoError(t, ts.Store.SaveConsent(ctx, "bob", "web-client", []string{"openid"}))

	m := ts.adminOK(t, http.MethodGet, "/admin/consents?subject=alice", nil, http.StatusOK)
	items := m["items"].([]any)
	require.Len(t, items, 2)
	first := items[0].(map[string]any)
	require.NotEmpty(t, first["created_at"])
	delete(first, "created_at")
	require.Equal(t, map[string]any{"subject": "alice", "client_id": "skip-client", "scopes": []any{"openid"}}, first)
	require.Equal(t, "web-client", items[1].(map[string]any)["client_id"])
	require.Equal(t, []any{"openid", "profile"}, items[1].(map[string]any)["scopes"])
	require.Empty(t, m["next_page_token"])

	m = ts.adminOK(t, http.MethodGet, "/admin/consents?subject=alice&limit=1", nil, http.StatusOK)
	require.Len(t, m["items"], 1)
	require.NotEmpty(t, m["next_page_token"])
	m = ts.adminOK(t, http.MethodGet, "/admin/consents?subject=alice&limit=1&page_token="+m["next_page_token"].(string), nil, http.StatusOK)
	require.Equal(t, "web-client", m["items"].([]any)[0].(map[string]any)["client_id"])
	require.Empty(t, m["next_page_token"])

	ts.adminOK(t, http.MethodDelete, "/admin/consents?subject=alice&client_id=web-client", nil, http.StatusNoContent)
	m = ts.adminOK(t, http.MethodGet, "/admin/consents?subject=alice", nil, http.StatusOK)
	require.Len(t, m["items"], 1)
	m = ts.adminOK(t, http.MethodGet, "/admin/consents?subject=bob", nil, http.StatusOK)
	require.Len(t, m["items"], 1, "bob's consent is his own")

	for _, tt := range []struct {
		name, method, query string
		status              int
		code                string
		fields              []string
	}{
		{"delete again", http.MethodDelete, "subject=alice&client_id=web-client", http.StatusNotFound, "not_found", nil},
		{"delete unknown client", http.MethodDelete, "subject=alice&client_id=nope", http.StatusNotFound, "not_found", nil},
		{"delete without client", http.MethodDelete, "subject=alice", http.StatusBadRequest, "invalid_request", []string{"client_id"}},
		{"delete without anything", http.MethodDelete, "", http.StatusBadRequest, "invalid_request", []string{"client_id", "subject"}},
		{"list without subject", http.MethodGet, "", http.StatusBadRequest, "invalid_request", []string{"subject"}},
		{"list of unknown user", http.MethodGet, "subject=nobody", http.StatusNotFound, "not_found", nil},
		{"list with bad limit", http.MethodGet, "subject=alice&limit=0", http.StatusBadRequest, "invalid_request", []string{"limit"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := ts.admin(t, tt.method, "/admin/consents?"+tt.query, nil)
			if tt.fields != nil {
				requireFields(t, r, tt.fields...)
			} else {
				requireError(t, r, tt.status, tt.code)
			}
		})
	}
}

// TestAdminRotateKeys: after POST /admin/keys/rotate the JWKS lists both
// keys, new ID tokens carry the new kid, and one issued before still
// verifies with go-oidc.
func TestAdminRotateKeys(t *testing.T) {
	t.Parallel()
	ts := newAdminServer(t)
	before := codeFlow(t, ts.newBrowser(t), "public-client", nil)
	oldKID, _ := jwtHeader(t, before.ID)["kid"].(string)
	require.Equal(t, []string{oldKID}, ts.publishedKIDs(t))
	// A relying party that cached the JWKS before the rotation.
	cached := ts.provider(t, t.Context()).Verifier(&oidc.Config{ClientID: "public-client"})
	_, err := cached.Verify(t.Context(), before.ID)
	require.NoError(t, err)

	m := ts.adminOK(t, http.MethodPost, "/admin/keys/rotate", nil, http.StatusOK)
	newKID, _ := m["kid"].(string)
	require.NotEmpty(t, newKID)
	require.NotEqual(t, oldKID, newKID)
	require.Equal(t, []string{newKID, oldKID}, ts.publishedKIDs(t), "the new key signs and comes first; the old one stays published")

	after := codeFlow(t, ts.newBrowser(t), "public-client", nil)
	require.Equal(t, newKID, jwtHeader(t, after.ID)["kid"], "a new ID token carries the new kid")
	_, err = cached.Verify(t.Context(), after.ID)
	require.NoError(t, err, "a relying party with the old JWKS cached refetches it")
	fresh := ts.provider(t, t.Context()).Verifier(&oidc.Config{ClientID: "public-client"})
	for name, raw := range map[string]string{"before": before.ID, "after": after.ID} {
		idt, err := fresh.Verify(t.Context(), raw)
		require.NoError(t, err, "the ID token from %s the rotation verifies", name)
		require.Equal(t, "alice", idt.Subject)
	}

	// Twice more: every key that signed an unexpired token stays listed.
	third := ts.adminOK(t, http.MethodPost, "/admin/keys/rotate", nil, http.StatusOK)["kid"].(string)
	require.Equal(t, []string{third, newKID, oldKID}, ts.publishedKIDs(t))
}

// TestAdminDatabaseDown: with the database gone every admin endpoint
// answers 503 temporarily_unavailable, never 500 or a made-up success.
func TestAdminDatabaseDown(t *testing.T) {
	t.Parallel()
	ts := newAdminServer(t)
	require.NoError(t, ts.Store.Close())
	for _, req := range []struct{ method, path, body string }{
		{http.MethodGet, "/admin/clients", ""},
		{http.MethodPost, "/admin/clients", `{"client_id":"x","grant_types":["client_credentials"]}`},
		{http.MethodGet, "/admin/clients/basic-client", ""},
		{http.MethodPut, "/admin/clients/basic-client", `{"grant_types":["client_credentials"]}`},
		{http.MethodDelete, "/admin/clients/basic-client", ""},
		{http.MethodPost, "/admin/clients/basic-client/secret", ""},
		{http.MethodGet, "/admin/users", ""},
		{http.MethodPost, "/admin/users", `{"username":"erin","password":"erin-password"}`},
		{http.MethodGet, "/admin/users/alice", ""},
		{http.MethodPut, "/admin/users/alice", `{"name":"A"}`},
		{http.MethodDelete, "/admin/users/alice", ""},
		{http.MethodPost, "/admin/tokens/revoke", `{"client_id":"basic-client"}`},
		{http.MethodPost, "/admin/tokens/revoke", `{"subject":"alice"}`},
		{http.MethodGet, "/admin/consents?subject=alice", ""},
		{http.MethodDelete, "/admin/consents?subject=alice&client_id=web-client", ""},
		{http.MethodPost, "/admin/keys/rotate", ""},
	} {
		t.Run(req.method+" "+req.path, func(t *testing.T) {
			requireError(t, ts.admin(t, req.method, req.path, req.body), http.StatusServiceUnavailable, "temporarily_unavailable")
		})
	}
}
