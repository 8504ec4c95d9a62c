package reliability_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// recorder is the transport of every client of these tests. It reads each
// answer whole and notes the ones a healthy server never gives: a 5xx, or
// a body that names SQLite's lock contention. Tests that expect 503s (the
// faults) look only at locked.
type recorder struct {
	base     http.RoundTripper
	requests atomic.Int64
	fiveXX   problems
	locked   problems
}

func newRecorder() *recorder {
	return &recorder{base: &http.Transport{
		MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: 30 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
	}}
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.requests.Add(1)
	resp, err := r.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if resp.StatusCode >= 500 {
		r.fiveXX.add("%s %s: %d %s", req.Method, req.URL.Path, resp.StatusCode, clip(body))
	}
	if l := strings.ToLower(string(body)); strings.Contains(l, "database is locked") || strings.Contains(l, "sqlite_busy") {
		r.locked.add("%s %s: %d %s", req.Method, req.URL.Path, resp.StatusCode, clip(body))
	}
	return resp, nil
}

func (r *recorder) close() {
	if t, ok := r.base.(*http.Transport); ok {
		t.CloseIdleConnections()
	}
}

func clip(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// creds is how a client authenticates: HTTP Basic with a secret, or its
// client_id alone when it is public.
type creds struct{ id, secret string }

var (
	svc = creds{svcID, svcSecret}
	web = creds{webID, webSecret}
	spa = creds{spaID, ""}
)

// api talks to one server as the clients and the resource server do.
type api struct {
	base string
	hc   *http.Client
}

func newAPI(base string, rec *recorder) *api {
	return &api{base: base, hc: &http.Client{Transport: rec, Timeout: 30 * time.Second}}
}

// answer is one response, read in full.
type answer struct {
	Status int
	Header http.Header
	Body   []byte
}

func (a answer) json() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(a.Body, &m)
	return m
}

func (a answer) isJSON() bool {
	return strings.HasPrefix(a.Header.Get("Content-Type"), "application/json")
}

// errorCode is the OAuth "error" of a JSON answer.
func (a answer) errorCode() string {
	s, _ := a.json()["error"].(string)
	return s
}

func (a answer) String() string { return fmt.Sprintf("%d %s", a.Status, clip(a.Body)) }

// post sends form to path as c (no client authentication when c is zero).
func (a *api) post(ctx context.Context, path string, c creds, form url.Values) (answer, error) {
	form = cloneValues(form)
	if c.id != "" && c.secret == "" {
		form.Set("client_id", c.id)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.secret != "" {
		req.SetBasicAuth(url.QueryEscape(c.id), url.QueryEscape(c.secret))
	}
	return a.do(req)
}

func (a *api) do(req *http.Request) (answer, error) {
	resp, err := a.hc.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return answer{Status: resp.StatusCode, Header: resp.Header, Body: body}, err
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// introspect asks, as the resource server svc, whether token is active.
// A non-200 answer is returned with active false.
func (a *api) introspect(ctx context.Context, token string) (bool, answer, error) {
	ans, err := a.post(ctx, "/oauth2/introspect", svc, url.Values{"token": {token}})
	if err != nil || ans.Status != http.StatusOK {
		return false, ans, err
	}
	active, _ := ans.json()["active"].(bool)
	return active, ans, nil
}

// revoke revokes token as c, its owner; hint may be empty.
func (a *api) revoke(ctx context.Context, c creds, token, hint string) (answer, error) {
	form := url.Values{"token": {token}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	return a.post(ctx, "/oauth2/revoke", c, form)
}

// oauthCtx makes golang.org/x/oauth2 send through the recorder.
func (a *api) oauthCtx(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, a.hc)
}

// clientCredentials is svc's client_credentials configuration. The auth
// style is fixed: auto-detection would send a second request on errors.
func (a *api) clientCredentials(scopes ...string) *clientcredentials.Config {
	return &clientcredentials.Config{ClientID: svc.id, ClientSecret: svc.secret, TokenURL: a.base + "/oauth2/token",
		Scopes: scopes, AuthStyle: oauth2.AuthStyleInHeader}
}

// codeConfig is the authorization code configuration of c.
func (a *api) codeConfig(c creds, scopes ...string) *oauth2.Config {
	style := oauth2.AuthStyleInHeader
	if c.secret == "" {
		style = oauth2.AuthStyleInParams
	}
	return &oauth2.Config{
		ClientID: c.id, ClientSecret: c.secret, RedirectURL: redirectURI, Scopes: scopes,
		Endpoint: oauth2.Endpoint{AuthURL: a.base + "/oauth2/auth", TokenURL: a.base + "/oauth2/token", AuthStyle: style},
	}
}

// refresh spends rt and returns the next pair; rotation must hand out a
// new refresh token.
func (a *api) refresh(ctx context.Context, c creds, rt string) (*oauth2.Token, error) {
	tok, err := a.codeConfig(c).TokenSource(a.oauthCtx(ctx), &oauth2.Token{RefreshToken: rt}).Token()
	if err != nil {
		return nil, err
	}
	// x/oauth2 keeps the old refresh token when the answer has none.
	if tok.RefreshToken == rt {
		return nil, errors.New("the refresh answered no new refresh token")
	}
	return tok, nil
}

// statusOf is the HTTP status of an x/oauth2 error, 0 for a transport
// error.
func statusOf(err error) int {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		return re.Response.StatusCode
	}
	return 0
}
