package latchtest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
	"golang.org/x/oauth2"

	"github.com/latchauth/latch/clients"
)

// Login signs username in to clientID through the real pages, as a
// browser would: the authorization request (with PKCE, a state and a
// nonce), the login form, the consent page (Allow), then the code
// exchange. It returns the tokens; the ID token is tok.Extra("id_token").
// With no scopes it asks for every scope the client is registered for.
// The client must have been added through this package (its secret is
// needed) and have a redirect URI. It fails t on any error.
func (s *Server) Login(t testing.TB, clientID, username, password string, scopes ...string) *oauth2.Token {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, err := s.login(ctx, clientID, username, password, scopes)
	if err != nil {
		t.Fatalf("latchtest: login of %s to %s: %v", username, clientID, err)
	}
	return tok
}

func (s *Server) login(ctx context.Context, clientID, username, password string, scopes []string) (*oauth2.Token, error) {
	fc, err := s.in.Store.GetClient(ctx, clientID)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	c, ok := fc.(*clients.Client)
	if !ok || len(c.RedirectURIs) == 0 {
		return nil, errors.New("the client has no redirect URI")
	}
	s.mu.Lock()
	secret, known := s.secrets[clientID]
	s.mu.Unlock()
	if !known && !c.IsPublic() {
		return nil, errors.New("the client's secret is unknown: add it with AddClient")
	}
	if len(scopes) == 0 {
		scopes = c.Scopes
	}
	cfg := s.OAuth2Config(Client{ID: c.ID, Secret: secret, RedirectURI: c.RedirectURIs[0]}, scopes...)
	if c.TokenEndpointAuthMethod == clients.AuthMethodPost {
		cfg.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	}
	verifier, state, nonce := oauth2.GenerateVerifier(), random(), random()
	authURL := cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", nonce))

	code, err := SignIn(ctx, nil, authURL, cfg.RedirectURL, state, username, password)
	if err != nil {
		return nil, err
	}
	return cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
}

// SignIn follows the authorization request authURL of any Latch server
// like a person's browser: it signs in as username on the login page when
// one comes, allows on the consent page when one comes, and returns the
// code of the redirect to redirectURI, whose state it checks. hc is the
// browser: its cookie jar keeps the login session between calls (nil: a
// fresh browser each time); SignIn follows its redirects itself.
func SignIn(ctx context.Context, hc *http.Client, authURL, redirectURI, state, username, password string) (string, error) {
	b := &http.Client{}
	if hc != nil {
		*b = *hc
	}
	if b.Jar == nil {
		jar, err := cookiejar.New(nil)
		if err != nil {
			return "", err
		}
		b.Jar = jar
	}
	b.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	start, err := url.Parse(authURL)
	if err != nil {
		return "", err
	}
	origin := start.Scheme + "://" + start.Host // what a browser sends with a form post
	target, method, body := authURL, http.MethodGet, url.Values(nil)
	for step := 0; step < 12; step++ {
		if strings.HasPrefix(target, redirectURI+"?") {
			return callbackCode(target, state)
		}
		page, err := fetch(ctx, b, origin, method, target, body)
		if err != nil {
			return "", err
		}
		if page.location != "" {
			target, method, body = page.location, http.MethodGet, nil
			continue
		}
		switch {
		case page.status == http.StatusUnauthorized:
			return "", errors.New("wrong username or password")
		case page.status != http.StatusOK:
			return "", fmt.Errorf("%s answered %d: %s", page.url.Path, page.status, page.text)
		}
		f, err := parseForm(page.body)
		if err != nil {
			return "", fmt.Errorf("%s: %w", page.url.Path, err)
		}
		switch {
		case f.has("password"):
			f.values.Set("username", username)
			f.values.Set("password", password)
		case f.buttons["decision"]:
			f.values.Set("decision", "allow")
		default:
			return "", fmt.Errorf("%s: a form that is neither the login nor the consent page", page.url.Path)
		}
		action, err := page.url.Parse(f.action)
		if err != nil {
			return "", err
		}
		target, method, body = action.String(), http.MethodPost, f.values
	}
	return "", errors.New("too many pages before the redirect to the client")
}

// page is one answer of the server, read in full.
type page struct {
	url      *url.URL
	status   int
	location string // absolute, when the answer is a redirect
	body     string
	text     string // the start of the body, for errors
}

func fetch(ctx context.Context, b *http.Client, origin, method, target string, form url.Values) (*page, error) {
	var rd io.Reader
	if form != nil {
		rd = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", origin)
	}
	resp, err := b.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	p := &page{url: req.URL, status: resp.StatusCode, body: string(raw)}
	p.text = p.body
	if len(p.text) > 300 {
		p.text = p.text[:300]
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		loc, err := req.URL.Parse(resp.Header.Get("Location"))
		if err != nil {
			return nil, fmt.Errorf("redirect: %w", err)
		}
		p.location = loc.String()
	}
	return p, nil
}

// callbackCode reads the code of the redirect to the client, or the error
// it carries.
func callbackCode(target, state string) (string, error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", err
	}
	q := u.Query()
	if e := q.Get("error"); e != "" {
		return "", fmt.Errorf("the authorization request failed: %s: %s", e, q.Get("error_description"))
	}
	if q.Get("state") != state {
		return "", fmt.Errorf("the redirect carries state %q, not %q", q.Get("state"), state)
	}
	if q.Get("code") == "" {
		return "", errors.New("the redirect carries no code")
	}
	return q.Get("code"), nil
}

// form is the first form of a page: where it posts, the values a browser
// would send (hidden and text inputs, checked boxes), and the names of its
// submit buttons.
type form struct {
	action  string
	values  url.Values
	inputs  map[string]bool
	buttons map[string]bool
}

func (f *form) has(input string) bool { return f.inputs[input] }

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
			switch n.Data {
			case "form":
				// Only the first form's fields: dev mode's login page has a
				// second form, whose fields must not ride along.
				if f != nil {
					return
				}
				f = &form{action: a["action"], values: url.Values{}, inputs: map[string]bool{}, buttons: map[string]bool{}}
			case "input":
				if _, checked := a["checked"]; f != nil && a["name"] != "" {
					f.inputs[a["name"]] = true
					if a["type"] != "checkbox" || checked {
						f.values.Set(a["name"], a["value"])
					}
				}
			case "button":
				if f != nil && a["name"] != "" {
					f.buttons[a["name"]] = true
				}
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

// random is 16 random bytes, base64url: a state or a nonce.
func random() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
