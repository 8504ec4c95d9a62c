// Package templates owns Latch's built-in HTML pages — login, consent,
// device, logout and error — and the one stylesheet they share. Everything is
// embedded in the binary. Load parses every page and renders each once, so a
// missing or broken page stops the server at start-up rather than failing the
// first person who needs it.
//
// The pages carry no inline script, no inline style and no style
// attribute: the server's Content-Security-Policy allows only style-src
// 'self' (and script-src 'self' for static/passkey.js, which only the
// passkey buttons need), so the look lives entirely in static/latch.css.
package templates

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
)

//go:embed *.html static
var files embed.FS

// The layout is parsed once and cloned for every page, each of which defines
// the "content" block the layout calls.
const layoutFile = "layout.html"

const (
	loginFile   = "login.html"
	consentFile = "consent.html"
	deviceFile  = "device.html"
	logoutFile  = "logout.html"
	errorFile   = "error.html"
	// formPostFile is a page of its own, not in the layout: fosite
	// executes it with its own data (formPostData).
	formPostFile = "form_post.html"
	mfaFile      = "mfa.html"
	accountFile  = "account.html"
)

// Templates holds the parsed pages.
type Templates struct {
	login   *template.Template
	consent *template.Template
	device  *template.Template
	logout  *template.Template
	errPage *template.Template

	formPost       *template.Template
	formPostScript string // CSP source of its one inline script
	mfa            *template.Template
	account        *template.Template
}

// Load parses every page from the embedded files; it fails if any page is
// missing or does not parse (STYLE rule 10).
func Load() (*Templates, error) {
	return load(files)
}

// Static is the embedded static files (latch.css at its root), for
// http.FileServer(http.FS(templates.Static())).
func Static() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		// fs.Sub fails only on an invalid path name, and "static" is valid.
		panic(err)
	}
	return sub
}

func load(fsys fs.FS) (*Templates, error) {
	var missing []error
	for _, name := range []string{layoutFile, loginFile, consentFile, deviceFile, logoutFile, errorFile, formPostFile, mfaFile, accountFile} {
		if _, err := fs.Stat(fsys, name); err != nil {
			missing = append(missing, fmt.Errorf("templates: missing page %s: %w", name, err))
		}
	}
	if err := errors.Join(missing...); err != nil {
		return nil, err
	}

	base, err := template.New(layoutFile).Funcs(template.FuncMap{
		"statusText": http.StatusText,
	}).ParseFS(fsys, layoutFile)
	if err != nil {
		return nil, fmt.Errorf("templates: parse %s: %w", layoutFile, err)
	}

	var errs []error
	page := func(file string, sample any) *template.Template {
		t, err := parsePage(base, fsys, file, sample)
		if err != nil {
			errs = append(errs, err)
		}
		return t
	}
	t := &Templates{
		login:   page(loginFile, LoginData{}),
		consent: page(consentFile, ConsentData{}),
		device:  page(deviceFile, DeviceData{}),
		logout:  page(logoutFile, LogoutData{}),
		errPage: page(errorFile, ErrorData{}),
		mfa:     page(mfaFile, MFAData{}),
		account: page(accountFile, AccountData{}),
	}
	t.formPost, t.formPostScript, err = parseFormPost(fsys)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t, nil
}

// parsePage adds one page to a copy of the layout and renders it once with
// empty data: html/template decides its contextual escaping on first
// execution, so an escaping error surfaces here at start-up rather than on the
// first request to that page.
func parsePage(base *template.Template, fsys fs.FS, file string, sample any) (*template.Template, error) {
	clone, err := base.Clone()
	if err != nil {
		return nil, fmt.Errorf("templates: clone layout for %s: %w", file, err)
	}
	if _, err := clone.ParseFS(fsys, file); err != nil {
		return nil, fmt.Errorf("templates: parse %s: %w", file, err)
	}
	if clone.Lookup("content") == nil {
		return nil, fmt.Errorf("templates: %s does not define \"content\"", file)
	}
	if err := clone.Execute(io.Discard, sample); err != nil {
		return nil, fmt.Errorf("templates: render %s: %w", file, err)
	}
	return clone, nil
}

// render executes a page into a buffer first, so a failure leaves the writer
// untouched and the caller can still send an error page with a proper status.
func render(w io.Writer, page *template.Template, name string, data any) error {
	var buf bytes.Buffer
	if err := page.Execute(&buf, data); err != nil {
		return fmt.Errorf("templates: render %s: %w", name, err)
	}
	_, err := buf.WriteTo(w)
	return err
}

// defaults fills what a page cannot do without: a title and the static path.
func (p *Page) defaults(title string) {
	if p.Title == "" {
		p.Title = title
	}
	if p.Static == "" {
		p.Static = "/static"
	}
}

// Login renders the sign-in page.
func (t *Templates) Login(w io.Writer, d LoginData) error {
	d.defaults("Sign in")
	return render(w, t.login, loginFile, d)
}

// Consent renders the page that asks the person to allow or deny a client.
func (t *Templates) Consent(w io.Writer, d ConsentData) error {
	d.defaults("Allow access")
	return render(w, t.consent, consentFile, d)
}

// Device renders the page where the person types the code shown on a device.
func (t *Templates) Device(w io.Writer, d DeviceData) error {
	d.defaults("Connect a device")
	return render(w, t.device, deviceFile, d)
}

// Logout renders the sign-out confirmation page.
func (t *Templates) Logout(w io.Writer, d LogoutData) error {
	d.defaults("Sign out")
	return render(w, t.logout, logoutFile, d)
}

// Error renders an error page. It does not set the HTTP status; the caller
// writes d.Status to the response before calling it.
func (t *Templates) Error(w io.Writer, d ErrorData) error {
	d.defaults("Something went wrong")
	return render(w, t.errPage, errorFile, d)
}

// formPostData is what fosite executes the form_post page with
// (fosite.WriteAuthorizeFormPostResponse).
type formPostData struct {
	RedirURL   string
	Parameters url.Values
}

// parseFormPost parses the form_post page and returns it with the CSP
// source ('sha256-…') of its one inline script, which submits the form.
// The script holds no template action, so the hash of the file's text is
// the hash of what the browser runs.
func parseFormPost(fsys fs.FS) (*template.Template, string, error) {
	raw, err := fs.ReadFile(fsys, formPostFile)
	if err != nil {
		return nil, "", fmt.Errorf("templates: read %s: %w", formPostFile, err)
	}
	_, rest, ok := strings.Cut(string(raw), "<script>")
	script, _, ok2 := strings.Cut(rest, "</script>")
	if !ok || !ok2 || strings.Contains(script, "{{") || strings.Contains(rest, "<script") {
		return nil, "", fmt.Errorf("templates: %s must hold exactly one inline script without template actions", formPostFile)
	}
	// The layout's shared parts (meta, brand) come along; its own body
	// is a template of this set that nobody executes.
	t, err := template.New(formPostFile).ParseFS(fsys, layoutFile, formPostFile)
	if err != nil {
		return nil, "", fmt.Errorf("templates: parse %s: %w", formPostFile, err)
	}
	sample := formPostData{RedirURL: "https://client.example/cb", Parameters: url.Values{"code": {"c"}, "state": {"s"}}}
	if err := t.Execute(io.Discard, sample); err != nil {
		return nil, "", fmt.Errorf("templates: render %s: %w", formPostFile, err)
	}
	sum := sha256.Sum256([]byte(script))
	return t, "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'", nil
}

// FormPost is the page that carries an authorization response to the
// client by POST (OAuth 2.0 Form Post Response Mode), for
// fosite.Config.FormPostHTMLTemplate. It submits itself with one inline
// script; without JavaScript, a Continue button does.
func (t *Templates) FormPost() *template.Template { return t.formPost }

// FormPostScriptSource is the Content-Security-Policy source that allows
// the form_post page's script and no other: its 'sha256-…' hash.
func (t *Templates) FormPostScriptSource() string { return t.formPostScript }

// MFA renders the second-factor step of signing in: enrolment, the code
// form, or the recovery codes just made.
func (t *Templates) MFA(w io.Writer, d MFAData) error {
	d.defaults("Second factor")
	return render(w, t.mfa, mfaFile, d)
}

// Account renders the signed-in person's account page.
func (t *Templates) Account(w io.Writer, d AccountData) error {
	d.defaults("Your account")
	return render(w, t.account, accountFile, d)
}
