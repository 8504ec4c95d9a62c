package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"
)

// TestAuthorizeErrorPageSpeaksToPeople: an authorization request that
// cannot be sent back to its client gets a page whose headline and
// sentence fit the error, with the OAuth error code and the request id for
// support, and fosite's developer text only inside a folded <details>.
func TestAuthorizeErrorPageSpeaksToPeople(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for _, tt := range []struct {
		name     string
		extra    map[string]string
		headline string
		code     string
	}{
		{"unknown client", map[string]string{"client_id": "no-such-client"}, "Unknown application", "invalid_client"},
		{"unregistered redirect URI", map[string]string{"redirect_uri": "https://evil.example/cb"}, "Unregistered return address", "invalid_request"},
		// A request object is refused before the redirect URI is checked:
		// it is not a redirect problem, whatever the code says.
		// An unsigned (alg none) one is invalid_request_object (RFC 9101 §6.3).
		{"request object", map[string]string{"request": "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."}, "This sign-in request is not valid", "invalid_request_object"},
		{"missing client_id", map[string]string{"client_id": ""}, "Unknown application", "invalid_client"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			client := "web-client"
			if id, ok := tt.extra["client_id"]; ok {
				client = id
			}
			r := ts.newBrowser(t).get(t, ts.authorizeURL(client, tt.extra))
			flowRequirePage(t, r, http.StatusBadRequest)
			page := parsePage(t, r.Body)
			require.Equal(t, tt.headline, page.text("h1"))
			require.Equal(t, tt.code, page.byID("error-code"))
			require.NotEmpty(t, r.Header.Get("X-Request-Id"))
			require.Equal(t, r.Header.Get("X-Request-Id"), page.byID("request-id"), "the page names the request id of the log line")
			details := page.byID("error-details")
			require.NotEmpty(t, details, "the developer's text is there")
			require.True(t, page.insideDetails("error-details"), "but folded in <details>")
			require.NotContains(t, page.text("p.message"), details)
		})
	}
}

// htmlPage is a parsed page for assertions by id, tag or class.
type htmlPage struct{ root *html.Node }

func parsePage(t *testing.T, body []byte) htmlPage {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(string(body)))
	require.NoError(t, err)
	return htmlPage{doc}
}

// find returns the first element matching sel: "#id", "tag" or "tag.class".
func (p htmlPage) find(sel string) *html.Node {
	var match func(n *html.Node) bool
	switch tag, class, _ := strings.Cut(sel, "."); {
	case strings.HasPrefix(sel, "#"):
		match = func(n *html.Node) bool { return attr(n, "id") == sel[1:] }
	case class != "":
		match = func(n *html.Node) bool {
			return n.Data == tag && strings.Contains(" "+attr(n, "class")+" ", " "+class+" ")
		}
	default:
		match = func(n *html.Node) bool { return n.Data == tag }
	}
	var walk func(n *html.Node) *html.Node
	walk = func(n *html.Node) *html.Node {
		if n.Type == html.ElementNode && match(n) {
			return n
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if m := walk(c); m != nil {
				return m
			}
		}
		return nil
	}
	return walk(p.root)
}

// text is the text of the first element matching sel, "" when none.
func (p htmlPage) text(sel string) string {
	if n := p.find(sel); n != nil {
		return strings.TrimSpace(pagesText(n))
	}
	return ""
}

func (p htmlPage) byID(id string) string { return p.text("#" + id) }

// insideDetails reports whether the element with id sits in a <details>.
func (p htmlPage) insideDetails(id string) bool {
	for n := p.find("#" + id); n != nil; n = n.Parent {
		if n.Type == html.ElementNode && n.Data == "details" {
			return true
		}
	}
	return false
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}
