package reliability_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/oauth2"
)

// browser is a person's browser: a cookie jar (so a second authorization
// request finds the login session), and redirects handled one by one.
type browser struct {
	a  *api
	hc *http.Client
}

func (a *api) newBrowser() *browser {
	jar, _ := cookiejar.New(nil) // never fails without options
	return &browser{a: a, hc: &http.Client{
		Jar: jar, Transport: a.hc.Transport, Timeout: a.hc.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// codeGrant is a code and the PKCE verifier it was asked with.
type codeGrant struct {
	code, verifier string
}

// authorize asks for a code for c through the real pages, as alice: the
// authorization request with PKCE S256, a state and a nonce, the login
// form when there is no session, the consent page when the client has one
// (Allow, not remembered), then the redirect to the client.
func (b *browser) authorize(ctx context.Context, c creds, scopes ...string) (codeGrant, error) {
	cfg := b.a.codeConfig(c, scopes...)
	verifier := oauth2.GenerateVerifier()
	state, nonce := oauth2.GenerateVerifier()[:24], oauth2.GenerateVerifier()[:24]
	target := cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", nonce))
	var form url.Values
	for step := 0; step < 10; step++ {
		if strings.HasPrefix(target, redirectURI+"?") {
			code, err := callbackCode(target, state)
			return codeGrant{code: code, verifier: verifier}, err
		}
		page, err := b.fetch(ctx, target, form)
		if err != nil {
			return codeGrant{}, err
		}
		if loc := page.Header.Get("Location"); page.Status >= 300 && page.Status < 400 && loc != "" {
			next, err := url.Parse(loc)
			if err != nil {
				return codeGrant{}, err
			}
			target, form = page.url.ResolveReference(next).String(), nil
			continue
		}
		if page.Status != http.StatusOK {
			return codeGrant{}, fmt.Errorf("%s answered %s", page.url.Path, page.answer)
		}
		f, err := parseForm(string(page.Body))
		if err != nil {
			return codeGrant{}, fmt.Errorf("%s: %w", page.url.Path, err)
		}
		switch {
		case f.inputs["password"]:
			f.values.Set("username", username)
			f.values.Set("password", password)
		case f.buttons["decision"]:
			f.values.Set("decision", "allow")
		default:
			return codeGrant{}, fmt.Errorf("%s: neither the login nor the consent page", page.url.Path)
		}
		action, err := page.url.Parse(f.action)
		if err != nil {
			return codeGrant{}, err
		}
		target, form = action.String(), f.values
	}
	return codeGrant{}, errors.New("too many pages before the redirect to the client")
}

// exchange redeems g for c's tokens.
func (b *browser) exchange(ctx context.Context, c creds, g codeGrant) (*oauth2.Token, error) {
	return b.a.codeConfig(c).Exchange(b.a.oauthCtx(ctx), g.code, oauth2.VerifierOption(g.verifier))
}

type page struct {
	answer
	url *url.URL
}

// fetch GETs target, or POSTs form to it from the server's origin, as a
// browser submitting a form does.
func (b *browser) fetch(ctx context.Context, target string, form url.Values) (page, error) {
	method, body := http.MethodGet, ""
	if form != nil {
		method, body = http.MethodPost, form.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, target, strings.NewReader(body))
	if err != nil {
		return page{}, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", b.a.base)
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		return page{}, err
	}
	defer resp.Body.Close()
	a := answer{Status: resp.StatusCode, Header: resp.Header}
	a.Body, err = io.ReadAll(resp.Body)
	return page{answer: a, url: req.URL}, err
}

// callbackCode is the code the redirect to the client carries.
func callbackCode(target, state string) (string, error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", err
	}
	q := u.Query()
	switch {
	case q.Get("error") != "":
		return "", fmt.Errorf("the authorization failed: %s: %s", q.Get("error"), q.Get("error_description"))
	case q.Get("state") != state:
		return "", errors.New("the redirect carries another state")
	case q.Get("code") == "":
		return "", errors.New("the redirect carries no code")
	}
	return q.Get("code"), nil
}

// form is the one form of a page: where it posts, what a browser would
// send (hidden and text inputs, checked boxes), and its submit buttons.
type form struct {
	action  string
	values  url.Values
	inputs  map[string]bool
	buttons map[string]bool
}

func parseForm(body string) (*form, error) {
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	var f *form
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			a := map[string]string{}
			for _, at := range n.Attr {
				a[at.Key] = at.Val
			}
			_, checked := a["checked"]
			switch {
			case n.Data == "form" && f == nil:
				f = &form{action: a["action"], values: url.Values{}, inputs: map[string]bool{}, buttons: map[string]bool{}}
			case n.Data == "input" && f != nil && a["name"] != "":
				f.inputs[a["name"]] = true
				if a["type"] != "checkbox" || checked {
					f.values.Set(a["name"], a["value"])
				}
			case n.Data == "button" && f != nil && a["name"] != "":
				f.buttons[a["name"]] = true
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if f == nil {
		return nil, errors.New("the page has no form")
	}
	return f, nil
}
