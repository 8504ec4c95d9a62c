package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/server"
	"github.com/latchauth/latch/storage"
)

// testSystemSecret is the system secret of every test server that does not
// ask for a generated one, so issueGrant can mint tokens the server accepts.
var testSystemSecret = []byte("latch-test-system-secret-0123456789abcdef")

// testServer is one Latch server on a real SQLite file, served over real
// HTTP by httptest.
type testServer struct {
	URL     string
	Store   *storage.GormStore
	Server  *server.Server
	opts    serverOptions     // what it was started with
	secret  []byte            // the system secret in use
	secrets map[string]string // client id → clear secret
	http    *http.Client
	httpSrv *httptest.Server
}

type serverOptions struct {
	cfg     server.Config
	driver  string // "" is sqlite
	dsn     string
	grace   time.Duration     // the store's refresh token grace period
	secrets map[string]string // non-nil: the clients already exist
	wrap    func(storage.Store) storage.Store
	// localhost: the issuer is http://localhost:PORT, a domain (passkeys
	// need one), instead of http://127.0.0.1:PORT.
	localhost bool
}

type option func(*serverOptions)

// withLifespans sets the access and refresh token lifespans.
func withLifespans(access, refresh time.Duration) option {
	return func(o *serverOptions) {
		o.cfg.AccessTokenLifespan, o.cfg.RefreshTokenLifespan = access, refresh
	}
}

// withGeneratedSystemSecret leaves Config.SystemSecret empty, so the one
// stored in the database is used (and generated on first start).
func withGeneratedSystemSecret() option {
	return func(o *serverOptions) { o.cfg.SystemSecret = nil }
}

// withSystemSecret sets Config.SystemSecret.
func withSystemSecret(secret []byte) option {
	return func(o *serverOptions) { o.cfg.SystemSecret = secret }
}

// withLocalhostIssuer makes the issuer http://localhost:PORT.
func withLocalhostIssuer() option { return func(o *serverOptions) { o.localhost = true } }

// withDSN opens the store on a given SQLite file.
func withDSN(dsn string) option { return func(o *serverOptions) { o.dsn = dsn } }

// withStoreWrapper hands the server a wrapped store (fault injection).
func withStoreWrapper(wrap func(storage.Store) storage.Store) option {
	return func(o *serverOptions) { o.wrap = wrap }
}

// withRegistration turns on dynamic client registration, requiring
// initialToken as a bearer token when it is not empty.
func withRegistration(initialToken string) option {
	return func(o *serverOptions) {
		o.cfg.RegistrationEnabled, o.cfg.RegistrationToken = true, initialToken
	}
}

// withRegistrationPolicy sets the registration policy.
func withRegistrationPolicy(p server.RegistrationPolicy) option {
	return func(o *serverOptions) { o.cfg.Registration = p }
}

// withAdminToken turns the admin API on with token.
func withAdminToken(token string) option {
	return func(o *serverOptions) { o.cfg.AdminToken = token }
}

// withAccessTokenFormat sets tokens.access_token_format: "opaque" or "jwt".
func withAccessTokenFormat(format string) option {
	return func(o *serverOptions) { o.cfg.AccessTokenFormat = format }
}

// newTestServer starts a server with the test clients and users:
//
//	basic-client        client_secret_basic; client_credentials, refresh_token
//	post-client         client_secret_post;  client_credentials, refresh_token
//	other-client        client_secret_basic; client_credentials, refresh_token
//	refresh-only-client client_secret_basic; refresh_token (no client_credentials)
//	public-client       none; authorization_code, refresh_token (PKCE)
//	web-client          client_secret_basic; authorization_code, refresh_token
//	skip-client         like web-client, with skip_consent
//	users alice / alice-password and bob / bob-password (see createUsers)
func newTestServer(t *testing.T, opts ...option) *testServer {
	t.Helper()
	o := serverOptions{
		cfg: server.Config{SystemSecret: testSystemSecret},
		dsn: filepath.Join(t.TempDir(), "latch.db"),
	}
	for _, opt := range opts {
		opt(&o)
	}
	return startServer(t, o)
}

func startServer(t *testing.T, o serverOptions) *testServer {
	t.Helper()
	// Not t.Context(): it is cancelled before the cleanups run.
	ctx := context.Background()
	driver := o.driver
	if driver == "" {
		driver = "sqlite"
	}
	st, err := storage.Open(ctx, storage.Options{Driver: driver, DSN: o.dsn, RefreshTokenGracePeriod: o.grace})
	require.NoError(t, err, "open store")
	t.Cleanup(func() { _ = st.Close() })
	require.NoError(t, st.Migrate(ctx), "migrate")

	hasher := o.cfg.Hasher
	if hasher == nil {
		hasher = clients.NewHasher(100)
	}
	secrets := o.secrets
	if secrets == nil {
		secrets = createClients(t, &clients.Manager{Store: st, Hasher: hasher})
		createUsers(t, st)
	}

	httpSrv := httptest.NewUnstartedServer(nil)
	cfg := o.cfg
	cfg.Issuer = "http://" + httpSrv.Listener.Addr().String()
	if o.localhost {
		cfg.Issuer = strings.Replace(cfg.Issuer, "127.0.0.1", "localhost", 1)
	}
	cfg.Store = st
	if o.wrap != nil {
		cfg.Store = o.wrap(st)
	}
	cfg.Hasher = hasher
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if o.secrets == nil && (cfg.SigningAlgorithm == "" || cfg.SigningAlgorithm == "RS256") {
		storeSigningKey(t, st) // a restart keeps the first start's key
	}
	srv, err := server.New(ctx, cfg)
	require.NoError(t, err, "server.New")
	httpSrv.Config.Handler = srv
	httpSrv.Start()

	transport := &http.Transport{MaxIdleConns: 128, MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}
	var roundTripper http.RoundTripper = transport
	if os.Getenv("LATCH_TEST_OPENAPI") != "off" {
		// Every response the test receives from the server is checked
		// against openapi.yaml (openapi_test.go).
		roundTripper = validateResponses(t, transport, httpSrv.Listener.Addr().String())
	}
	t.Cleanup(func() {
		httpSrv.Close()
		transport.CloseIdleConnections()
	})
	secret := cfg.SystemSecret
	if len(secret) == 0 {
		// The server uses the stored secret; issueGrant needs it too.
		secret, err = st.SystemSecret(ctx, []byte("never stored: a secret exists"))
		require.NoError(t, err)
	}
	return &testServer{
		URL: cfg.Issuer, Store: st, Server: srv, opts: o, secret: secret, secrets: secrets, httpSrv: httpSrv,
		http: &http.Client{Transport: roundTripper, Timeout: 15 * time.Second},
	}
}

// restart stops ts, closes its store and starts a new server with a new
// store on the same SQLite file, keeping its options.
func (ts *testServer) restart(t *testing.T, opts ...option) *testServer {
	t.Helper()
	ts.httpSrv.Close()
	require.NoError(t, ts.Store.Close(), "close the first store")
	o := ts.opts
	o.secrets = ts.secrets
	for _, opt := range opts {
		opt(&o)
	}
	return startServer(t, o)
}

func createClients(t *testing.T, m *clients.Manager) map[string]string {
	t.Helper()
	all := []*clients.Client{
		{ID: "basic-client", TokenEndpointAuthMethod: clients.AuthMethodBasic,
			GrantTypes: []string{"client_credentials", "refresh_token"}, Scopes: []string{"read", "write", "offline_access"}},
		{ID: "post-client", TokenEndpointAuthMethod: clients.AuthMethodPost,
			GrantTypes: []string{"client_credentials", "refresh_token"}, Scopes: []string{"read", "write", "offline_access"}},
		{ID: "other-client", TokenEndpointAuthMethod: clients.AuthMethodBasic,
			GrantTypes: []string{"client_credentials", "refresh_token"}, Scopes: []string{"read", "write", "offline_access"}},
		{ID: "refresh-only-client", TokenEndpointAuthMethod: clients.AuthMethodBasic,
			GrantTypes: []string{"refresh_token"}, Scopes: []string{"read", "offline_access"}},
		{ID: "public-client", Name: "Public App", TokenEndpointAuthMethod: clients.AuthMethodNone,
			GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
			RedirectURIs: []string{"http://127.0.0.1:5555/cb"}, PostLogoutRedirectURIs: []string{"http://127.0.0.1:5555/bye"},
			Scopes: []string{"openid", "profile", "email", "groups", "read", "offline_access"}},
		{ID: "web-client", Name: "Web App", TokenEndpointAuthMethod: clients.AuthMethodBasic,
			GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
			RedirectURIs: []string{"http://127.0.0.1:5555/cb", "https://app.example.com/cb"}, PostLogoutRedirectURIs: []string{"http://127.0.0.1:5555/bye"},
			Scopes: []string{"openid", "profile", "email", "groups", "read", "offline_access"}},
		{ID: "skip-client", Name: "Trusted App", TokenEndpointAuthMethod: clients.AuthMethodBasic, SkipConsent: true,
			GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
			RedirectURIs: []string{"http://127.0.0.1:5555/cb"}, Scopes: []string{"openid", "profile", "email", "offline_access"}},
	}
	secrets := map[string]string{}
	for _, c := range all {
		secret, err := m.Create(context.Background(), c, "")
		require.NoError(t, err, "create client %s", c.ID)
		secrets[c.ID] = secret
	}
	return secrets
}

// auth is how a request authenticates its caller.
type auth struct {
	kind   string // "basic", "post", "id" (client_id alone), "bearer", "" (none)
	id     string
	secret string
}

func basicAuth(id, secret string) auth { return auth{kind: "basic", id: id, secret: secret} }
func postAuth(id, secret string) auth  { return auth{kind: "post", id: id, secret: secret} }
func idAuth(id string) auth            { return auth{kind: "id", id: id} }
func bearerAuth(token string) auth     { return auth{kind: "bearer", secret: token} }

var noAuth = auth{}

// as authenticates as clientID the way it is registered to.
func (ts *testServer) as(clientID string) auth {
	switch clientID {
	case "post-client":
		return postAuth(clientID, ts.secrets[clientID])
	case "public-client":
		return idAuth(clientID)
	}
	return basicAuth(clientID, ts.secrets[clientID])
}

// response is an answer read in full.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.Body, &m), "body is JSON: %s", r.Body)
	return m
}

var stackTrace = regexp.MustCompile(`goroutine \d+|\.go:\d+|runtime/debug|panic\(`)

// do sends req and reads the answer. Every answer of every test passes
// through here, so none may carry a stack trace.
func (ts *testServer) do(t *testing.T, req *http.Request) response {
	t.Helper()
	return ts.doWith(t, ts.http, req)
}

// doWith is do with another client (a browser's, with its cookie jar).
func (ts *testServer) doWith(t *testing.T, client *http.Client, req *http.Request) response {
	t.Helper()
	res, err := client.Do(req)
	require.NoError(t, err, "%s %s", req.Method, req.URL.Path)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	if stackTrace.Match(body) {
		t.Errorf("%s %s: the answer carries a stack trace: %s", req.Method, req.URL.Path, body)
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: body}
}

// raw sends body as is.
func (ts *testServer) raw(t *testing.T, method, path, contentType, body string, a auth) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, ts.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	switch a.kind {
	case "basic":
		req.SetBasicAuth(url.QueryEscape(a.id), url.QueryEscape(a.secret))
	case "bearer":
		req.Header.Set("Authorization", "Bearer "+a.secret)
	}
	return ts.do(t, req)
}

// post sends fields as a form ("form") or a JSON object ("json"), with the
// form-borne credentials of a added to them.
func (ts *testServer) post(t *testing.T, path, encoding string, fields map[string]string, a auth) response {
	t.Helper()
	all := map[string]string{}
	for k, v := range fields {
		all[k] = v
	}
	switch a.kind {
	case "post":
		all["client_id"], all["client_secret"] = a.id, a.secret
	case "id":
		all["client_id"] = a.id
	}
	if encoding == "json" {
		b, err := json.Marshal(all)
		require.NoError(t, err)
		return ts.raw(t, http.MethodPost, path, "application/json", string(b), a)
	}
	form := url.Values{}
	for k, v := range all {
		form.Set(k, v)
	}
	return ts.raw(t, http.MethodPost, path, "application/x-www-form-urlencoded", form.Encode(), a)
}

func (ts *testServer) get(t *testing.T, path string) response {
	t.Helper()
	return ts.raw(t, http.MethodGet, path, "", "", noAuth)
}

// clientCredentials gets an access token for clientID.
func (ts *testServer) clientCredentials(t *testing.T, clientID, scope string) string {
	t.Helper()
	r := ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "client_credentials", "scope": scope}, ts.as(clientID))
	require.Equal(t, http.StatusOK, r.Status, "client_credentials for %s: %s", clientID, r.Body)
	tok, _ := r.json(t)["access_token"].(string)
	require.NotEmpty(t, tok)
	return tok
}

// refresh uses refreshToken at the token endpoint as clientID.
func (ts *testServer) refresh(t *testing.T, clientID, refreshToken string) response {
	t.Helper()
	return ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "refresh_token", "refresh_token": refreshToken}, ts.as(clientID))
}

// refreshOK rotates refreshToken and returns the new pair.
func (ts *testServer) refreshOK(t *testing.T, clientID, refreshToken string) grant {
	t.Helper()
	r := ts.refresh(t, clientID, refreshToken)
	require.Equal(t, http.StatusOK, r.Status, "refresh: %s", r.Body)
	m := r.json(t)
	g := grant{}
	g.Access, _ = m["access_token"].(string)
	g.Refresh, _ = m["refresh_token"].(string)
	require.NotEmpty(t, g.Access)
	require.NotEmpty(t, g.Refresh)
	return g
}

// introspect asks about token as other-client, a confidential client.
func (ts *testServer) introspect(t *testing.T, token string) response {
	t.Helper()
	return ts.post(t, "/oauth2/introspect", "form", map[string]string{"token": token}, ts.as("other-client"))
}

// active reports whether token is active at introspection.
func (ts *testServer) active(t *testing.T, token string) bool {
	t.Helper()
	r := ts.introspect(t, token)
	require.Equal(t, http.StatusOK, r.Status, "introspect: %s", r.Body)
	active, ok := r.json(t)["active"].(bool)
	require.True(t, ok, "introspection has a boolean active: %s", r.Body)
	return active
}

// requireError checks an RFC 6749 error answer: status, code, JSON, no
// caching, and WWW-Authenticate on every 401.
func requireError(t *testing.T, r response, status int, code string) {
	t.Helper()
	require.Equal(t, status, r.Status, "status; body %s", r.Body)
	require.Contains(t, r.Header.Get("Content-Type"), "application/json")
	require.Equal(t, code, r.json(t)["error"], "error code; body %s", r.Body)
	require.Contains(t, r.Header.Get("Cache-Control"), "no-store")
	if status == http.StatusUnauthorized {
		require.NotEmpty(t, r.Header.Get("WWW-Authenticate"), "a 401 names its scheme")
	}
}

// requireJSONEqual compares two JSON documents as values.
func requireJSONEqual(t *testing.T, want string, got []byte) {
	t.Helper()
	require.JSONEq(t, want, string(bytes.TrimSpace(got)))
}

// The WWW-Authenticate challenges (RFC 7235 §4.1, RFC 6750 §3): auth-params
// are comma-separated.
const (
	challengeBasic  = `Basic realm="latch"`
	challengeBearer = `Bearer realm="latch", error="invalid_token"`
)

func requireChallenge(t *testing.T, r response, want string) {
	t.Helper()
	require.Equal(t, want, r.Header.Get("WWW-Authenticate"))
}
