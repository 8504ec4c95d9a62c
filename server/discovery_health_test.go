package server_test

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDiscovery(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	var docs []map[string]any
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		t.Run(path, func(t *testing.T) {
			r := ts.get(t, path)
			require.Equal(t, http.StatusOK, r.Status)
			require.Contains(t, r.Header.Get("Content-Type"), "application/json")
			doc := r.json(t)
			docs = append(docs, doc)
			require.Equal(t, ts.URL, doc["issuer"])
			require.Equal(t, ts.URL+"/oauth2/token", doc["token_endpoint"])
			require.Equal(t, ts.URL+"/oauth2/introspect", doc["introspection_endpoint"])
			require.Equal(t, ts.URL+"/oauth2/revoke", doc["revocation_endpoint"])

			// Every endpoint listed is served.
			for key, v := range doc {
				if !strings.HasSuffix(key, "_endpoint") {
					continue
				}
				u, _ := v.(string)
				require.True(t, strings.HasPrefix(u, ts.URL+"/"), "%s = %q is under the issuer", key, u)
				r := ts.raw(t, http.MethodPost, strings.TrimPrefix(u, ts.URL), "application/x-www-form-urlencoded", "", noAuth)
				require.NotEqual(t, http.StatusNotFound, r.Status, "%s is listed but not served", key)
			}
			// Every grant type listed is one the token endpoint takes.
			grants, _ := doc["grant_types_supported"].([]any)
			require.NotEmpty(t, grants)
			for _, g := range grants {
				r := ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": g.(string)}, ts.as("basic-client"))
				require.NotEqual(t, "unsupported_grant_type", r.json(t)["error"], "grant %s is listed but not supported", g)
			}
		})
	}
	t.Run("POST is 405 with Allow: GET", func(t *testing.T) {
		r := ts.raw(t, http.MethodPost, "/.well-known/openid-configuration", "", "", noAuth)
		requireError(t, r, http.StatusMethodNotAllowed, "invalid_request")
		require.Equal(t, "GET", r.Header.Get("Allow"))
	})
	require.Len(t, docs, 2)
	require.Equal(t, docs[0], docs[1], "both documents carry the same metadata")
}

func TestHealth(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for _, path := range []string{"/health/alive", "/health/ready"} {
		r := ts.get(t, path)
		require.Equal(t, http.StatusOK, r.Status, path)
		require.Contains(t, r.Header.Get("Content-Type"), "application/json")
		require.Equal(t, "ok", r.json(t)["status"])
	}

	require.NoError(t, ts.Store.Close())
	r := ts.get(t, "/health/ready")
	require.Equal(t, http.StatusServiceUnavailable, r.Status, "not ready without a database")
	require.Contains(t, r.Header.Get("Content-Type"), "application/json")
	require.NotContains(t, string(r.Body), "sql: database is closed", "no internal error text")
	require.Equal(t, http.StatusOK, ts.get(t, "/health/alive").Status, "still alive without a database")
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/nope"},
		{http.MethodPost, "/oauth2/nope"},
		{http.MethodGet, "/"},
		{http.MethodGet, "/oauth2/token/extra"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := ts.raw(t, tc.method, tc.path, "", "", noAuth)
			require.Equal(t, http.StatusNotFound, r.Status)
			require.Contains(t, r.Header.Get("Content-Type"), "application/json")
			require.Equal(t, "not_found", r.json(t)["error"])
		})
	}
}

// TestHostileInput sends malformed requests to every endpoint: none
// answers a 5xx or a stack trace (do() checks every body for one).
func TestHostileInput(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	inputs := []struct {
		name, contentType, body, authorization string
	}{
		{"basic not base64", "application/x-www-form-urlencoded", "token=x&grant_type=client_credentials", "Basic !!!"},
		{"basic without colon", "application/x-www-form-urlencoded", "token=x&grant_type=client_credentials", "Basic " + b64("basic-client")},
		{"basic id not form-encoded", "application/x-www-form-urlencoded", "token=x&grant_type=client_credentials", "Basic " + b64("%zz:secret")},
		{"basic secret not form-encoded", "application/x-www-form-urlencoded", "token=x&grant_type=client_credentials", "Basic " + b64("basic-client:%zz")},
		{"empty bearer", "application/x-www-form-urlencoded", "token=x", "Bearer "},
		{"unknown scheme", "application/x-www-form-urlencoded", "token=x", "Digest abc"},
		{"multipart", "multipart/form-data; boundary=xyz", "--xyz\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\nx\r\n--xyz--\r\n", ""},
		{"broken multipart", "multipart/form-data; boundary=xyz", "--xyz\r\ngarbage", "Basic " + b64("basic-client:x")},
		{"binary body", "application/octet-stream", "\x00\x01\x02", ""},
		{"json null", "application/json", "null", ""},
		{"json deep", "application/json", strings.Repeat("[", 10000), ""},
		{"duplicated fields", "application/x-www-form-urlencoded", "token=a&token=b&grant_type=client_credentials&grant_type=refresh_token&client_id=a&client_id=b", ""},
		{"client assertion garbage", "application/x-www-form-urlencoded",
			"token=x&grant_type=client_credentials&client_id=basic-client&client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer&client_assertion=a.b.c", ""},
		{"unknown assertion type", "application/x-www-form-urlencoded", "token=x&grant_type=client_credentials&client_assertion_type=foo&client_assertion=x", ""},
	}
	for _, path := range []string{"/oauth2/token", "/oauth2/introspect", "/oauth2/revoke"} {
		for _, in := range inputs {
			t.Run(path+" "+in.name, func(t *testing.T) {
				t.Parallel()
				req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.URL+path, strings.NewReader(in.body))
				require.NoError(t, err)
				req.Header.Set("Content-Type", in.contentType)
				if in.authorization != "" {
					req.Header.Set("Authorization", in.authorization)
				}
				r := ts.do(t, req)
				require.Less(t, r.Status, 500, "%s", r.Body)
				require.GreaterOrEqual(t, r.Status, 400, "%s", r.Body)
				require.Contains(t, r.Header.Get("Content-Type"), "application/json")
				require.NotEmpty(t, r.json(t)["error"])
				require.Contains(t, r.Header.Get("Cache-Control"), "no-store")
			})
		}
	}
}
