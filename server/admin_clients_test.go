package server_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/stretchr/testify/require"
)

// withoutTimes checks that m has RFC 3339 created_at and updated_at and
// returns m without them, for comparing the rest exactly.
func withoutTimes(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	for _, k := range []string{"created_at", "updated_at"} {
		s, _ := m[k].(string)
		_, err := time.Parse(time.RFC3339Nano, s)
		require.NoError(t, err, "%s is a time: %v", k, m[k])
		delete(m, k)
	}
	return m
}

func jsonMap(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(s), &m))
	return m
}

func TestAdminClientLifecycle(t *testing.T) {
	t.Parallel()
	ts := newAdminServer(t)

	// Create: 201, the client as stored, and its generated secret once.
	r := ts.admin(t, http.MethodPost, "/admin/clients", `{
		"client_id": "billing", "client_name": "Billing",
		"grant_types": ["client_credentials"], "scopes": ["read", "write"],
		"audience": ["https://api.example.com"], "token_endpoint_auth_method": "client_secret_basic",
		"access_token_format": "jwt", "rate_limit": 5
	}`)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	require.Equal(t, ts.URL+"/admin/clients/billing", r.Header.Get("Location"))
	created := r.json(t)
	secret, _ := created["client_secret"].(string)
	require.GreaterOrEqual(t, len(secret), 32, "a generated secret is answered")
	require.NotContains(t, string(r.Body), "sha256$", "no secret hash")
	delete(created, "client_secret")
	want := jsonMap(t, `{
		"client_id": "billing", "client_name": "Billing", "redirect_uris": [], "post_logout_redirect_uris": [],
		"grant_types": ["client_credentials"], "response_types": [], "scopes": ["read", "write"],
		"audience": ["https://api.example.com"], "token_endpoint_auth_method": "client_secret_basic",
		"access_token_format": "jwt", "rate_limit": 5
	}`)
	require.Equal(t, want, withoutTimes(t, created))

	// The secret works at the token endpoint.
	tok := tokensOf(t, ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "client_credentials", "scope": "read"},
		basicAuth("billing", secret)))

	// Read: the same, without any secret.
	got := ts.adminOK(t, http.MethodGet, "/admin/clients/billing", nil, http.StatusOK)
	require.NotContains(t, got, "client_secret")
	require.Equal(t, want, withoutTimes(t, got))

	// Update: every setting replaced, the secret kept.
	updated := ts.adminOK(t, http.MethodPut, "/admin/clients/billing", `{
		"client_name": "Billing v2", "grant_types": ["client_credentials", "refresh_token"],
		"scopes": ["read"], "token_endpoint_auth_method": "client_secret_post"
	}`, http.StatusOK)
	updatedView := withoutTimes(t, updated)
	require.Equal(t, jsonMap(t, `{
		"client_id": "billing", "client_name": "Billing v2", "redirect_uris": [], "post_logout_redirect_uris": [],
		"grant_types": ["client_credentials", "refresh_token"], "response_types": [], "scopes": ["read"],
		"audience": [], "token_endpoint_auth_method": "client_secret_post"
	}`), updatedView)
	require.Equal(t, updatedView, withoutTimes(t, ts.adminOK(t, http.MethodGet, "/admin/clients/billing", nil, http.StatusOK)))
	tokensOf(t, ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "client_credentials", "scope": "read"},
		postAuth("billing", secret)))

	// A GET sent back as PUT changes nothing (created_at and updated_at
	// are accepted and ignored).
	before := ts.admin(t, http.MethodGet, "/admin/clients/billing", nil)
	again := ts.adminOK(t, http.MethodPut, "/admin/clients/billing", string(before.Body), http.StatusOK)
	require.Equal(t, before.json(t)["created_at"], again["created_at"])

	// Rotate: the new secret works, the old one stops at once.
	rotated := ts.adminOK(t, http.MethodPost, "/admin/clients/billing/secret", nil, http.StatusOK)
	newSecret, _ := rotated["client_secret"].(string)
	require.NotEmpty(t, newSecret)
	require.NotEqual(t, secret, newSecret)
	require.Equal(t, "billing", rotated["client_id"])
	requireError(t, ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "client_credentials"}, postAuth("billing", secret)),
		http.StatusUnauthorized, "invalid_client")
	tokensOf(t, ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "client_credentials"}, postAuth("billing", newSecret)))
	require.NotContains(t, ts.adminOK(t, http.MethodGet, "/admin/clients/billing", nil, http.StatusOK), "client_secret")

	// Delete: the client's tokens are inactive at once, and it is gone.
	require.True(t, ts.active(t, tok.Access))
	ts.adminOK(t, http.MethodDelete, "/admin/clients/billing", nil, http.StatusNoContent)
	require.False(t, ts.active(t, tok.Access), "deleting a client revokes its tokens")
	requireError(t, ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "client_credentials"}, postAuth("billing", newSecret)),
		http.StatusUnauthorized, "invalid_client")
	for _, req := range []struct{ method, path, body string }{
		{http.MethodGet, "/admin/clients/billing", ""},
		{http.MethodPut, "/admin/clients/billing", `{"grant_types":["client_credentials"]}`},
		{http.MethodDelete, "/admin/clients/billing", ""},
		{http.MethodPost, "/admin/clients/billing/secret", ""},
	} {
		r := ts.admin(t, req.method, req.path, req.body)
		requireError(t, r, http.StatusNotFound, "not_found")
		require.Contains(t, r.json(t)["error_description"], `"billing"`)
	}
}

func TestAdminCreateClientKinds(t *testing.T) {
	t.Parallel()
	ts := newAdminServer(t)
	t.Run("public", func(t *testing.T) {
		m := ts.adminOK(t, http.MethodPost, "/admin/clients", map[string]any{
			"client_id": "spa", "grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
			"redirect_uris": []string{"https://spa.example.com/cb"}, "scopes": []string{"openid"}, "token_endpoint_auth_method": "none",
		}, http.StatusCreated)
		require.NotContains(t, m, "client_secret", "a public client has no secret")
		requireError(t, ts.admin(t, http.MethodPost, "/admin/clients/spa/secret", nil), http.StatusBadRequest, "invalid_request")
	})
	t.Run("chosen secret", func(t *testing.T) {
		m := ts.adminOK(t, http.MethodPost, "/admin/clients", map[string]any{
			"client_id": "chosen", "grant_types": []string{"client_credentials"}, "client_secret": "a-secret-someone-chose",
		}, http.StatusCreated)
		require.NotContains(t, m, "client_secret", "a chosen secret is not echoed")
		require.Equal(t, "client_secret_basic", m["token_endpoint_auth_method"], "the default method is shown")
		tokensOf(t, ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "client_credentials"},
			basicAuth("chosen", "a-secret-someone-chose")))
		// PUT may set a new chosen secret.
		ts.adminOK(t, http.MethodPut, "/admin/clients/chosen", map[string]any{
			"grant_types": []string{"client_credentials"}, "client_secret": "another-chosen-secret",
		}, http.StatusOK)
		requireError(t, ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "client_credentials"},
			basicAuth("chosen", "a-secret-someone-chose")), http.StatusUnauthorized, "invalid_client")
		tokensOf(t, ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "client_credentials"},
			basicAuth("chosen", "another-chosen-secret")))
	})
	t.Run("private_key_jwt", func(t *testing.T) {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		require.NoError(t, err)
		jwks := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}}
		m := ts.adminOK(t, http.MethodPost, "/admin/clients", map[string]any{
			"client_id": "signer", "grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks,
		}, http.StatusCreated)
		require.NotContains(t, m, "client_secret", "a private_key_jwt client has keys, no secret")
		require.Equal(t, "k1", m["jwks"].(map[string]any)["keys"].([]any)[0].(map[string]any)["kid"])
		requireError(t, ts.admin(t, http.MethodPost, "/admin/clients/signer/secret", nil), http.StatusBadRequest, "invalid_request")
	})
	t.Run("client_secret_jwt", func(t *testing.T) {
		m := ts.adminOK(t, http.MethodPost, "/admin/clients", map[string]any{
			"client_id": "hmac", "grant_types": []string{"client_credentials"}, "scopes": []string{"read"}, "token_endpoint_auth_method": "client_secret_jwt",
		}, http.StatusCreated)
		secret, _ := m["client_secret"].(string)
		require.Len(t, secret, 64, "a generated secret, answered once")
		hmacToken := func(key string) response {
			claims := with(ts.clientClaims("hmac"), map[string]any{"aud": ts.URL})
			return ts.post(t, "/oauth2/token", "form", assertionAuth(map[string]string{"grant_type": "client_credentials"}, mac(t, jose.HS256, key, claims)), noAuth)
		}
		tokensOf(t, hmacToken(secret))
		// A PUT without client_secret keeps it; rotation replaces it.
		ts.adminOK(t, http.MethodPut, "/admin/clients/hmac", map[string]any{
			"grant_types": []string{"client_credentials"}, "scopes": []string{"read"}, "token_endpoint_auth_method": "client_secret_jwt", "client_name": "HMAC",
		}, http.StatusOK)
		tokensOf(t, hmacToken(secret))
		rotated, _ := ts.adminOK(t, http.MethodPost, "/admin/clients/hmac/secret", nil, http.StatusOK)["client_secret"].(string)
		require.NotEqual(t, secret, rotated)
		requireError(t, hmacToken(secret), http.StatusUnauthorized, "invalid_client")
		tokensOf(t, hmacToken(rotated))
		// A chosen secret must be a key of at least 32 bytes.
		requireFields(t, ts.admin(t, http.MethodPost, "/admin/clients", map[string]any{
			"client_id": "hmac-short", "grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "client_secret_jwt", "client_secret": "too-short",
		}), "client_secret")
		// A client_secret_basic client moved to client_secret_jwt must be given a secret: its own is only a hash.
		requireFields(t, ts.admin(t, http.MethodPut, "/admin/clients/chosen", map[string]any{
			"grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "client_secret_jwt",
		}), "client_secret")
	})
	t.Run("conflict", func(t *testing.T) {
		for _, id := range []string{"basic-client", "public-client"} {
			r := ts.admin(t, http.MethodPost, "/admin/clients", map[string]any{"client_id": id, "grant_types": []string{"client_credentials"}})
			requireError(t, r, http.StatusConflict, "conflict")
		}
		// The existing client is untouched.
		ts.clientCredentials(t, "basic-client", "read")
	})
}

func TestAdminClientValidation(t *testing.T) {
	t.Parallel()
	ts := newAdminServer(t)
	for _, tt := range []struct {
		name, method, path, body string
		fields                   []string
	}{
		{"bad redirect URIs", http.MethodPost, "/admin/clients",
			`{"client_id":"x","grant_types":["authorization_code"],"response_types":["code"],"token_endpoint_auth_method":"none",
			  "redirect_uris":["/relative","https://ok.example.com/cb#frag"]}`,
			[]string{"redirect_uris[0]", "redirect_uris[1]"}},
		{"unknown grant and method", http.MethodPost, "/admin/clients",
			`{"client_id":"x","grant_types":["magic"],"token_endpoint_auth_method":"telepathy"}`,
			[]string{"grant_types[0]", "token_endpoint_auth_method"}},
		{"no id, no grants", http.MethodPost, "/admin/clients", `{}`, []string{"client_id", "grant_types"}},
		{"public client with a secret", http.MethodPost, "/admin/clients",
			`{"client_id":"x","grant_types":["refresh_token"],"token_endpoint_auth_method":"none","client_secret":"s"}`,
			[]string{"client_secret"}},
		{"bad format and rate", http.MethodPost, "/admin/clients",
			`{"client_id":"x","grant_types":["client_credentials"],"access_token_format":"xml","rate_limit":-1}`,
			[]string{"access_token_format", "rate_limit"}},
		{"unknown member", http.MethodPost, "/admin/clients", `{"client_id":"x","grant_types":["client_credentials"],"colour":"red"}`,
			[]string{"colour"}},
		{"secret hash is not a member", http.MethodPost, "/admin/clients",
			`{"client_id":"x","grant_types":["client_credentials"],"SecretHash":"sha256$abc"}`, []string{"SecretHash"}},
		{"wrong type", http.MethodPost, "/admin/clients", `{"client_id":"x","redirect_uris":"https://a.example.com/cb"}`,
			[]string{"redirect_uris"}},
		{"wrong element type", http.MethodPost, "/admin/clients", `{"client_id":"x","grant_types":[1]}`, []string{"grant_types"}},
		{"not JSON", http.MethodPost, "/admin/clients", `{"client_id":`, nil},
		{"not an object", http.MethodPost, "/admin/clients", `"x"`, nil},
		{"bad JWKS", http.MethodPost, "/admin/clients", `{"client_id":"x","jwks":{"keys":[{"kty":"nope"}]}}`, nil},
		{"update: other client id", http.MethodPut, "/admin/clients/basic-client",
			`{"client_id":"post-client","grant_types":["client_credentials"]}`, []string{"client_id"}},
		{"update: invalid", http.MethodPut, "/admin/clients/web-client",
			`{"grant_types":["authorization_code"],"response_types":["code"],"redirect_uris":["not a uri"]}`,
			[]string{"redirect_uris[0]"}},
		{"update: public with a secret", http.MethodPut, "/admin/clients/public-client",
			`{"grant_types":["refresh_token"],"token_endpoint_auth_method":"none","client_secret":"s"}`, []string{"client_secret"}},
		{"update: to confidential without secret", http.MethodPut, "/admin/clients/public-client",
			`{"grant_types":["client_credentials"],"token_endpoint_auth_method":"client_secret_basic"}`, []string{"client_secret"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			requireFields(t, ts.admin(t, tt.method, tt.path, tt.body), tt.fields...)
		})
	}
	t.Run("too large", func(t *testing.T) {
		big := `{"client_id":"x","client_name":"` + strings.Repeat("a", 70<<10) + `"}`
		requireError(t, ts.admin(t, http.MethodPost, "/admin/clients", big), http.StatusBadRequest, "invalid_request")
	})
	// Nothing was created or changed.
	m := ts.adminOK(t, http.MethodGet, "/admin/clients?limit=500", nil, http.StatusOK)
	require.Len(t, m["items"], 7)
	ts.clientCredentials(t, "basic-client", "read")
	require.Equal(t, "Web App", ts.adminOK(t, http.MethodGet, "/admin/clients/web-client", nil, http.StatusOK)["client_name"])
}

// listIDs pages through path with limit and returns each page's keys.
func (ts *testServer) listPages(t *testing.T, path, key string, limit int) [][]string {
	t.Helper()
	var pages [][]string
	token := ""
	for i := 0; i < 20; i++ {
		q := url.Values{"limit": {fmt.Sprint(limit)}}
		if token != "" {
			q.Set("page_token", token)
		}
		m := ts.adminOK(t, http.MethodGet, path+"?"+q.Encode(), nil, http.StatusOK)
		var ids []string
		for _, it := range m["items"].([]any) {
			ids = append(ids, it.(map[string]any)[key].(string))
		}
		pages = append(pages, ids)
		next, _ := m["next_page_token"].(string)
		if next == "" {
			return pages
		}
		token = next
	}
	t.Fatalf("%s never ends", path)
	return nil
}

func TestAdminClientPagination(t *testing.T) {
	t.Parallel()
	ts := newAdminServer(t)
	// 7 fixture clients and 5 more: 12, in pages of 5, 5 and 2.
	for i := 1; i <= 5; i++ {
		ts.adminOK(t, http.MethodPost, "/admin/clients", map[string]any{
			"client_id": fmt.Sprintf("m2m-%d", i), "grant_types": []string{"client_credentials"},
		}, http.StatusCreated)
	}
	pages := ts.listPages(t, "/admin/clients", "client_id", 5)
	require.Len(t, pages, 3)
	require.Len(t, pages[0], 5)
	require.Len(t, pages[1], 5)
	require.Len(t, pages[2], 2)
	all := slices.Concat(pages...)
	require.True(t, slices.IsSorted(all), "clients come by ID: %v", all)
	require.Len(t, slices.Compact(slices.Clone(all)), 12, "no client twice")
	require.Contains(t, all, "m2m-3")
	require.Contains(t, all, "web-client")

	// The same page token gives the same page, even after a client that
	// sorts before it was added: keyset pagination does not shift.
	first := ts.adminOK(t, http.MethodGet, "/admin/clients?limit=5", nil, http.StatusOK)
	token := first["next_page_token"].(string)
	ts.adminOK(t, http.MethodPost, "/admin/clients", map[string]any{"client_id": "aaa", "grant_types": []string{"client_credentials"}}, http.StatusCreated)
	second := ts.adminOK(t, http.MethodGet, "/admin/clients?limit=5&page_token="+token, nil, http.StatusOK)
	var ids []string
	for _, it := range second["items"].([]any) {
		ids = append(ids, it.(map[string]any)["client_id"].(string))
	}
	require.Equal(t, pages[1], ids)

	// Default limit: everything fits in one page of 50.
	m := ts.adminOK(t, http.MethodGet, "/admin/clients", nil, http.StatusOK)
	require.Len(t, m["items"], 13)
	require.NotContains(t, m, "next_page_token")

	for _, q := range []string{"limit=0", "limit=501", "limit=-1", "limit=ten", "limit=1.5"} {
		requireFields(t, ts.admin(t, http.MethodGet, "/admin/clients?"+q, nil), "limit")
	}
	for _, q := range []string{"page_token=%21%21%21", "page_token=YWJj%3D"} {
		requireFields(t, ts.admin(t, http.MethodGet, "/admin/clients?"+q, nil), "page_token")
	}
	requireFields(t, ts.admin(t, http.MethodGet, "/admin/clients?limit=0&page_token=%25", nil), "limit", "page_token")
}
