package server_test

// The OpenAPI document (openapi.yaml, served at GET /openapi.yaml) is a
// contract, and this file holds it to it:
//
//   - the document loads and validates with kin-openapi;
//   - OAuthRevokeRequest is exactly SPEC's;
//   - every route of routes.go is in the document, with the same methods;
//   - every response a test server (startServer) sends to its test is
//     validated against the document as the client receives it: status,
//     content type, required headers and body schema (openAPIValidator;
//     LATCH_TEST_OPENAPI=off turns it off).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

const openAPIFile = "openapi.yaml"

// openAPIContract is the loaded document and a router over it, shared by
// every test server of the process. Both are only read once built.
type openAPIContract struct {
	doc    *openapi3.T
	router routers.Router
	// errorSchema is the body of a 404 or 405 for a path or method the
	// document does not have.
	errorSchema *openapi3.Schema
}

var loadOpenAPIContract = sync.OnceValues(func() (*openAPIContract, error) {
	raw, err := os.ReadFile(openAPIFile)
	if err != nil {
		return nil, err
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(raw)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", openAPIFile, err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("validate %s: %w", openAPIFile, err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("router over %s: %w", openAPIFile, err)
	}
	errorSchema := doc.Components.Schemas["OAuthError"]
	if errorSchema == nil || errorSchema.Value == nil {
		return nil, errors.New("components.schemas.OAuthError is missing")
	}
	return &openAPIContract{doc: doc, router: router, errorSchema: errorSchema.Value}, nil
})

// openAPIValidator checks the responses a test server sends to its test's
// HTTP client (testServer.http, and the browsers that share its transport)
// and keeps what failed, to be reported when the test ends.
type openAPIValidator struct {
	contract *openAPIContract
	next     http.RoundTripper
	host     string // of the test server: other hosts are not checked
	mu       sync.Mutex
	failures []string
}

// validateResponses wraps next so that every response of the server at
// host is checked against the document as the client receives it; the
// failures fail t when it ends.
func validateResponses(t *testing.T, next http.RoundTripper, host string) http.RoundTripper {
	t.Helper()
	contract, err := loadOpenAPIContract()
	require.NoError(t, err, "the OpenAPI document")
	v := &openAPIValidator{contract: contract, next: next, host: host}
	t.Cleanup(func() {
		v.mu.Lock()
		defer v.mu.Unlock()
		for _, f := range v.failures {
			t.Errorf("a response does not match %s:\n%s", openAPIFile, f)
		}
	})
	return v
}

// RoundTrip sends req, reads the answer in full, checks it and hands it on
// unchanged.
func (v *openAPIValidator) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := v.next.RoundTrip(req)
	if err != nil || req.URL.Host != v.host {
		return res, err
	}
	body, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	probe := req.Clone(context.Background())
	probe.Body = http.NoBody
	if probe.Method == "" {
		probe.Method = http.MethodGet
	}
	if err := v.contract.check(probe, res.StatusCode, res.Header, body); err != nil {
		excerpt := string(body)
		if len(excerpt) > 600 {
			excerpt = excerpt[:600] + "…"
		}
		v.mu.Lock()
		v.failures = append(v.failures, fmt.Sprintf("%s %s → %d %s\n%v\nbody: %s",
			probe.Method, probe.URL.Path, res.StatusCode, res.Header.Get("Content-Type"), err, excerpt))
		v.mu.Unlock()
	}
	return res, nil
}

// check validates one response against the operation of its request.
func (c *openAPIContract) check(req *http.Request, status int, header http.Header, body []byte) error {
	route, params, err := c.router.FindRoute(req)
	switch {
	case errors.Is(err, routers.ErrPathNotFound), errors.Is(err, routers.ErrMethodNotAllowed):
		// Not an operation of the document: the server must refuse it,
		// 404 for a path (or a feature that is off), 405 for a method, with
		// an OAuthError body.
		allowed := []int{http.StatusNotFound}
		if errors.Is(err, routers.ErrMethodNotAllowed) {
			allowed = append(allowed, http.StatusMethodNotAllowed)
		}
		if !slices.Contains(allowed, status) {
			return fmt.Errorf("the document has no operation %s %s (%v), yet the server answered %d", req.Method, req.URL.Path, err, status)
		}
		if req.Method == http.MethodHead {
			return nil
		}
		return c.checkError(header, body)
	case err != nil:
		return fmt.Errorf("find the operation: %w", err)
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}
	return openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts},
		Status:                 status,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                opts,
	})
}

func (c *openAPIContract) checkError(header http.Header, body []byte) error {
	if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return fmt.Errorf("a 404 or 405 must be an OAuthError in JSON, got Content-Type %q", ct)
	}
	value, err := decodeJSONBody(body)
	if err != nil {
		return err
	}
	if err := c.errorSchema.VisitJSON(value, openapi3.EnableJSONSchema2020()); err != nil {
		return fmt.Errorf("the body is not an OAuthError: %w", err)
	}
	return nil
}

func decodeJSONBody(body []byte) (any, error) {
	var value any
	if err := yaml.Unmarshal(body, &value); err != nil { // JSON is YAML
		return nil, fmt.Errorf("the body is not JSON: %w", err)
	}
	return value, nil
}

// TestOpenAPIDocumentValidates: the document is OpenAPI 3.1 and valid.
func TestOpenAPIDocumentValidates(t *testing.T) {
	t.Parallel()
	contract, err := loadOpenAPIContract()
	require.NoError(t, err)
	require.Equal(t, "3.1.0", contract.doc.OpenAPI)
	require.True(t, contract.doc.IsOpenAPI31OrLater())
	// Every operation names its responses, and every 401 its challenge.
	for path, item := range contract.doc.Paths.Map() {
		for method, op := range item.Operations() {
			require.NotEmpty(t, op.OperationID, "%s %s has an operationId", method, path)
			require.NotZero(t, op.Responses.Len(), "%s %s has responses", method, path)
			if r := op.Responses.Status(http.StatusUnauthorized); r != nil {
				require.Contains(t, r.Value.Headers, "WWW-Authenticate", "%s %s: a 401 carries WWW-Authenticate", method, path)
			}
		}
	}
}

// TestOpenAPIRevokeRequest: OAuthRevokeRequest and its enum are exactly
// SPEC's ("The revocation request"), in the YAML itself and as kin-openapi
// reads it, and the revocation endpoint takes it as a form and as JSON.
func TestOpenAPIRevokeRequest(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(openAPIFile)
	require.NoError(t, err)
	var file struct {
		OpenAPI    string `yaml:"openapi"`
		Components struct {
			Schemas map[string]any `yaml:"schemas"`
		} `yaml:"components"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &file))
	require.Equal(t, "3.1.0", file.OpenAPI)
	require.Equal(t, map[string]any{
		"type":        "object",
		"description": "OAuth 2.0 Token Revocation Request (RFC 7009).\nRevokes an access or refresh token.",
		"required":    []any{"token", "client_id"},
		"properties": map[string]any{
			"token": map[string]any{"type": "string", "description": "The token to revoke"},
			"token_type_hint": map[string]any{
				"$ref":        "#/components/schemas/OAuthRevokeRequestTokenTypeHint",
				"description": "Hint about token type (optional, improves performance)",
			},
			"client_id":     map[string]any{"type": "string", "description": "Client ID"},
			"client_secret": map[string]any{"type": "string", "description": "Client secret"},
		},
	}, file.Components.Schemas["OAuthRevokeRequest"])
	require.Equal(t, map[string]any{
		"type": "string",
		"enum": []any{"access_token", "refresh_token"},
	}, file.Components.Schemas["OAuthRevokeRequestTokenTypeHint"])

	contract, err := loadOpenAPIContract()
	require.NoError(t, err)
	schema := contract.doc.Components.Schemas["OAuthRevokeRequest"].Value
	require.True(t, schema.Type.Is("object"))
	require.Equal(t, []string{"token", "client_id"}, schema.Required)
	require.Len(t, schema.Properties, 4)
	for name, want := range map[string]string{"token": "The token to revoke", "client_id": "Client ID", "client_secret": "Client secret"} {
		require.True(t, schema.Properties[name].Value.Type.Is("string"), name)
		require.Equal(t, want, schema.Properties[name].Value.Description, name)
	}
	hint := schema.Properties["token_type_hint"]
	require.Equal(t, "#/components/schemas/OAuthRevokeRequestTokenTypeHint", hint.Ref)
	require.True(t, hint.Value.Type.Is("string"))
	require.Equal(t, []any{"access_token", "refresh_token"}, hint.Value.Enum)

	body := contract.doc.Paths.Value("/oauth2/revoke").Post.RequestBody.Value
	require.True(t, body.Required)
	for _, mediaType := range []string{"application/x-www-form-urlencoded", "application/json"} {
		mt := body.Content[mediaType]
		require.NotNil(t, mt, "the revocation endpoint takes %s", mediaType)
		require.Equal(t, "#/components/schemas/OAuthRevokeRequest", mt.Schema.Ref, mediaType)
	}
	// The schema accepts what SPEC allows and refuses what it does not.
	opts := []openapi3.SchemaValidationOption{openapi3.EnableJSONSchema2020()}
	require.NoError(t, schema.VisitJSON(map[string]any{"token": "t", "client_id": "c"}, opts...))
	require.NoError(t, schema.VisitJSON(map[string]any{"token": "t", "client_id": "c", "client_secret": "s", "token_type_hint": "refresh_token"}, opts...))
	require.Error(t, schema.VisitJSON(map[string]any{"client_id": "c"}, opts...), "token is required")
	require.Error(t, schema.VisitJSON(map[string]any{"token": "t"}, opts...), "client_id is required")
	require.Error(t, schema.VisitJSON(map[string]any{"token": "t", "client_id": "c", "token_type_hint": "id_token"}, opts...), "the hint is an enum")
}

// TestOpenAPIServed: GET /openapi.yaml answers the embedded document.
func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	r := ts.get(t, "/openapi.yaml")
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, "application/yaml; charset=utf-8", r.Header.Get("Content-Type"))
	want, err := os.ReadFile(openAPIFile)
	require.NoError(t, err)
	require.Equal(t, string(want), string(r.Body))
	doc, err := openapi3.NewLoader().LoadFromData(r.Body)
	require.NoError(t, err)
	require.NoError(t, doc.Validate(t.Context()))
	requireError(t, ts.raw(t, http.MethodPost, "/openapi.yaml", "", "", noAuth), http.StatusMethodNotAllowed, "invalid_request")
}

// TestOpenAPICoversEveryRoute: the paths of routes.go and of the document
// are the same, and so are the methods of each path, as the server's 405
// answers list them (Allow).
func TestOpenAPICoversEveryRoute(t *testing.T) {
	t.Parallel()
	contract, err := loadOpenAPIContract()
	require.NoError(t, err)
	documented := map[string][]string{}
	for path, item := range contract.doc.Paths.Map() {
		for method := range item.Operations() {
			documented[path] = append(documented[path], method)
		}
		sort.Strings(documented[path])
	}

	served := routesOfRoutesGo(t)
	require.NotEmpty(t, served)
	var missing []string
	for _, path := range served {
		if _, ok := documented[path]; !ok {
			missing = append(missing, path)
		}
	}
	require.Empty(t, missing, "routes.go serves paths the document does not have")
	var extra []string
	for path := range documented {
		if !slices.Contains(served, path) {
			extra = append(extra, path)
		}
	}
	require.Empty(t, extra, "the document has paths routes.go does not serve")

	devMode := func(o *serverOptions) { o.cfg.DevMode = true }
	ts := newTestServer(t, withRegistration(""), withAdminToken(adminToken), devMode)
	param := regexp.MustCompile(`\{[^}]+\}`)
	for path, methods := range documented {
		r := ts.raw(t, "PATCH", param.ReplaceAllString(path, "x"), "", "", noAuth)
		require.Equal(t, http.StatusMethodNotAllowed, r.Status, "PATCH %s", path)
		allowed := strings.Split(r.Header.Get("Allow"), ", ")
		sort.Strings(allowed)
		require.Equal(t, methods, allowed, "the methods of %s", path)
	}
}

// routesOfRoutesGo reads the path of every route that routes.go registers
// (r.HandleFunc, r.Handle, r.PathPrefix), resolving the package's path
// constants; a PathPrefix("/static/") is the document's "/static/{file}".
func routesOfRoutesGo(t *testing.T) []string {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	consts := map[string]ast.Expr{}
	var routesFile *ast.File
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		require.NoError(t, err, name)
		if name == "routes.go" {
			routesFile = f
		}
		for _, decl := range f.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.CONST {
				continue
			}
			for _, spec := range gen.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i < len(vs.Values) {
						consts[n.Name] = vs.Values[i]
					}
				}
			}
		}
	}
	require.NotNil(t, routesFile, "routes.go")
	var eval func(e ast.Expr) (string, bool)
	eval = func(e ast.Expr) (string, bool) {
		switch e := e.(type) {
		case *ast.BasicLit:
			if e.Kind == token.STRING {
				s, err := strconv.Unquote(e.Value)
				return s, err == nil
			}
		case *ast.Ident:
			if v, ok := consts[e.Name]; ok {
				return eval(v)
			}
		case *ast.BinaryExpr:
			if e.Op == token.ADD {
				a, okA := eval(e.X)
				b, okB := eval(e.Y)
				return a + b, okA && okB
			}
		}
		return "", false
	}
	seen := map[string]bool{}
	var paths []string
	ast.Inspect(routesFile, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) == 0 {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		recv, ok := sel.X.(*ast.Ident)
		if !ok || recv.Name != "r" || !slices.Contains([]string{"HandleFunc", "Handle", "PathPrefix"}, sel.Sel.Name) {
			return true
		}
		path, ok := eval(call.Args[0])
		if !ok {
			t.Errorf("routes.go: cannot read the path of %s at %s", sel.Sel.Name, fset.Position(call.Pos()))
			return true
		}
		if sel.Sel.Name == "PathPrefix" {
			path += "{file}"
		}
		if !seen[path] {
			seen[path] = true
			paths = append(paths, path)
		}
		return true
	})
	return paths
}

// TestOpenAPIValidatorCatchesDrift: the response check that every test
// server runs refuses what the document does not allow, so a green suite
// means something.
func TestOpenAPIValidatorCatchesDrift(t *testing.T) {
	t.Parallel()
	contract, err := loadOpenAPIContract()
	require.NoError(t, err)
	jsonHeader := func(kv ...string) http.Header {
		h := http.Header{"Content-Type": {"application/json;charset=UTF-8"}, "Cache-Control": {"no-store"}}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	for _, c := range []struct {
		name, method, path string
		status             int
		header             http.Header
		body               string
		ok                 bool
	}{
		{"a token response", "POST", "/oauth2/token", 200, jsonHeader(),
			`{"access_token":"a","token_type":"bearer","expires_in":3600,"scope":"read"}`, true},
		{"a token response without access_token", "POST", "/oauth2/token", 200, jsonHeader(),
			`{"token_type":"bearer","expires_in":3600}`, false},
		{"a token response that may be cached", "POST", "/oauth2/token", 200,
			http.Header{"Content-Type": {"application/json"}},
			`{"access_token":"a","token_type":"bearer","expires_in":3600}`, false},
		{"an undocumented status", "POST", "/oauth2/token", http.StatusTeapot, jsonHeader(), `{"error":"x"}`, false},
		{"an error page instead of JSON", "POST", "/oauth2/token", 400,
			http.Header{"Content-Type": {"text/html; charset=utf-8"}, "Cache-Control": {"no-store"}}, `<p>no</p>`, false},
		{"an error without its code", "POST", "/oauth2/token", 400, jsonHeader(), `{"error_description":"x"}`, false},
		{"a 401 without WWW-Authenticate", "POST", "/oauth2/revoke", 401, jsonHeader(), `{"error":"invalid_client"}`, false},
		{"a 401 with WWW-Authenticate", "POST", "/oauth2/revoke", 401,
			jsonHeader("WWW-Authenticate", `Basic realm="latch"`), `{"error":"invalid_client"}`, true},
		{"an empty revocation answer", "POST", "/oauth2/revoke", 200, http.Header{"Cache-Control": {"no-store"}}, ``, true},
		{"an inactive token, exactly", "POST", "/oauth2/introspect", 200, jsonHeader(), `{"active":false}`, true},
		{"an inactive token that says more", "POST", "/oauth2/introspect", 200, jsonHeader(), `{"active":false,"scope":"read"}`, false},
		{"an active token without token_use", "POST", "/oauth2/introspect", 200, jsonHeader(),
			`{"active":true,"scope":"read","client_id":"c","iat":1,"iss":"http://x","token_type":"Bearer"}`, false},
		{"a page", "GET", "/login", 200, http.Header{"Content-Type": {"text/html; charset=utf-8"}}, `<!doctype html>`, true},
		{"a redirect without Location", "GET", "/oauth2/auth", 303, http.Header{}, ``, false},
		{"an unknown path answered 404", "GET", "/nope", 404, jsonHeader(), `{"error":"not_found","error_description":"No such endpoint."}`, true},
		{"an unknown path answered 200", "GET", "/nope", 200, jsonHeader(), `{}`, false},
		{"a wrong method answered 405", "GET", "/oauth2/token", 405, jsonHeader("Allow", "POST"), `{"error":"invalid_request"}`, true},
		{"a wrong method answered 200", "GET", "/oauth2/token", 200, jsonHeader(), `{}`, false},
		{"a client without its lists", "GET", "/admin/clients/app", 200, jsonHeader(),
			`{"client_id":"app","token_endpoint_auth_method":"none","created_at":"2024-01-01T00:00:00Z","updated_at":"2024-01-01T00:00:00Z"}`, false},
	} {
		req, err := http.NewRequest(c.method, "http://127.0.0.1:1"+c.path, nil)
		require.NoError(t, err)
		err = contract.check(req, c.status, c.header, []byte(c.body))
		if c.ok {
			require.NoError(t, err, c.name)
		} else {
			require.Error(t, err, c.name)
		}
	}
}
