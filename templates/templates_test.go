package templates

import (
	"bytes"
	"html/template"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"golang.org/x/net/html"
)

const csrfField = template.HTML(`<input type="hidden" name="gorilla.csrf.Token" value="tok123">`)

var page = Page{Static: "/static", CSRFField: csrfField, Issuer: "https://auth.example.com"}

func mustLoad(t *testing.T) *Templates {
	t.Helper()
	tmpl, err := Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return tmpl
}

func TestLoad(t *testing.T) {
	mustLoad(t)
}

func TestLoadFailsOnMissingOrBrokenPage(t *testing.T) {
	good := fstest.MapFS{}
	err := fs.WalkDir(files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(files, path)
		good[path] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := load(good); err != nil {
		t.Fatalf("load of a copy of the embedded files: %v", err)
	}

	tests := []struct {
		name    string
		change  func(fstest.MapFS)
		wantErr string
	}{
		{"missing page", func(m fstest.MapFS) { delete(m, "consent.html") }, "missing page consent.html"},
		{"missing layout", func(m fstest.MapFS) { delete(m, "layout.html") }, "missing page layout.html"},
		{"syntax error", func(m fstest.MapFS) { m["login.html"] = &fstest.MapFile{Data: []byte(`{{define "content"}}{{.Nope`)} }, "parse login.html"},
		{"no content block", func(m fstest.MapFS) { m["device.html"] = &fstest.MapFile{Data: []byte(`<p>hi</p>`)} }, `device.html does not define "content"`},
		{"unknown field", func(m fstest.MapFS) {
			m["error.html"] = &fstest.MapFile{Data: []byte(`{{define "content"}}{{.NoSuchField}}{{end}}`)}
		}, "render error.html"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := fstest.MapFS{}
			for k, v := range good {
				m[k] = v
			}
			tt.change(m)
			_, err := load(m)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("load: got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestPages(t *testing.T) {
	tmpl := mustLoad(t)
	for _, tt := range pages() {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := tt.render(tmpl, &buf); err != nil {
				t.Fatalf("render: %v", err)
			}
			out := buf.String()
			if !strings.HasPrefix(out, "<!doctype html>\n") {
				t.Errorf("page does not start with <!doctype html>: %.40q", out)
			}
			doc, err := html.Parse(strings.NewReader(out))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			checkHead(t, doc)
			checkNoScriptOrInlineStyle(t, doc)
			checkLabels(t, doc, tt.wantInputs)

			forms := findAll(doc, "form")
			if tt.action == "" {
				if len(forms) != 0 {
					t.Fatalf("got %d forms, want none", len(forms))
				}
			} else {
				if len(forms) != 1 {
					t.Fatalf("got %d forms, want 1", len(forms))
				}
				form := forms[0]
				if got := attr(form, "method"); got != "post" {
					t.Errorf("form method = %q, want post", got)
				}
				if got := attr(form, "action"); got != tt.action {
					t.Errorf("form action = %q, want %q", got, tt.action)
				}
				got := formFields(form)
				want := slices.Clone(tt.fields)
				sortFields(got)
				sortFields(want)
				if !slices.Equal(got, want) {
					t.Errorf("form fields:\n got %v\nwant %v", got, want)
				}
			}

			text := textContent(doc)
			for _, s := range tt.wantText {
				if !strings.Contains(text, s) {
					t.Errorf("page text does not contain %q", s)
				}
			}
		})
	}
}

func TestEscaping(t *testing.T) {
	const evil = `<script>alert(1)</script>`
	const evilAttr = `"><script>alert(2)</script>`
	tmpl := mustLoad(t)
	hostile := Page{Title: evil, Static: "/static", CSRFField: csrfField, Issuer: evil}
	hidden := map[string]string{"login_challenge": evilAttr}
	tests := []struct {
		name   string
		render func(*bytes.Buffer) error
	}{
		{"login", func(b *bytes.Buffer) error {
			return tmpl.Login(b, LoginData{Page: hostile, Action: "/login", ClientName: evil, Username: evilAttr, Error: evil, Hidden: hidden})
		}},
		{"consent", func(b *bytes.Buffer) error {
			return tmpl.Consent(b, ConsentData{Page: hostile, Action: "/consent", ClientName: evil, ClientID: evil, Username: evil,
				Scopes: []Scope{{evil, ScopeDescription(evil)}}, Hidden: hidden})
		}},
		{"device", func(b *bytes.Buffer) error {
			return tmpl.Device(b, DeviceData{Page: hostile, Action: "/device", UserCode: evilAttr, Error: evil})
		}},
		{"logout", func(b *bytes.Buffer) error {
			return tmpl.Logout(b, LogoutData{Page: hostile, Action: "/logout", ClientName: evil, Hidden: hidden})
		}},
		{"error", func(b *bytes.Buffer) error {
			return tmpl.Error(b, ErrorData{Page: hostile, Status: 500, Message: evil, Hint: evil})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := tt.render(&buf); err != nil {
				t.Fatalf("render: %v", err)
			}
			if strings.Contains(strings.ToLower(buf.String()), "<script") {
				t.Fatalf("unescaped <script in output:\n%s", buf.String())
			}
			doc, err := html.Parse(&buf)
			if err != nil {
				t.Fatal(err)
			}
			checkNoScriptOrInlineStyle(t, doc)
			if !strings.Contains(textContent(doc), evil) {
				t.Errorf("hostile text is not shown as text")
			}
			// Attribute values must come back intact, not break out.
			for _, in := range findAll(doc, "input") {
				if v := attr(in, "value"); strings.Contains(v, "alert(2)") && v != evilAttr {
					t.Errorf("input %q value = %q, want %q", attr(in, "name"), v, evilAttr)
				}
			}
		})
	}
}

func TestHiddenInputsSorted(t *testing.T) {
	tmpl := mustLoad(t)
	hidden := map[string]string{"zeta": "3", "alpha": "1", "login_challenge": "2", "Mixed": "0"}
	var buf bytes.Buffer
	if err := tmpl.Login(&buf, LoginData{Page: page, Action: "/login", Hidden: hidden}); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range formFields(findAll(doc, "form")[0]) {
		if f.Type == "hidden" && f.Name != csrf.Name {
			names = append(names, f.Name)
			if f.Value != hidden[f.Name] {
				t.Errorf("hidden %s = %q, want %q", f.Name, f.Value, hidden[f.Name])
			}
		}
	}
	want := []string{"Mixed", "alpha", "login_challenge", "zeta"}
	if !slices.Equal(names, want) {
		t.Errorf("hidden inputs in order %v, want %v", names, want)
	}
}

func TestAutofocus(t *testing.T) {
	// Focus goes where the person types next: the username on a first visit,
	// the password once a failed attempt kept the username, the code box for a
	// device unless a valid-looking prefilled code only needs confirming.
	tmpl := mustLoad(t)
	tests := []struct {
		name   string
		render func(*bytes.Buffer) error
		want   string
	}{
		{"login first visit", func(b *bytes.Buffer) error { return tmpl.Login(b, LoginData{Page: page}) }, "input username"},
		{"login after failure", func(b *bytes.Buffer) error {
			return tmpl.Login(b, LoginData{Page: page, Username: "alice", Error: "Wrong username or password."})
		}, "input password"},
		{"device empty", func(b *bytes.Buffer) error { return tmpl.Device(b, DeviceData{Page: page}) }, "input user_code"},
		{"device prefilled", func(b *bytes.Buffer) error { return tmpl.Device(b, DeviceData{Page: page, UserCode: "WDJB-MJHT"}) }, "button "},
		{"device wrong code", func(b *bytes.Buffer) error {
			return tmpl.Device(b, DeviceData{Page: page, UserCode: "WDJB-MJHX", Error: "That code is not valid."})
		}, "input user_code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := tt.render(&buf); err != nil {
				t.Fatal(err)
			}
			doc, err := html.Parse(&buf)
			if err != nil {
				t.Fatal(err)
			}
			var focused []string
			walk(doc, func(n *html.Node) {
				if n.Type == html.ElementNode && hasAttr(n, "autofocus") {
					focused = append(focused, n.Data+" "+attr(n, "name"))
				}
			})
			if !slices.Equal(focused, []string{tt.want}) {
				t.Errorf("autofocus on %q, want [%q]", focused, tt.want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	tmpl := mustLoad(t)
	var buf bytes.Buffer
	if err := tmpl.Error(&buf, ErrorData{Message: "Not found."}); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := textContent(findAll(doc, "title")[0]); got != "Something went wrong · Latch" {
		t.Errorf("title = %q", got)
	}
	if got := attr(findAll(doc, "link")[1], "href"); got != "/static/latch.css" {
		t.Errorf("stylesheet href = %q, want /static/latch.css", got)
	}
	if len(findAll(doc, "footer")) != 0 {
		t.Errorf("footer rendered without an issuer")
	}
	if strings.Contains(textContent(doc), "Error 0") {
		t.Errorf("status 0 shown")
	}
}

func TestScopeDescription(t *testing.T) {
	tests := []struct{ scope, want string }{
		{"openid", "Sign you in with your account"},
		{"profile", "Your name and username"},
		{"email", "Your email address and whether it is verified"},
		{"groups", "The groups you belong to"},
		{"offline_access", "Stay signed in: keep access while you are away"},
		{"calendar.read", "Access to calendar.read"},
		{"OPENID", "Access to OPENID"},
	}
	for _, tt := range tests {
		t.Run(tt.scope, func(t *testing.T) {
			if got := ScopeDescription(tt.scope); got != tt.want {
				t.Errorf("ScopeDescription(%q) = %q, want %q", tt.scope, got, tt.want)
			}
		})
	}
}

func TestStatic(t *testing.T) {
	css, err := fs.ReadFile(Static(), "latch.css")
	if err != nil {
		t.Fatalf("Static has no latch.css: %v", err)
	}
	if !strings.Contains(string(css), "prefers-color-scheme: dark") {
		t.Errorf("latch.css has no dark scheme")
	}
	// CSP has no font-src and img-src is 'self' data: only.
	for _, banned := range []string{"@import", "@font-face", "url(http", "expression("} {
		if strings.Contains(string(css), banned) {
			t.Errorf("latch.css contains %q", banned)
		}
	}
}
