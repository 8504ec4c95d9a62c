package templates

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

var csrf = field{"input", "hidden", "gorilla.csrf.Token", "tok123"}

// pages is one rendering of every page with sample data, the form fields it
// must carry and text a person must see.
func pages() []struct {
	name       string
	render     func(*Templates, *bytes.Buffer) error
	action     string // "" means the page has no form
	fields     []field
	wantText   []string
	wantInputs map[string]string // id → value of a labelled text input
} {
	return []struct {
		name       string
		render     func(*Templates, *bytes.Buffer) error
		action     string
		fields     []field
		wantText   []string
		wantInputs map[string]string
	}{
		{
			name: "login",
			render: func(t *Templates, b *bytes.Buffer) error {
				return t.Login(b, LoginData{
					Page: page, Action: "/oauth2/auth?client_id=app&state=x", ClientName: "Acme Dashboard",
					Username: "alice", Error: "Wrong username or password.",
					Hidden: map[string]string{"login_challenge": "ch1"},
				})
			},
			action: "/oauth2/auth?client_id=app&state=x",
			fields: []field{
				csrf,
				{"input", "hidden", "login_challenge", "ch1"},
				{"input", "text", "username", "alice"},
				{"input", "password", "password", ""},
				{"button", "submit", "", ""},
			},
			wantText:   []string{"Sign in", "Acme Dashboard", "Wrong username or password.", "https://auth.example.com"},
			wantInputs: map[string]string{"username": "alice", "password": ""},
		},
		{
			name: "consent",
			render: func(t *Templates, b *bytes.Buffer) error {
				return t.Consent(b, ConsentData{
					Page: page, Action: "/oauth2/consent", ClientName: "Acme Dashboard", ClientID: "acme-dashboard",
					Username: "alice",
					Scopes: []Scope{
						{"openid", ScopeDescription("openid")},
						{"email", ScopeDescription("email")},
						{"offline_access", ScopeDescription("offline_access")},
					},
					Hidden: map[string]string{"consent_challenge": "c1"}, Remember: true,
				})
			},
			action: "/oauth2/consent",
			fields: []field{
				csrf,
				{"input", "hidden", "consent_challenge", "c1"},
				{"input", "checkbox", "remember", "true"},
				{"button", "submit", "decision", "deny"},
				{"button", "submit", "decision", "allow"},
			},
			wantText: []string{
				"Acme Dashboard", "Signed in as", "alice", "acme-dashboard",
				"Sign you in with your account", "openid", "Your email address and whether it is verified",
				"Remember this decision", "Allow", "Deny",
			},
			wantInputs: map[string]string{"remember": "true"},
		},
		{
			name: "device",
			render: func(t *Templates, b *bytes.Buffer) error {
				return t.Device(b, DeviceData{Page: page, Action: "/device", UserCode: "WDJB-MJHT", Error: "That code is not valid or has expired."})
			},
			action:     "/device",
			fields:     []field{csrf, {"input", "text", "user_code", "WDJB-MJHT"}, {"button", "submit", "", ""}},
			wantText:   []string{"Connect a device", "That code is not valid or has expired."},
			wantInputs: map[string]string{"user_code": "WDJB-MJHT"},
		},
		{
			name: "logout",
			render: func(t *Templates, b *bytes.Buffer) error {
				return t.Logout(b, LogoutData{Page: page, Action: "/oauth2/sessions/logout", ClientName: "Acme Dashboard", Hidden: map[string]string{"state": "s1"}})
			},
			action: "/oauth2/sessions/logout",
			fields: []field{
				csrf,
				{"input", "hidden", "state", "s1"},
				{"button", "submit", "decision", "allow"},
			},
			wantText: []string{"Sign out of Latch?", "Acme Dashboard", "Sign out"},
		},
		{
			name: "logout-without-client",
			render: func(t *Templates, b *bytes.Buffer) error {
				return t.Logout(b, LogoutData{Page: page, Action: "/oauth2/sessions/logout"})
			},
			action:   "/oauth2/sessions/logout",
			fields:   []field{csrf, {"button", "submit", "decision", "allow"}},
			wantText: []string{"Sign out of Latch?"},
		},
		{
			name: "error",
			render: func(t *Templates, b *bytes.Buffer) error {
				return t.Error(b, ErrorData{Page: page, Status: 400, Message: "The sign-in request has expired.", Hint: "Go back to the application and try again."})
			},
			wantText: []string{"400", "Bad Request", "The sign-in request has expired.", "Go back to the application and try again."},
		},
	}
}

// TestWritePages renders every page into $LATCH_PAGES_DIR, with the
// stylesheet under static/, for a look in a browser. Skipped unless set.
func TestWritePages(t *testing.T) {
	dir := os.Getenv("LATCH_PAGES_DIR")
	if dir == "" {
		t.Skip("LATCH_PAGES_DIR not set")
	}
	tmpl := mustLoad(t)
	if err := os.MkdirAll(filepath.Join(dir, "static"), 0o755); err != nil {
		t.Fatal(err)
	}
	css, err := fs.ReadFile(Static(), "latch.css")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "static", "latch.css"), css, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range pages() {
		var buf bytes.Buffer
		if err := p.render(tmpl, &buf); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p.name+".html"), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
