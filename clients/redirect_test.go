package clients_test

import (
	"strings"
	"testing"

	"github.com/latchauth/latch/clients"
)

// The redirect URI rules of RFC 8252 and the OAuth Security BCP, checked
// for redirect_uris and post_logout_redirect_uris alike.
func TestRedirectURIRules(t *testing.T) {
	tests := []struct {
		uri      string
		strict   bool // accepted without insecure_http
		insecure bool // accepted with insecure_http
	}{
		{"https://app.example.com/callback", true, true},
		{"https://app.example.com:8443/cb?x=1", true, true},
		{"http://127.0.0.1:5555/callback", true, true},
		{"http://127.5.0.1/cb", true, true},
		{"http://[::1]:8080/cb", true, true},
		{"http://localhost:9999/cb", true, true},
		{"com.example.app:/callback", true, true},
		{"com.example.app://oauth/cb", true, true},
		{"http://app.example.com/callback", false, true},
		{"http://192.168.1.10/cb", false, true},
		{"javascript:alert(document.cookie)", false, false},
		{"JavaScript://app.example.com/%0Aalert(1)", false, false},
		{"data:text/html,<script>alert(1)</script>", false, false},
		{"vbscript:msgbox(1)", false, false},
		{"file:///etc/passwd", false, false},
		{"https://app.example.com/cb#frag", false, false},
		{"https://app.example.com/cb#", false, false},
		{"http://127.0.0.1/cb#x", false, false},
		{"myapp:/callback", false, false},
		{"https:///cb", false, false},
		{"/callback", false, false},
		{"https://app.example.com/" + strings.Repeat("a", clients.MaxRedirectURILength), false, false},
	}
	for _, tc := range tests {
		t.Run(tc.uri[:min(len(tc.uri), 40)], func(t *testing.T) {
			if err := (clients.Rules{}).CheckRedirectURI(tc.uri); (err == nil) != tc.strict {
				t.Errorf("strict: CheckRedirectURI = %v, want accepted %v", err, tc.strict)
			}
			if err := (clients.Rules{InsecureHTTP: true}).CheckRedirectURI(tc.uri); (err == nil) != tc.insecure {
				t.Errorf("insecure_http: CheckRedirectURI = %v, want accepted %v", err, tc.insecure)
			}
		})
	}
}

// A client with a javascript: post-logout URI or a plain-http redirect URI
// to a remote host is refused by the one validator every path uses.
func TestValidateRefusesDangerousRedirectURIs(t *testing.T) {
	c := &clients.Client{
		ID: "web", GrantTypes: []string{clients.GrantAuthorizationCode}, ResponseTypes: []string{"code"},
		TokenEndpointAuthMethod: clients.AuthMethodNone,
		RedirectURIs:            []string{"http://app.example.com/cb"},
		PostLogoutRedirectURIs:  []string{"javascript:alert(1)"},
	}
	err := clients.Validate(c)
	for _, field := range []string{"redirect_uris[0]", "post_logout_redirect_uris[0]"} {
		if !hasProblem(err, field) {
			t.Errorf("no problem with %s in %q", field, err)
		}
	}
	err = clients.Rules{InsecureHTTP: true}.Validate(c)
	if hasProblem(err, "redirect_uris[0]") || !hasProblem(err, "post_logout_redirect_uris[0]") {
		t.Errorf("with insecure_http: %q, want only the javascript: URI refused", err)
	}
}

// A back-channel logout URI is one Latch POSTs to: a web address under
// the redirect rules (https, http for loopback hosts unless insecure_http),
// never a private-use scheme or a fragment, and Validate names the field.
func TestBackchannelLogoutURIRules(t *testing.T) {
	tests := []struct {
		uri              string
		strict, insecure bool
	}{
		{"https://rp.example.com/backchannel", true, true},
		{"https://rp.example.com/bc?tenant=7", true, true},
		{"http://127.0.0.1:5555/backchannel", true, true},
		{"http://localhost/bc", true, true},
		{"http://rp.example.com/bc", false, true},
		{"https://rp.example.com/bc#frag", false, false},
		{"com.example.app:/logout", false, false},
		{"javascript:alert(1)", false, false},
		{"/bc", false, false},
		{"https://rp.example.com/" + strings.Repeat("a", clients.MaxRedirectURILength), false, false},
	}
	for _, tc := range tests {
		t.Run(tc.uri[:min(len(tc.uri), 40)], func(t *testing.T) {
			if err := (clients.Rules{}).CheckBackchannelLogoutURI(tc.uri); (err == nil) != tc.strict {
				t.Errorf("strict: %v, want accepted %v", err, tc.strict)
			}
			if err := (clients.Rules{InsecureHTTP: true}).CheckBackchannelLogoutURI(tc.uri); (err == nil) != tc.insecure {
				t.Errorf("insecure_http: %v, want accepted %v", err, tc.insecure)
			}
		})
	}
	c := &clients.Client{ID: "rp", GrantTypes: []string{clients.GrantAuthorizationCode}, ResponseTypes: []string{"code"},
		TokenEndpointAuthMethod: clients.AuthMethodNone, RedirectURIs: []string{"https://rp.example.com/cb"},
		BackchannelLogoutURI: "https://rp.example.com/bc#x"}
	if err := clients.Validate(c); !hasProblem(err, "backchannel_logout_uri") {
		t.Errorf("no problem with backchannel_logout_uri in %q", err)
	}
	c.BackchannelLogoutURI = "https://rp.example.com/bc"
	if err := clients.Validate(c); err != nil {
		t.Errorf("a valid back-channel URI refused: %v", err)
	}
}
