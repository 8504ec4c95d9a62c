package server_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v3"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/server"
)

const registrationPath = "/oauth2/register"

// A client that registers for client_credentials only.
const ccMetadata = `{"client_name":"CI bot","grant_types":["client_credentials"],"scope":"read write","token_endpoint_auth_method":"client_secret_basic"}`

// register posts metadata to the registration endpoint, with token as the
// initial access token when it is not empty.
func (ts *testServer) register(t *testing.T, metadata, token string) response {
	t.Helper()
	a := noAuth
	if token != "" {
		a = bearerAuth(token)
	}
	return ts.raw(t, http.MethodPost, registrationPath, "application/json", metadata, a)
}

// registered is a client information response (RFC 7591 §3.2.1).
type registered struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            string   `json:"client_secret"`
	RegistrationAccessToken string   `json:"registration_access_token"`
	RegistrationClientURI   string   `json:"registration_client_uri"`
	ClientName              string   `json:"client_name"`
	RedirectURIs            []string `json:"redirect_uris"`
	GrantTypes              []string `json:"grant_types"`
	Scope                   string   `json:"scope"`
}

// registerOK registers metadata and decodes the 201 answer.
func (ts *testServer) registerOK(t *testing.T, metadata string) registered {
	t.Helper()
	r := ts.register(t, metadata, ts.opts.cfg.RegistrationToken)
	require.Equal(t, http.StatusCreated, r.Status, "register: %s", r.Body)
	var reg registered
	require.NoError(t, json.Unmarshal(r.Body, &reg))
	require.NotEmpty(t, reg.ClientID)
	require.NotEmpty(t, reg.RegistrationAccessToken)
	return reg
}

// configure sends an RFC 7592 request for clientID with token.
func (ts *testServer) configure(t *testing.T, method, clientID, token, body string) response {
	t.Helper()
	a := noAuth
	if token != "" {
		a = bearerAuth(token)
	}
	contentType := ""
	if body != "" {
		contentType = "application/json"
	}
	return ts.raw(t, method, registrationPath+"/"+clientID, contentType, body, a)
}

// servicePolicy lets registered clients use client_credentials and the
// scopes read and write: the tests of the RFC 7591 and 7592 mechanics
// register such clients.
var servicePolicy = server.RegistrationPolicy{
	AllowedScopes:     []string{"openid", "profile", "email", "groups", "offline_access", "read", "write"},
	AllowedGrantTypes: []string{clients.GrantAuthorizationCode, clients.GrantRefreshToken, clients.GrantClientCredentials},
}

func TestRegistrationDisabled(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	requireError(t, ts.register(t, ccMetadata, ""), http.StatusNotFound, "not_found")
	requireError(t, ts.configure(t, http.MethodGet, "basic-client", "x", ""), http.StatusNotFound, "not_found")
	require.NotContains(t, ts.get(t, "/.well-known/openid-configuration").json(t), "registration_endpoint")
}

func TestRegistrationInitialAccessToken(t *testing.T) {
	t.Parallel()
	open := newTestServer(t, withRegistration(""), withRegistrationPolicy(servicePolicy))
	guarded := newTestServer(t, withRegistration("initial-access-token"), withRegistrationPolicy(servicePolicy))
	for _, tc := range []struct {
		name      string
		ts        *testServer
		header    string // Authorization
		status    int
		challenge string
	}{
		{name: "open, no token", ts: open, status: http.StatusCreated},
		{name: "open, any token", ts: open, header: "Bearer whatever", status: http.StatusCreated},
		{name: "guarded, no token", ts: guarded, status: http.StatusUnauthorized, challenge: `Bearer realm="latch"`},
		{name: "guarded, wrong token", ts: guarded, header: "Bearer initial-access-tokeN", status: http.StatusUnauthorized, challenge: challengeBearer},
		{name: "guarded, token prefix", ts: guarded, header: "Bearer initial", status: http.StatusUnauthorized, challenge: challengeBearer},
		{name: "guarded, Basic", ts: guarded, header: "Basic aW5pdGlhbC1hY2Nlc3MtdG9rZW46", status: http.StatusUnauthorized, challenge: challengeBearer},
		{name: "guarded, right token", ts: guarded, header: "Bearer initial-access-token", status: http.StatusCreated},
		{name: "guarded, scheme in lower case", ts: guarded, header: "bearer initial-access-token", status: http.StatusCreated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, tc.ts.URL+registrationPath, strings.NewReader(ccMetadata))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			r := tc.ts.do(t, req)
			if tc.status == http.StatusUnauthorized {
				requireError(t, r, tc.status, "invalid_token")
				requireChallenge(t, r, tc.challenge)
				return
			}
			require.Equal(t, tc.status, r.Status, "body %s", r.Body)
		})
	}
}

func TestRegistrationResponse(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withRegistration(""), withRegistrationPolicy(servicePolicy))
	require.Equal(t, ts.URL+registrationPath, ts.get(t, "/.well-known/openid-configuration").json(t)["registration_endpoint"])

	t.Run("confidential client", func(t *testing.T) {
		r := ts.register(t, ccMetadata, "")
		require.Equal(t, http.StatusCreated, r.Status, "body %s", r.Body)
		require.Contains(t, r.Header.Get("Cache-Control"), "no-store")
		require.Contains(t, r.Header.Get("Content-Type"), "application/json")
		got := r.json(t)
		id, _ := got["client_id"].(string)
		require.Regexp(t, `^[0-9a-f]{32}$`, id, "a random, URL-safe client id")
		require.NotEmpty(t, got["client_secret"])
		require.NotEmpty(t, got["registration_access_token"])
		require.InDelta(t, float64(0), got["client_secret_expires_at"], 0, "the secret never expires")
		require.NotZero(t, got["client_id_issued_at"])
		require.Equal(t, ts.URL+registrationPath+"/"+id, got["registration_client_uri"])
		for _, k := range []string{"client_id", "client_secret", "registration_access_token", "client_id_issued_at", "client_secret_expires_at", "registration_client_uri"} {
			delete(got, k)
		}
		want := `{"client_name":"CI bot","grant_types":["client_credentials"],"response_types":[],"redirect_uris":[],
			"post_logout_redirect_uris":[],"scope":"read write","token_endpoint_auth_method":"client_secret_basic"}`
		b, _ := json.Marshal(got)
		requireJSONEqual(t, want, b)
	})
	t.Run("defaults of RFC 7591, public client", func(t *testing.T) {
		r := ts.register(t, `{"redirect_uris":["http://127.0.0.1:5555/cb"],"token_endpoint_auth_method":"none"}`, "")
		require.Equal(t, http.StatusCreated, r.Status, "body %s", r.Body)
		got := r.json(t)
		require.NotContains(t, got, "client_secret", "a public client has no secret")
		require.NotContains(t, got, "client_secret_expires_at")
		require.Equal(t, []any{"authorization_code"}, got["grant_types"])
		require.Equal(t, []any{"code"}, got["response_types"])
		require.Equal(t, "openid profile email groups offline_access", got["scope"], "the scopes of discovery")
	})
	t.Run("default method is client_secret_basic", func(t *testing.T) {
		got := ts.register(t, `{"redirect_uris":["https://app.example.com/cb"],"scope":""}`, "").json(t)
		require.Equal(t, "client_secret_basic", got["token_endpoint_auth_method"])
		require.NotEmpty(t, got["client_secret"])
		require.Equal(t, "", got["scope"], "an empty scope asks for none")
	})
	t.Run("unknown metadata is ignored", func(t *testing.T) {
		r := ts.register(t, `{"grant_types":["client_credentials"],"logo_uri":5,"contacts":["ops@example.com"],
			"software_statement":"eyJ","client_name#fr":"Robot","skip_consent":true,"audience":["x"]}`, "")
		require.Equal(t, http.StatusCreated, r.Status, "body %s", r.Body)
		got := r.json(t)
		require.NotContains(t, got, "logo_uri")
		c, err := (&clients.Manager{Store: ts.Store}).Get(t.Context(), got["client_id"].(string))
		require.NoError(t, err)
		require.False(t, c.SkipConsent, "registration never skips consent")
		require.Empty(t, c.Audience)
	})
	t.Run("public keys for private_key_jwt", func(t *testing.T) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
		require.NoError(t, err)
		r := ts.register(t, `{"grant_types":["client_credentials"],"token_endpoint_auth_method":"private_key_jwt","jwks":`+string(jwks)+`}`, "")
		require.Equal(t, http.StatusCreated, r.Status, "body %s", r.Body)
		got := r.json(t)
		require.NotContains(t, got, "client_secret")
		require.Len(t, got["jwks"].(map[string]any)["keys"], 1)
	})
}

func TestRegistrationErrors(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withRegistration(""), withRegistrationPolicy(servicePolicy))
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	private, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key, KeyID: "k1"}}})
	require.NoError(t, err)
	for _, tc := range []struct {
		name, body, want string
	}{
		{"relative redirect URI", `{"redirect_uris":["/cb"]}`, "invalid_redirect_uri"},
		{"redirect URI with a fragment", `{"redirect_uris":["https://app.example.com/cb#x"]}`, "invalid_redirect_uri"},
		{"http redirect URI without host", `{"redirect_uris":["http:///cb"]}`, "invalid_redirect_uri"},
		{"authorization_code without redirect URI", `{"client_name":"x"}`, "invalid_redirect_uri"},
		{"bad post-logout URI", `{"redirect_uris":["https://app.example.com/cb"],"post_logout_redirect_uris":["bye"]}`, "invalid_redirect_uri"},
		{"redirect URI of the wrong type", `{"redirect_uris":"https://app.example.com/cb"}`, "invalid_client_metadata"},
		{"unknown grant type", `{"grant_types":["implicit"]}`, "invalid_client_metadata"},
		{"empty grant types", `{"grant_types":[]}`, "invalid_client_metadata"},
		{"public client with client_credentials", `{"grant_types":["client_credentials"],"token_endpoint_auth_method":"none"}`, "invalid_client_metadata"},
		{"password grant", `{"grant_types":["password"]}`, "invalid_client_metadata"},
		{"response type token", `{"redirect_uris":["https://app.example.com/cb"],"response_types":["token"]}`, "invalid_client_metadata"},
		{"response type without authorization_code", `{"grant_types":["client_credentials"],"response_types":["code"]}`, "invalid_client_metadata"},
		{"unknown auth method", `{"grant_types":["client_credentials"],"token_endpoint_auth_method":"tls_client_auth"}`, "invalid_client_metadata"},
		{"private_key_jwt without keys", `{"grant_types":["client_credentials"],"token_endpoint_auth_method":"private_key_jwt"}`, "invalid_client_metadata"},
		{"private key in jwks", `{"grant_types":["client_credentials"],"token_endpoint_auth_method":"private_key_jwt","jwks":` + string(private) + `}`, "invalid_client_metadata"},
		{"jwks not a key set", `{"grant_types":["client_credentials"],"token_endpoint_auth_method":"private_key_jwt","jwks":{"keys":[{"kty":"nope"}]}}`, "invalid_client_metadata"},
		{"scope with a quote", `{"grant_types":["client_credentials"],"scope":"read \"write\""}`, "invalid_client_metadata"},
		{"scope as an array", `{"grant_types":["client_credentials"],"scope":["read"]}`, "invalid_client_metadata"},
		{"client_name a number", `{"grant_types":["client_credentials"],"client_name":5}`, "invalid_client_metadata"},
		{"malformed JSON", `{"grant_types":["client_credentials"`, "invalid_client_metadata"},
		{"not an object", `["client_credentials"]`, "invalid_client_metadata"},
		{"two objects", `{"grant_types":["client_credentials"]} {}`, "invalid_client_metadata"},
		{"empty body", ``, "invalid_client_metadata"},
		{"a form", `grant_types=client_credentials`, "invalid_client_metadata"},
		{"too large", `{"client_name":"` + strings.Repeat("x", 70<<10) + `","grant_types":["client_credentials"]}`, "invalid_client_metadata"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.register(t, tc.body, "")
			requireError(t, r, http.StatusBadRequest, tc.want)
			require.NotEmpty(t, r.json(t)["error_description"])
		})
	}
	clientsAfter, err := ts.Store.ListClients(t.Context())
	require.NoError(t, err)
	require.Len(t, clientsAfter, 7, "no failed registration left a client behind")
}

// TestRegistrationEndToEnd registers a client over HTTP, which then gets a
// token with golang.org/x/oauth2 and revokes it itself.
func TestRegistrationEndToEnd(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withRegistration("initial-access-token"), withRegistrationPolicy(servicePolicy))
	reg := ts.registerOK(t, ccMetadata)
	require.NotEmpty(t, reg.ClientSecret)

	cc := clientcredentials.Config{ClientID: reg.ClientID, ClientSecret: reg.ClientSecret,
		TokenURL: ts.URL + "/oauth2/token", Scopes: []string{"read"}, AuthStyle: oauth2.AuthStyleInHeader}
	tok, err := cc.Token(context.WithValue(t.Context(), oauth2.HTTPClient, ts.http))
	require.NoError(t, err)
	got := ts.introspect(t, tok.AccessToken).json(t)
	require.Equal(t, true, got["active"])
	require.Equal(t, reg.ClientID, got["client_id"])
	require.Equal(t, "read", got["scope"])

	r := ts.post(t, "/oauth2/revoke", "form", map[string]string{"token": tok.AccessToken}, basicAuth(reg.ClientID, reg.ClientSecret))
	require.Equal(t, http.StatusOK, r.Status, "revoke: %s", r.Body)
	require.False(t, ts.active(t, tok.AccessToken), "the revoked token is inactive")

	// A scope it did not register is refused.
	r = ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "client_credentials", "scope": "admin"}, basicAuth(reg.ClientID, reg.ClientSecret))
	requireError(t, r, http.StatusBadRequest, "invalid_scope")
}

// TestRegistrationManagement is RFC 7592: read, update and delete with the
// registration access token.
func TestRegistrationManagement(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withRegistration(""), withRegistrationPolicy(servicePolicy))
	a := ts.registerOK(t, `{"client_name":"App A","redirect_uris":["https://a.example.com/cb"],"grant_types":["authorization_code","client_credentials"],"scope":"read"}`)
	b := ts.registerOK(t, ccMetadata)

	t.Run("read", func(t *testing.T) {
		r := ts.configure(t, http.MethodGet, a.ClientID, a.RegistrationAccessToken, "")
		require.Equal(t, http.StatusOK, r.Status, "body %s", r.Body)
		require.Contains(t, r.Header.Get("Cache-Control"), "no-store")
		got := r.json(t)
		require.NotContains(t, got, "client_secret", "only its hash is kept")
		require.InDelta(t, float64(0), got["client_secret_expires_at"], 0)
		require.Equal(t, a.RegistrationAccessToken, got["registration_access_token"], "the token stays valid")
		require.Equal(t, a.RegistrationClientURI, got["registration_client_uri"])
		require.Equal(t, "App A", got["client_name"])
		require.Equal(t, []any{"https://a.example.com/cb"}, got["redirect_uris"])
		require.Equal(t, []any{"code"}, got["response_types"])
	})

	t.Run("refused", func(t *testing.T) {
		for _, tc := range []struct {
			name, method, id, token string
		}{
			{"no token", http.MethodGet, a.ClientID, ""},
			{"wrong token", http.MethodGet, a.ClientID, a.RegistrationAccessToken + "x"},
			{"B's token on A, read", http.MethodGet, a.ClientID, b.RegistrationAccessToken},
			{"B's token on A, update", http.MethodPut, a.ClientID, b.RegistrationAccessToken},
			{"B's token on A, delete", http.MethodDelete, a.ClientID, b.RegistrationAccessToken},
			{"A's token on B", http.MethodGet, b.ClientID, a.RegistrationAccessToken},
			{"unknown client", http.MethodGet, "no-such-client", a.RegistrationAccessToken},
			{"client made by an administrator", http.MethodGet, "basic-client", a.RegistrationAccessToken},
			{"empty stored hash", http.MethodDelete, "basic-client", hex.EncodeToString(make([]byte, 32))},
		} {
			t.Run(tc.name, func(t *testing.T) {
				body := ""
				if tc.method == http.MethodPut {
					body = `{"client_id":"` + tc.id + `","grant_types":["client_credentials"]}`
				}
				r := ts.configure(t, tc.method, tc.id, tc.token, body)
				requireError(t, r, http.StatusUnauthorized, "invalid_token")
			})
		}
		// Nothing changed.
		got := ts.configure(t, http.MethodGet, a.ClientID, a.RegistrationAccessToken, "").json(t)
		require.Equal(t, "App A", got["client_name"])
		_, err := ts.Store.GetClient(t.Context(), "basic-client")
		require.NoError(t, err)
	})

	t.Run("update", func(t *testing.T) {
		for _, tc := range []struct{ name, body, want string }{
			{"another client_id", `{"client_id":"` + b.ClientID + `","redirect_uris":["https://a.example.com/cb"]}`, "invalid_client_metadata"},
			{"no client_id", `{"redirect_uris":["https://a.example.com/cb"]}`, "invalid_client_metadata"},
			{"wrong client_secret", `{"client_id":"` + a.ClientID + `","client_secret":"guess","redirect_uris":["https://a.example.com/cb"]}`, "invalid_client_metadata"},
			{"relative redirect URI", `{"client_id":"` + a.ClientID + `","redirect_uris":["cb"]}`, "invalid_redirect_uri"},
			{"malformed", `{"client_id":`, "invalid_client_metadata"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				requireError(t, ts.configure(t, http.MethodPut, a.ClientID, a.RegistrationAccessToken, tc.body), http.StatusBadRequest, tc.want)
			})
		}

		body := `{"client_id":"` + a.ClientID + `","client_secret":"` + a.ClientSecret + `","client_name":"App A, renamed",
			"redirect_uris":["https://a.example.com/new","http://127.0.0.1:5555/cb"],
			"grant_types":["authorization_code","client_credentials"],"scope":"read write",
			"registration_access_token":"ignored","registration_client_uri":"ignored","client_id_issued_at":1}`
		r := ts.configure(t, http.MethodPut, a.ClientID, a.RegistrationAccessToken, body)
		require.Equal(t, http.StatusOK, r.Status, "body %s", r.Body)
		got := r.json(t)
		require.NotContains(t, got, "client_secret", "the secret is unchanged")
		require.Equal(t, "App A, renamed", got["client_name"])

		got = ts.configure(t, http.MethodGet, a.ClientID, a.RegistrationAccessToken, "").json(t)
		require.Equal(t, "App A, renamed", got["client_name"])
		require.Equal(t, []any{"https://a.example.com/new", "http://127.0.0.1:5555/cb"}, got["redirect_uris"])
		require.Equal(t, "read write", got["scope"])
		c, err := (&clients.Manager{Store: ts.Store}).Get(t.Context(), a.ClientID)
		require.NoError(t, err)
		require.Equal(t, []string{"https://a.example.com/new", "http://127.0.0.1:5555/cb"}, c.RedirectURIs, "the store has it")

		// The secret still works, with the new scopes.
		r = ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "client_credentials", "scope": "write"}, basicAuth(a.ClientID, a.ClientSecret))
		require.Equal(t, http.StatusOK, r.Status, "body %s", r.Body)
	})

	t.Run("public client turns confidential", func(t *testing.T) {
		p := ts.registerOK(t, `{"redirect_uris":["http://127.0.0.1:5555/cb"],"token_endpoint_auth_method":"none"}`)
		require.Empty(t, p.ClientSecret)
		r := ts.configure(t, http.MethodPut, p.ClientID, p.RegistrationAccessToken,
			`{"client_id":"`+p.ClientID+`","grant_types":["client_credentials"],"scope":"read"}`)
		require.Equal(t, http.StatusOK, r.Status, "body %s", r.Body)
		secret, _ := r.json(t)["client_secret"].(string)
		require.NotEmpty(t, secret, "its first secret is shown once")
		r = ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "client_credentials"}, basicAuth(p.ClientID, secret))
		require.Equal(t, http.StatusOK, r.Status, "body %s", r.Body)
	})

	t.Run("delete", func(t *testing.T) {
		token := ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "client_credentials", "scope": "read"}, basicAuth(a.ClientID, a.ClientSecret)).json(t)["access_token"].(string)
		require.True(t, ts.active(t, token))

		r := ts.configure(t, http.MethodDelete, a.ClientID, a.RegistrationAccessToken, "")
		require.Equal(t, http.StatusNoContent, r.Status, "body %s", r.Body)
		require.Empty(t, r.Body)

		require.False(t, ts.active(t, token), "the deleted client's token is inactive")
		requireError(t, ts.configure(t, http.MethodGet, a.ClientID, a.RegistrationAccessToken, ""), http.StatusUnauthorized, "invalid_token")
		requireError(t, ts.configure(t, http.MethodDelete, a.ClientID, a.RegistrationAccessToken, ""), http.StatusUnauthorized, "invalid_token")
		r = ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "client_credentials"}, basicAuth(a.ClientID, a.ClientSecret))
		requireError(t, r, http.StatusUnauthorized, "invalid_client")

		// B is untouched.
		require.Equal(t, http.StatusOK, ts.configure(t, http.MethodGet, b.ClientID, b.RegistrationAccessToken, "").Status)
	})
}

// TestRegistrationSecretsAtRest: the registration access token and the
// client secret are nowhere in the database file in clear.
func TestRegistrationSecretsAtRest(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withRegistration(""), withRegistrationPolicy(servicePolicy))
	reg := ts.registerOK(t, ccMetadata)

	c, err := (&clients.Manager{Store: ts.Store}).Get(t.Context(), reg.ClientID)
	require.NoError(t, err)
	sum := sha256.Sum256([]byte(reg.RegistrationAccessToken))
	require.Equal(t, hex.EncodeToString(sum[:]), c.RegistrationTokenHash)
	require.Equal(t, clients.HashGenerated(reg.ClientSecret), c.SecretHash)

	var db []byte
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(ts.opts.dsn + suffix)
		if suffix == "-wal" && os.IsNotExist(err) {
			continue
		}
		require.NoError(t, err)
		db = append(db, b...)
	}
	require.True(t, bytes.Contains(db, []byte(reg.ClientID)), "the client is in the file read")
	require.True(t, bytes.Contains(db, []byte(c.RegistrationTokenHash)), "its token hash is in the file read")
	require.False(t, bytes.Contains(db, []byte(reg.RegistrationAccessToken)), "the registration access token is stored in clear")
	require.False(t, bytes.Contains(db, []byte(reg.ClientSecret)), "the client secret is stored in clear")
}
