package server_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"
)

// pagesControl is one form control as the page declares it.
type pagesControl struct {
	Tag, Type, Name, Value string
	Checked                bool
}

func (c pagesControl) String() string { return c.Tag + "[" + c.Type + "] " + c.Name + "=" + c.Value }

// submit reports whether the control submits its form.
func (c pagesControl) submit() bool {
	return (c.Tag == "button" && c.Type == "submit") || (c.Tag == "input" && (c.Type == "submit" || c.Type == "image"))
}

// pagesForm is one <form> of a page, every control inside it, and the ids
// of the page's non-empty <label for> elements.
type pagesForm struct {
	Method, Action string
	Controls       []pagesControl
	IDs            map[string]string // control name → id
}

// pagesParse reads every form of a page the way a browser does.
func pagesParse(t *testing.T, r response) ([]pagesForm, map[string]bool) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(string(r.Body)))
	require.NoError(t, err, "page parses as HTML")
	var out []pagesForm
	labels := map[string]bool{}
	var walk func(n *html.Node, f *pagesForm)
	walk = func(n *html.Node, f *pagesForm) {
		if n.Type == html.ElementNode {
			a := map[string]string{}
			for _, at := range n.Attr {
				a[at.Key] = at.Val
			}
			_, checked := a["checked"]
			switch n.Data {
			case "form":
				out = append(out, pagesForm{Method: strings.ToLower(a["method"]), Action: a["action"], IDs: map[string]string{}})
				f = &out[len(out)-1]
			case "input", "button", "select", "textarea":
				typ := strings.ToLower(a["type"])
				if typ == "" {
					typ = map[string]string{"input": "text", "button": "submit"}[n.Data]
				}
				require.NotNil(t, f, "<%s name=%q> outside any form", n.Data, a["name"])
				f.Controls = append(f.Controls, pagesControl{Tag: n.Data, Type: typ, Name: a["name"], Value: a["value"], Checked: checked})
				if a["name"] != "" {
					f.IDs[a["name"]] = a["id"]
				}
			case "label":
				if strings.TrimSpace(pagesText(n)) != "" {
					labels[a["for"]] = true
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, f)
		}
	}
	walk(doc, nil)
	return out, labels
}

func pagesText(n *html.Node) string {
	if n.Type == html.TextNode {
		return n.Data
	}
	var b strings.Builder
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		b.WriteString(pagesText(c))
	}
	return b.String()
}

// pagesOneForm checks the page has exactly one form posting to action, and
// that its fields (every control but the submit buttons) are exactly
// fields, each "type name", and its submit buttons exactly buttons, each
// "name=value"; every visible field has a label.
func pagesOneForm(t *testing.T, r response, action string, fields, buttons []string) pagesForm {
	t.Helper()
	fs, labels := pagesParse(t, r)
	require.Len(t, fs, 1, "one form: %s", r.Body)
	f := fs[0]
	require.Equal(t, "post", f.Method)
	require.Equal(t, action, f.Action)
	var gotFields, gotButtons []string
	for _, c := range f.Controls {
		if c.submit() {
			gotButtons = append(gotButtons, c.Name+"="+c.Value)
			continue
		}
		gotFields = append(gotFields, c.Type+" "+c.Name)
		if c.Type != "hidden" {
			require.True(t, labels[f.IDs[c.Name]], "field %s has a <label for=%q>", c.Name, f.IDs[c.Name])
		}
	}
	require.ElementsMatch(t, fields, gotFields, "form fields of %s", action)
	require.ElementsMatch(t, buttons, gotButtons, "submit buttons of %s", action)
	return f
}

func (f pagesForm) control(name string) pagesControl {
	i := slices.IndexFunc(f.Controls, func(c pagesControl) bool { return c.Name == name })
	if i < 0 {
		return pagesControl{}
	}
	return f.Controls[i]
}

// pagesRequireHeaders checks the security headers every page carries.
func pagesRequireHeaders(t *testing.T, name string, r response) {
	t.Helper()
	require.Contains(t, r.Header.Get("Content-Type"), "text/html", name)
	csp := r.Header.Get("Content-Security-Policy")
	require.Contains(t, csp, "frame-ancestors 'none'", "%s: CSP", name)
	require.Contains(t, csp, "default-src 'none'", "%s: CSP", name)
	require.Equal(t, "DENY", r.Header.Get("X-Frame-Options"), name)
	require.NotEmpty(t, r.Header.Get("Referrer-Policy"), name)
	require.NotEqual(t, "unsafe-url", r.Header.Get("Referrer-Policy"), name)
	require.Contains(t, r.Header.Get("Cache-Control"), "no-store", name)
	require.Equal(t, "nosniff", r.Header.Get("X-Content-Type-Options"), name)
	require.Contains(t, string(r.Body), `href="/static/latch.css"`, "%s: the stylesheet", name)
}

// TestPages reads every built-in page and holds its form to SPEC's
// "Built-in pages", and every page to the security headers.
func TestPages(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	b := ts.newBrowser(t)
	pages := map[string]response{}

	loginURL := location(t, b.get(t, ts.authorizeURL("web-client", nil)))
	login := b.get(t, loginURL)
	require.Equal(t, http.StatusOK, login.Status)
	pages["login"] = login
	t.Run("login", func(t *testing.T) {
		f := pagesOneForm(t, login, "/login",
			[]string{"hidden csrf_token", "hidden challenge", "text username", "password password"}, []string{"="})
		require.NotEmpty(t, f.control("csrf_token").Value)
		require.Equal(t, strings.TrimPrefix(loginURL, "/login?challenge="), f.control("challenge").Value)
		require.Empty(t, f.control("password").Value)
		require.Contains(t, string(login.Body), "Web App", "the client's name")
	})

	failed := b.submit(t, login, map[string]string{"username": "alice", "password": "wrong-password"})
	require.Equal(t, http.StatusUnauthorized, failed.Status)
	pages["login after a wrong password"] = failed
	t.Run("login after a wrong password", func(t *testing.T) {
		f := pagesOneForm(t, failed, "/login",
			[]string{"hidden csrf_token", "hidden challenge", "text username", "password password"}, []string{"="})
		require.Equal(t, "alice", f.control("username").Value)
		require.Empty(t, f.control("password").Value)
	})

	consentURL := location(t, b.submit(t, login, map[string]string{"username": "alice", "password": "alice-password"}))
	consent := b.get(t, consentURL)
	require.Equal(t, http.StatusOK, consent.Status)
	pages["consent"] = consent
	t.Run("consent", func(t *testing.T) {
		f := pagesOneForm(t, consent, "/consent",
			[]string{"hidden csrf_token", "hidden challenge", "checkbox remember"}, []string{"decision=allow", "decision=deny"})
		require.False(t, f.control("remember").Checked, "remember is the person's choice, off by default")
		require.Equal(t, "true", f.control("remember").Value)
		body := string(consent.Body)
		require.Contains(t, body, "Web App", "the client's name")
		for _, scope := range []string{"openid", "profile", "email", "offline_access"} {
			require.Contains(t, body, "<code>"+scope+"</code>", "the requested scope %s", scope)
		}
		require.Contains(t, body, "Your email address", "scopes in words")
	})

	flowCallback(t, b.submit(t, consent, map[string]string{"decision": "allow"}))

	logout := b.get(t, "/oauth2/sessions/logout")
	require.Equal(t, http.StatusOK, logout.Status)
	pages["logout confirmation"] = logout
	t.Run("logout confirmation", func(t *testing.T) {
		pagesOneForm(t, logout, "/oauth2/sessions/logout", []string{"hidden csrf_token"}, []string{"decision=allow"})
	})

	signedOut := b.submit(t, logout, map[string]string{"decision": "allow"})
	require.Equal(t, http.StatusOK, signedOut.Status, "%s", signedOut.Body)
	pages["signed out"] = signedOut

	errorPages := map[string]response{
		"error: no challenge":    b.get(t, "/login"),
		"error: used challenge":  b.get(t, consentURL),
		"error: unknown client":  b.get(t, ts.authorizeURL("no-such-client", nil)),
		"error: foreign address": b.get(t, ts.authorizeURL("web-client", map[string]string{"redirect_uri": "https://evil.example/cb"})),
		"error: CSRF":            b.submit(t, b.get(t, location(t, b.get(t, ts.authorizeURL("web-client", nil)))), map[string]string{"csrf_token": ""}),
	}
	for name, r := range errorPages {
		pages[name] = r
		t.Run(name, func(t *testing.T) {
			require.GreaterOrEqual(t, r.Status, 400)
			fs, _ := pagesParse(t, r)
			require.Empty(t, fs, "an error page has no form")
			doc, err := html.Parse(strings.NewReader(string(r.Body)))
			require.NoError(t, err)
			require.NotEmpty(t, strings.TrimSpace(pagesText(doc)), "the error is said in words")
		})
	}

	for name, r := range pages {
		t.Run("headers of "+name, func(t *testing.T) {
			pagesRequireHeaders(t, name, r)
			require.NotContains(t, string(r.Body), "<script", "%s: no script", name)
		})
	}

	// A completed form redirects to the client; Chrome applies form-action
	// to those redirects, so the pages with a form allow the client's
	// origin, and no other page allows any origin but this one.
	formAction := func(r response) string {
		for _, d := range strings.Split(r.Header.Get("Content-Security-Policy"), ";") {
			if f := strings.Fields(d); len(f) > 0 && f[0] == "form-action" {
				return strings.Join(f[1:], " ")
			}
		}
		return ""
	}
	t.Run("form-action", func(t *testing.T) {
		for _, name := range []string{"login", "login after a wrong password", "consent"} {
			require.Equal(t, "'self' http://127.0.0.1:5555", formAction(pages[name]), name)
		}
		for _, name := range []string{"logout confirmation", "error: foreign address", "error: unknown client"} {
			require.Equal(t, "'self'", formAction(pages[name]), name)
		}
	})

	t.Run("stylesheet", func(t *testing.T) {
		r := ts.get(t, "/static/latch.css")
		require.Equal(t, http.StatusOK, r.Status)
		require.Contains(t, r.Header.Get("Content-Type"), "text/css")
		require.NotEmpty(t, r.Body)
	})
}
