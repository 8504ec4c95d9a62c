package reliability_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"

	"github.com/latchauth/latch/latchtest"
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
	code, err := latchtest.SignIn(ctx, b.hc, target, redirectURI, state, username, password)
	return codeGrant{code: code, verifier: verifier}, err
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
