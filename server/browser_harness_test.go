package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"

	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/storage"
	"github.com/latchauth/latch/users"
)

const callback = "http://127.0.0.1:5555/cb"

// createUsers adds the test users, through the same seeding as config.yaml,
// with password hashes made once per process (fixtures_test.go).
func createUsers(t *testing.T, st storage.UserStore) {
	t.Helper()
	require.NoError(t, users.Seed(context.Background(), st, []config.User{
		{Username: "alice", PasswordHash: passwordHashOf(t, "alice-password"), Email: "alice@example.com", EmailVerified: true,
			Name: "Alice Example", Groups: []string{"admins", "dev"}, Claims: map[string]any{"department": "engineering"}},
		{Username: "bob", PasswordHash: passwordHashOf(t, "bob-password"), Email: "bob@example.com", Name: "Bob Example"},
	}))
}

// browser is a person's browser: a cookie jar, and redirects shown to the
// test one by one instead of followed.
type browser struct {
	ts     *testServer
	client *http.Client
}

func (ts *testServer) newBrowser(t *testing.T) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &browser{ts: ts, client: &http.Client{
		Jar:           jar,
		Transport:     ts.http.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (b *browser) do(t *testing.T, req *http.Request) response {
	t.Helper()
	return b.ts.doWith(t, b.client, req)
}

// get fetches target, a path of the server or an absolute URL.
func (b *browser) get(t *testing.T, target string) response {
	t.Helper()
	if strings.HasPrefix(target, "/") {
		target = b.ts.URL + target
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, target, nil)
	require.NoError(t, err)
	return b.do(t, req)
}

// form is one <form> of a page: where it posts, and its fields as the
// browser would send them (hidden inputs, text values, checked boxes).
type form struct {
	Action  string
	Fields  url.Values
	Inputs  []string // every input name, in order
	Buttons []string // "name=value" of every submit button
}

// forms parses every form of an HTML page.
func forms(t *testing.T, r response) []form {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(string(r.Body)))
	require.NoError(t, err, "page parses as HTML")
	var out []form
	var walk func(n *html.Node, f *form)
	walk = func(n *html.Node, f *form) {
		if n.Type == html.ElementNode {
			a := map[string]string{}
			for _, at := range n.Attr {
				a[at.Key] = at.Val
			}
			switch n.Data {
			case "form":
				out = append(out, form{Action: a["action"], Fields: url.Values{}})
				f = &out[len(out)-1]
			case "input":
				if f != nil && a["name"] != "" {
					f.Inputs = append(f.Inputs, a["name"])
					if a["type"] != "checkbox" || hasAttr(n, "checked") {
						f.Fields.Set(a["name"], a["value"])
					}
				}
			case "button":
				if f != nil && (a["type"] == "" || a["type"] == "submit") {
					f.Buttons = append(f.Buttons, a["name"]+"="+a["value"])
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, f)
		}
	}
	walk(doc, nil)
	return out
}

func hasAttr(n *html.Node, key string) bool {
	for _, at := range n.Attr {
		if at.Key == key {
			return true
		}
	}
	return false
}

// submit posts the only form of page with its fields, changed by set
// (an empty value removes a field), from this server's origin.
func (b *browser) submit(t *testing.T, page response, set map[string]string) response {
	t.Helper()
	require.Len(t, forms(t, page), 1, "the page has one form: %s", page.Body)
	return b.submitForm(t, page, 0, set)
}

// submitForm is submit for the i-th form of a page with several.
func (b *browser) submitForm(t *testing.T, page response, i int, set map[string]string) response {
	t.Helper()
	fs := forms(t, page)
	require.Greater(t, len(fs), i, "the page has a form %d: %s", i, page.Body)
	f := fs[i]
	values := url.Values{}
	for k, v := range f.Fields {
		values[k] = v
	}
	for k, v := range set {
		if v == "" {
			values.Del(k)
		} else {
			values.Set(k, v)
		}
	}
	target := f.Action
	if strings.HasPrefix(target, "/") {
		target = b.ts.URL + target
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, target, strings.NewReader(values.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.ts.URL)
	return b.do(t, req)
}

// location is the redirect target of r.
func location(t *testing.T, r response) string {
	t.Helper()
	require.Contains(t, []int{http.StatusFound, http.StatusSeeOther}, r.Status, "a redirect; body %s", r.Body)
	loc := r.Header.Get("Location")
	require.NotEmpty(t, loc)
	return loc
}

// pkcePair is a code_verifier and its S256 code_challenge.
func pkcePair(verifier string) (string, string) {
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// authorizeURL is an authorization request of clientID to callback.
func (ts *testServer) authorizeURL(clientID string, extra map[string]string) string {
	q := url.Values{
		"response_type": {"code"},
		"client_id":     {clientID},
		"redirect_uri":  {callback},
		"scope":         {"openid profile email offline_access"},
		"state":         {"state-1234567890"},
		"nonce":         {"nonce-1234567890"},
	}
	for k, v := range extra {
		if v == "" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
	}
	return ts.URL + "/oauth2/auth?" + q.Encode()
}

// loginPage follows an authorization request to its login page.
func (b *browser) loginPage(t *testing.T, authURL string) response {
	t.Helper()
	loginURL := location(t, b.get(t, authURL))
	require.True(t, strings.HasPrefix(loginURL, "/login?challenge="), "sent to the login page, not %s", loginURL)
	page := b.get(t, loginURL)
	require.Equal(t, http.StatusOK, page.Status, "login page: %s", page.Body)
	return page
}

// signIn follows an authorization request through the login page as
// username and returns the answer to the login form.
func (b *browser) signIn(t *testing.T, authURL, username, password string) response {
	t.Helper()
	page := b.loginPage(t, authURL)
	return b.submit(t, page, map[string]string{"username": username, "password": password})
}

// authorize runs a whole authorization request as alice, allowing consent
// when asked, and returns the callback URL the browser is sent to.
func (b *browser) authorize(t *testing.T, authURL string) *url.URL {
	t.Helper()
	r := b.get(t, authURL)
	for i := 0; i < 4; i++ {
		loc := location(t, r)
		switch {
		case strings.HasPrefix(loc, "/login?"):
			page := b.get(t, loc)
			r = b.submit(t, page, map[string]string{"username": "alice", "password": "alice-password"})
		case strings.HasPrefix(loc, "/consent?"):
			page := b.get(t, loc)
			require.Equal(t, http.StatusOK, page.Status, "consent page: %s", page.Body)
			r = b.submit(t, page, map[string]string{"decision": "allow"})
		default:
			u, err := url.Parse(loc)
			require.NoError(t, err)
			return u
		}
	}
	t.Fatalf("the authorization did not finish")
	return nil
}
