package server_test

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFormPostPageUnderStrictCSP: response_mode=form_post answers our own
// page, whose one script (which submits the form) is allowed by its hash
// and nothing else is ('unsafe-inline' never), whose form posts the code
// and state to the client only, and which offers a visible Continue button
// to a browser without JavaScript.
func TestFormPostPageUnderStrictCSP(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	b := ts.newBrowser(t)
	next := flowSignIn(t, b, ts.authorizeURL("web-client", map[string]string{"response_mode": "form_post"}))
	r := flowConsent(t, b, next, map[string]string{"decision": "allow"})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)

	csp := r.Header.Get("Content-Security-Policy")
	require.NotContains(t, csp, "unsafe-inline")
	require.Contains(t, csp, "form-action http://127.0.0.1:5555;")
	require.Contains(t, csp, "frame-ancestors 'none'")
	scripts := regexp.MustCompile(`(?s)<script>(.*?)</script>`).FindAllSubmatch(r.Body, -1)
	require.Len(t, scripts, 1, "one inline script")
	sum := sha256.Sum256(scripts[0][1])
	require.Contains(t, csp, "script-src 'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"';", "the CSP allows exactly that script")
	require.NotContains(t, string(r.Body), "onload", "no inline handler")

	forms, _ := pagesParse(t, r)
	require.Len(t, forms, 1)
	f := forms[0]
	require.Equal(t, "post", f.Method)
	require.Equal(t, callback, f.Action)
	require.NotEmpty(t, f.control("code").Value)
	require.Equal(t, "state-1234567890", f.control("state").Value)
	page := parsePage(t, r.Body)
	noscript := page.find("noscript")
	require.NotNil(t, noscript, "a <noscript> for browsers without JavaScript")
	// html.Parse reads <noscript> as text (scripting on); its markup holds the button.
	require.Regexp(t, `<button type="submit"[^>]*>Continue</button>`, pagesText(noscript))
	require.Contains(t, string(r.Body), `<link rel="stylesheet" href="/static/latch.css">`, "styled like the other pages")
	require.True(t, strings.Contains(csp, "style-src 'self'"))
}
