package main

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

func TestTokensRevokeErrors(t *testing.T) {
	env := cliDB(t)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"neither", []string{"tokens", "revoke"}, "give exactly one of --client ID or --subject SUB"},
		{"both", []string{"tokens", "revoke", "--client", "a", "--subject", "b"}, "give exactly one of --client ID or --subject SUB"},
		{"empty client", []string{"tokens", "revoke", "--client", ""}, "give exactly one of"},
		{"unknown client", []string{"tokens", "revoke", "--client", "nope"}, `client "nope" not found`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := latch(t, env, "", tc.args...)
			if err == nil {
				t.Fatalf("succeeded; printed:\n%s", out)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
	// A subject without tokens is no error: there is nothing to revoke.
	if out := mustLatch(t, env, "", "tokens", "revoke", "--subject", "nobody"); out != "revoked 0 grants of subject nobody\nended 0 login sessions of subject nobody\n" {
		t.Fatalf("revoke of a subject without tokens printed %q", out)
	}
}

// The README's day-one routine, word for word (the password is typed at the
// terminal; here it comes from standard input).
var dayOne = []string{
	`latch clients create --id my-app --name "My App" --grant-type authorization_code --grant-type refresh_token --redirect-uri https://app.example.com/callback --scope openid --scope profile --scope email --scope offline_access`,
	`latch users add --username alice --email alice@example.com --email-verified --name "Alice Example" --group admins`,
	`latch clients rotate-secret my-app`,
	`latch tokens revoke --subject alice`,
}

// shellWords splits a README command line as a shell would (double quotes
// only) and drops the leading "latch".
func shellWords(line string) []string {
	var words []string
	for _, m := range regexp.MustCompile(`"([^"]*)"|(\S+)`).FindAllStringSubmatch(line, -1) {
		if m[2] != "" {
			words = append(words, m[2])
		} else {
			words = append(words, m[1])
		}
	}
	return words[1:]
}

// TestDayOneRoutine runs the README's routine against the database of a
// running server: the client and the user it creates sign in through the
// browser flow, the rotated secret is the one that works, and revoking the
// user's tokens makes them inactive at once.
func TestDayOneRoutine(t *testing.T) {
	env := cliDB(t)
	issuer, _ := startServe(t, env, "--listen", "127.0.0.1:0")

	out := mustLatch(t, env, "", shellWords(dayOne[0])...)
	oldSecret := createdSecret(t, out)
	mustLatch(t, env, "alice-password\n", shellWords(dayOne[1])...)
	out = mustLatch(t, env, "", shellWords(dayOne[2])...)
	m := regexp.MustCompile(`new secret of client my-app: (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("rotate-secret printed:\n%s", out)
	}
	secret := m[1]

	code := signIn(t, issuer, "my-app", "https://app.example.com/callback", "alice", "alice-password")
	if status, _ := postForm(t, issuer+"/oauth2/token", "my-app", oldSecret, url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"https://app.example.com/callback"},
	}); status != http.StatusUnauthorized {
		t.Fatalf("the secret before rotation still works: %d", status)
	}
	status, body := postForm(t, issuer+"/oauth2/token", "my-app", secret, url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"https://app.example.com/callback"},
	})
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		IDToken      string `json:"id_token"`
	}
	if err := json.Unmarshal([]byte(body), &tok); status != http.StatusOK || err != nil || tok.RefreshToken == "" || tok.IDToken == "" {
		t.Fatalf("code exchange: %d %s", status, body)
	}
	introspect := func(token string) string {
		_, body := postForm(t, issuer+"/oauth2/introspect", "my-app", secret, url.Values{"token": {token}})
		return body
	}
	if body := introspect(tok.AccessToken); !strings.Contains(body, `"active":true`) || !strings.Contains(body, `"sub":"alice"`) {
		t.Fatalf("alice's fresh token: %s", body)
	}

	// The browser that signed in is signed out too.
	if out := mustLatch(t, env, "", shellWords(dayOne[3])...); out != "revoked 1 grant of subject alice\nended 1 login session of subject alice\n" {
		t.Fatalf("tokens revoke printed %q", out)
	}
	for name, token := range map[string]string{"access": tok.AccessToken, "refresh": tok.RefreshToken} {
		if body := introspect(token); body != `{"active":false}` {
			t.Errorf("alice's %s token is still active: %s", name, body)
		}
	}
	if status, _ := postForm(t, issuer+"/oauth2/token", "my-app", secret, url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken},
	}); status == http.StatusOK {
		t.Fatal("a revoked refresh token still refreshes")
	}

	// Deleting the user ends a grant made after the revocation too.
	code = signIn(t, issuer, "my-app", "https://app.example.com/callback", "alice", "alice-password")
	_, body = postForm(t, issuer+"/oauth2/token", "my-app", secret, url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"https://app.example.com/callback"},
	})
	if err := json.Unmarshal([]byte(body), &tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("second code exchange: %s", body)
	}
	mustLatch(t, env, "", "users", "delete", "alice")
	if body := introspect(tok.AccessToken); body != `{"active":false}` {
		t.Fatalf("a deleted user's token is still active: %s", body)
	}
}

// hiddenInput matches the hidden fields of Latch's forms (the CSRF token,
// the challenge).
var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// signIn runs an authorization request of clientID through the login page
// (and the consent page, allowing) as a browser would, and returns the code
// sent to redirectURI.
func signIn(t *testing.T, issuer, clientID, redirectURI, username, password string) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(req *http.Request) (*http.Response, string) {
		t.Helper()
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	// submit posts the form of page with fields added to its hidden ones.
	submit := func(page, action string, fields url.Values) *http.Response {
		t.Helper()
		for _, m := range hiddenInput.FindAllStringSubmatch(page, -1) {
			fields.Set(m[1], html.UnescapeString(m[2]))
		}
		req, _ := http.NewRequest(http.MethodPost, issuer+action, strings.NewReader(fields.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", issuer)
		resp, _ := do(req)
		return resp
	}
	q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirectURI},
		"scope": {"openid profile offline_access"}, "state": {"state-1234567890"}, "nonce": {"nonce-1234567890"}}
	req, _ := http.NewRequest(http.MethodGet, issuer+"/oauth2/auth?"+q.Encode(), nil)
	resp, _ := do(req)
	for range 5 {
		loc, err := resp.Location()
		if err != nil {
			t.Fatalf("no redirect (status %d)", resp.StatusCode)
		}
		if strings.HasPrefix(loc.String(), redirectURI) {
			code := loc.Query().Get("code")
			if code == "" {
				t.Fatalf("redirected without a code: %s", loc)
			}
			return code
		}
		req, _ := http.NewRequest(http.MethodGet, loc.String(), nil)
		_, page := do(req)
		switch loc.Path {
		case "/login":
			resp = submit(page, "/login", url.Values{"username": {username}, "password": {password}})
		case "/consent":
			resp = submit(page, "/consent", url.Values{"decision": {"allow"}})
		default:
			t.Fatalf("unexpected page %s", loc)
		}
	}
	t.Fatal("too many redirects")
	return ""
}
