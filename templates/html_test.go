package templates

// Helpers that read a rendered page the way a browser would, with
// golang.org/x/net/html, and hold it to the pages' rules.

import (
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// field is one form control as a browser would submit it.
type field struct{ Tag, Type, Name, Value string }

func (f field) String() string { return f.Tag + "[" + f.Type + "] " + f.Name + "=" + f.Value }

func checkHead(t *testing.T, doc *html.Node) {
	t.Helper()
	htmlEl := findAll(doc, "html")
	if len(htmlEl) != 1 || attr(htmlEl[0], "lang") != "en" {
		t.Errorf(`want one <html lang="en">`)
	}
	var charset, viewport, referrer bool
	for _, m := range findAll(doc, "meta") {
		switch {
		case strings.EqualFold(attr(m, "charset"), "utf-8"):
			charset = true
		case attr(m, "name") == "viewport" && strings.Contains(attr(m, "content"), "width=device-width"):
			viewport = true
		case attr(m, "name") == "referrer" && attr(m, "content") == "same-origin":
			referrer = true
		}
	}
	if !charset || !viewport || !referrer {
		t.Errorf("meta charset=%v viewport=%v referrer=%v, want all", charset, viewport, referrer)
	}
	if titles := findAll(doc, "title"); len(titles) != 1 || strings.TrimSpace(textContent(titles[0])) == "" {
		t.Errorf("want one non-empty <title>")
	}
	var sheets []string
	for _, l := range findAll(doc, "link") {
		if attr(l, "rel") == "stylesheet" {
			sheets = append(sheets, attr(l, "href"))
		}
	}
	if !slices.Equal(sheets, []string{"/static/latch.css"}) {
		t.Errorf("stylesheets %v, want [/static/latch.css]", sheets)
	}
}

// checkNoScriptOrInlineStyle holds every page to the CSP: no script of any
// kind, no <style> element and no style attribute.
func checkNoScriptOrInlineStyle(t *testing.T, doc *html.Node) {
	t.Helper()
	walk(doc, func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		if n.Data == "script" || n.Data == "style" {
			t.Errorf("<%s> element in page", n.Data)
		}
		for _, a := range n.Attr {
			if a.Key == "style" || strings.HasPrefix(a.Key, "on") {
				t.Errorf("<%s %s=%q> in page", n.Data, a.Key, a.Val)
			}
			if strings.HasPrefix(strings.ToLower(strings.TrimSpace(a.Val)), "javascript:") {
				t.Errorf("<%s %s=%q> in page", n.Data, a.Key, a.Val)
			}
		}
	})
}

// checkLabels requires a <label for> for every visible input, and checks the
// values of the inputs named in want (by id).
func checkLabels(t *testing.T, doc *html.Node, want map[string]string) {
	t.Helper()
	labels := map[string]bool{}
	for _, l := range findAll(doc, "label") {
		if strings.TrimSpace(textContent(l)) != "" {
			labels[attr(l, "for")] = true
		}
	}
	seen := map[string]bool{}
	for _, in := range findAll(doc, "input") {
		if attr(in, "type") == "hidden" {
			continue
		}
		id := attr(in, "id")
		if id == "" || !labels[id] {
			t.Errorf("input %q has no <label for=%q>", attr(in, "name"), id)
		}
		seen[id] = true
		if v, ok := want[id]; ok && attr(in, "value") != v {
			t.Errorf("input %s value = %q, want %q", id, attr(in, "value"), v)
		}
	}
	for id := range want {
		if !seen[id] {
			t.Errorf("no visible input with id %q", id)
		}
	}
}

func formFields(form *html.Node) []field {
	var fs []field
	walk(form, func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		switch n.Data {
		case "input":
			typ := attr(n, "type")
			if typ == "" {
				typ = "text"
			}
			fs = append(fs, field{"input", typ, attr(n, "name"), attr(n, "value")})
		case "button":
			typ := attr(n, "type")
			if typ == "" {
				typ = "submit"
			}
			fs = append(fs, field{"button", typ, attr(n, "name"), attr(n, "value")})
		case "select", "textarea":
			fs = append(fs, field{n.Data, "", attr(n, "name"), ""})
		}
	})
	return fs
}

func sortFields(fs []field) {
	slices.SortFunc(fs, func(a, b field) int { return strings.Compare(a.String(), b.String()) })
}

func walk(n *html.Node, f func(*html.Node)) {
	f(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, f)
	}
}

func findAll(n *html.Node, tag string) []*html.Node {
	var out []*html.Node
	walk(n, func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == tag {
			out = append(out, n)
		}
	})
	return out
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasAttr(n *html.Node, key string) bool {
	return slices.ContainsFunc(n.Attr, func(a html.Attribute) bool { return a.Key == key })
}

func textContent(n *html.Node) string {
	var b strings.Builder
	walk(n, func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
	})
	return b.String()
}
