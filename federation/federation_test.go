package federation_test

import (
	"encoding/json"
	"errors"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v3"
	"github.com/pquerna/otp/totp"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/latchauth/latch/connector/oauth2/githubtest"
)

// The application of the tests: a client of the downstream Latch whose
// redirect URI nothing listens on; the browser stops there.
const (
	appID       = "app"
	appSecret   = "app-secret-0123456789"
	appRedirect = "http://127.0.0.1:5555/cb"

	// The downstream Latch's client at the upstream Latch.
	downID     = "downstream"
	downSecret = "downstream-secret-0123456789"
)

// env is an upstream Latch and a downstream Latch that signs in through
// it with several connectors.
type env struct {
	up, down *latch
	github   *githubtest.Server
}

var connectorIDs = []string{"corp", "corp-link", "corp-eng", "corp-silent"}

func newEnv(t *testing.T) *env {
	dir := t.TempDir()
	up := startLatch(t, dir, "upstream", `
listen: 127.0.0.1:0
log: {level: info}
janitor: {interval: 0s}
database: {driver: sqlite, dsn: upstream.db}
admin: {token: `+adminToken+`}
tokens: {id_token_signing_alg: ES256}
users:
  - {username: alice, password: alice-password-0123, email: alice@corp.example, email_verified: true, name: Alice Upstream, groups: [eng, ops]}
  - {username: bob, password: bob-password-0123, email: bob@example.com, email_verified: true, name: Bob Upstream}
  - {username: carol, password: carol-password-0123, email: carol@example.com, email_verified: false}
  - {username: dave, password: dave-password-0123, email: dave@corp.example, email_verified: true, groups: [eng]}
  - {username: erin, password: erin-password-0123, email: erin@corp.example, email_verified: true}
  - {username: frank, password: frank-password-0123, email: frank@corp.example, email_verified: true}
`)
	github := githubtest.New(t)
	connectors := `
  - {id: github, type: oauth2, preset: github, name: GitHub, base_url: "` + github.URL + `",
     client_id: ` + githubtest.ClientID + `, client_secret: ` + githubtest.ClientSecret + `}`
	for _, c := range []struct{ id, name, extra string }{
		{"corp", "Corp SSO", ""},
		{"corp-link", "Corp SSO linked", "link_by_email: true"},
		{"corp-eng", "Corp admins only", "allowed_groups: [admins]"},
		{"corp-silent", "Corp silent", "prompt: none"},
	} {
		connectors += `
  - id: ` + c.id + `
    type: oidc
    name: ` + c.name + `
    issuer: ` + up.URL + `
    client_id: ` + downID + `
    client_secret: ` + downSecret + `
    scopes: [openid, profile, email, groups, offline_access]
    ` + c.extra
	}
	down := startLatch(t, dir, "downstream", `
listen: 127.0.0.1:0
log: {level: info}
janitor: {interval: 0s}
database: {driver: sqlite, dsn: downstream.db}
admin: {token: `+adminToken+`}
tokens: {id_token_signing_alg: ES256}
connectors:`+connectors+`
clients:
  - id: `+appID+`
    secret: `+appSecret+`
    redirect_uris: [`+appRedirect+`]
    grant_types: [authorization_code, refresh_token]
    response_types: [code]
    scopes: [openid, profile, email, groups, offline_access]
users:
  - {username: bob, password: local-bob-password-0123, email: bob@example.com, email_verified: true, groups: [local]}
  - {username: carol, password: local-carol-password-0123, email: carol@example.com, email_verified: true}
`)
	// `latch serve` printed each connector's redirect URI; register them
	// at the upstream, as an operator would.
	var redirects []string
	for _, id := range connectorIDs {
		uri := down.URL + "/login/" + id + "/callback"
		// Printed just after the issuer line that startLatch waits for.
		require.Eventually(t, func() bool {
			return strings.Contains(down.Stdout.String(), "connector "+id+" ") && strings.Contains(down.Stdout.String(), "redirect URI "+uri+"\n")
		}, 10*time.Second, 10*time.Millisecond, "serve prints the redirect URI of %s:\n%s", id, down.Stdout)
		redirects = append(redirects, uri)
	}
	require.Equal(t, http.StatusCreated, up.admin(t, http.MethodPost, "/admin/clients", map[string]any{
		"client_id": downID, "client_secret": downSecret, "redirect_uris": redirects,
		"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
		"scopes": []string{"openid", "profile", "email", "groups", "offline_access"},
	}))
	return &env{up: up, down: down, github: github}
}

func (e *env) app() *oauth2.Config {
	return &oauth2.Config{ClientID: appID, ClientSecret: appSecret, RedirectURL: appRedirect,
		Endpoint: oauth2.Endpoint{AuthURL: e.down.URL + "/oauth2/auth", TokenURL: e.down.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader},
		Scopes:   []string{oidc.ScopeOpenID, "profile", "email", "groups", oidc.ScopeOfflineAccess}}
}

// start opens the application's authorization request in a new browser
// and returns the page it leads to, with the state and PKCE verifier.
func (e *env) start(t *testing.T, extra ...oauth2.AuthCodeOption) (*browser, page, string) {
	b := newBrowser(t, appRedirect)
	verifier := oauth2.GenerateVerifier()
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oidc.Nonce("app-nonce")}, extra...)
	return b, b.get(e.app().AuthCodeURL("app-state", opts...)), verifier
}

// signIn signs username in at the upstream through the connector named
// name and returns the application's tokens and ID token claims.
func (e *env) signIn(t *testing.T, name, username, password string) (*browser, *oauth2.Token, map[string]any) {
	b, p, verifier := e.start(t)
	require.Equal(t, http.StatusOK, p.status)
	p = b.get(connectorLink(t, p, name))
	require.True(t, strings.HasPrefix(p.url.String(), e.up.URL+"/login"), "the upstream's login page, got %s", p.url)
	p = b.throughPages(p, username, password, "allow")
	tok, claims := e.redeem(t, p, verifier)
	return b, tok, claims
}

// redeem takes the code of the application's redirect p and redeems it,
// verifying the ID token as an application does.
func (e *env) redeem(t *testing.T, p page, verifier string) (*oauth2.Token, map[string]any) {
	t.Helper()
	require.Contains(t, []int{http.StatusFound, http.StatusSeeOther}, p.status, "the application's redirect, got %s (%d):\n%s", p.url, p.status, p.body)
	loc, err := url.Parse(p.header.Get("Location"))
	require.NoError(t, err)
	require.Equal(t, "app-state", loc.Query().Get("state"), "redirect %s", loc)
	ctx := ctxT(t)
	tok, err := e.app().Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	require.NoError(t, err)
	provider, err := oidc.NewProvider(ctx, e.down.URL)
	require.NoError(t, err)
	idt, err := provider.Verifier(&oidc.Config{ClientID: appID}).Verify(ctx, tok.Extra("id_token").(string))
	require.NoError(t, err)
	require.Equal(t, "app-nonce", idt.Nonce)
	var claims map[string]any
	require.NoError(t, idt.Claims(&claims))
	return tok, claims
}

func TestFederation(t *testing.T) {
	e := newEnv(t)

	t.Run("code flow through both, groups carried", func(t *testing.T) {
		_, tok, claims := e.signIn(t, "Corp SSO", "alice", "alice-password-0123")
		require.Equal(t, "alice", claims["sub"])
		require.Equal(t, "alice@corp.example", claims["email"])
		require.Equal(t, true, claims["email_verified"])
		require.Equal(t, "Alice Upstream", claims["name"])
		require.Equal(t, []any{"eng", "ops"}, claims["groups"])
		require.Equal(t, []any{"fed"}, claims["amr"])
		require.Equal(t, "urn:latch:acr:fed", claims["acr"])
		require.NotEmpty(t, tok.RefreshToken)

		// The same person again is the same user, not a new one.
		_, _, again := e.signIn(t, "Corp SSO", "alice", "alice-password-0123")
		require.Equal(t, "alice", again["sub"])

		// A refresh asks the upstream, which still knows alice.
		fresh, err := e.app().TokenSource(ctxT(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		require.NoError(t, err)
		require.NotEmpty(t, fresh.AccessToken)
	})

	t.Run("GitHub preset against the stand-in", func(t *testing.T) {
		b, p, verifier := e.start(t)
		p = b.throughPages(b.get(connectorLink(t, p, "GitHub")), "", "", "allow")
		tok, claims := e.redeem(t, p, verifier)
		require.Equal(t, "octocat", claims["sub"])
		require.Equal(t, "octo@example.com", claims["email"])
		require.Equal(t, []any{"acme:platform", "acme:sre"}, claims["groups"], "teams as org:team-slug")
		require.Equal(t, []string{e.down.URL + "/login/github/callback"}, e.github.Redirects())
		_, err := e.app().TokenSource(ctxT(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		require.NoError(t, err, "GitHub still accepts the token")
		e.github.RevokeAll()
		_, err = e.app().TokenSource(ctxT(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		var re *oauth2.RetrieveError
		require.True(t, errors.As(err, &re), "got %v", err)
		require.Equal(t, "invalid_grant", re.ErrorCode, "GitHub answers 401 for the kept token: the person is gone")
	})

	t.Run("local second factor after the upstream", func(t *testing.T) {
		b, p, verifier := e.start(t, oauth2.SetAuthURLParam("acr_values", "urn:latch:acr:mfa"))
		p = b.throughPages(b.get(connectorLink(t, p, "Corp SSO")), "frank", "frank-password-0123", "allow")
		require.True(t, strings.HasPrefix(p.url.String(), e.down.URL+"/login/mfa"), "asked for a second factor here, got %s", p.url)
		m := totpSecret.FindStringSubmatch(p.body)
		require.NotNil(t, m, "the enrolment shows the TOTP key:\n%s", p.body)
		code, err := totp.GenerateCode(m[1], time.Now())
		require.NoError(t, err)
		p = b.submit(p, "/login/mfa", url.Values{"code": {code}})
		cont := continueLink.FindStringSubmatch(p.body)
		require.NotNil(t, cont, "the recovery codes page goes on:\n%s", p.body)
		p = b.throughPages(b.get(e.down.URL+html.UnescapeString(cont[1])), "", "", "allow")
		_, claims := e.redeem(t, p, verifier)
		require.Equal(t, "frank", claims["sub"])
		require.Equal(t, []any{"fed", "otp", "mfa"}, claims["amr"])
		require.Equal(t, "urn:latch:acr:mfa", claims["acr"])
	})

	t.Run("login page lists every connector beside the password form", func(t *testing.T) {
		_, p, _ := e.start(t)
		require.Contains(t, p.body, `name="password"`)
		for _, name := range []string{"Corp SSO", "Corp SSO linked", "Corp admins only", "Corp silent"} {
			connectorLink(t, p, name)
		}
	})

	t.Run("connector and idp_hint skip the login page", func(t *testing.T) {
		for _, param := range []string{"connector", "idp_hint"} {
			b, p, verifier := e.start(t, oauth2.SetAuthURLParam(param, "corp"))
			require.True(t, strings.HasPrefix(p.url.String(), e.up.URL+"/login"), "%s: straight to the upstream, got %s", param, p.url)
			p = b.throughPages(p, "erin", "erin-password-0123", "allow")
			_, claims := e.redeem(t, p, verifier)
			require.Equal(t, "erin", claims["sub"])
		}
		// An unknown connector shows the login page.
		_, p, _ := e.start(t, oauth2.SetAuthURLParam("connector", "nope"))
		require.True(t, strings.HasPrefix(p.url.String(), e.down.URL+"/login"), "got %s", p.url)
	})

	t.Run("link_by_email joins the local user; off, a new user is made", func(t *testing.T) {
		_, _, linked := e.signIn(t, "Corp SSO linked", "bob", "bob-password-0123")
		require.Equal(t, "bob", linked["sub"], "joined to the local bob by verified email")
		require.Equal(t, []any{"local"}, linked["groups"], "a joined local user keeps their own profile")
		_, _, apart := e.signIn(t, "Corp SSO", "bob", "bob-password-0123")
		require.Equal(t, "bob-2", apart["sub"], "without link_by_email: a new user, named apart from the local bob")
		require.Equal(t, "Bob Upstream", apart["name"])
	})

	t.Run("unverified email is not joined", func(t *testing.T) {
		b, p, _ := e.start(t)
		p = b.get(connectorLink(t, p, "Corp SSO linked"))
		p = b.throughPages(p, "carol", "carol-password-0123", "allow")
		errorPage(t, p, http.StatusForbidden, "not verified")
	})

	t.Run("allowed_groups refuses", func(t *testing.T) {
		b, p, _ := e.start(t)
		p = b.get(connectorLink(t, p, "Corp admins only"))
		p = b.throughPages(p, "alice", "alice-password-0123", "allow")
		errorPage(t, p, http.StatusForbidden, "not in a group allowed")
	})

	t.Run("an error at the upstream", func(t *testing.T) {
		// The person denies at the upstream's consent page.
		b, p, _ := e.start(t)
		p = b.get(connectorLink(t, p, "Corp SSO"))
		p = b.throughPages(p, "erin", "erin-password-0123", "deny")
		errorPage(t, p, http.StatusForbidden, "cancelled or refused")
		// prompt=none upstream without a session there: login_required.
		b, p, _ = e.start(t)
		p = b.get(connectorLink(t, p, "Corp silent"))
		errorPage(t, p, http.StatusBadGateway, "could not sign you in")
	})

	t.Run("bad state and a replayed callback", func(t *testing.T) {
		b, p, verifier := e.start(t)
		p = b.get(connectorLink(t, p, "Corp SSO"))
		p = b.throughPages(p, "erin", "erin-password-0123", "allow")
		e.redeem(t, p, verifier)
		var callback string
		for _, v := range b.visited {
			if strings.HasPrefix(v, e.down.URL+"/login/corp/callback") {
				callback = v
			}
		}
		require.NotEmpty(t, callback)
		errorPage(t, b.get(callback), http.StatusBadRequest, "already completed")
		errorPage(t, b.get(e.down.URL+"/login/corp/callback?state=forged&code=x"), http.StatusBadRequest, "already completed")
		// The callback in another browser: no binding, nothing found.
		errorPage(t, newBrowser(t, appRedirect).get(callback), http.StatusBadRequest, "another browser")
	})

	t.Run("wrong nonce", func(t *testing.T) {
		b, p, _ := e.start(t)
		noFollow := *b.client
		noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, err := noFollow.Get(connectorLink(t, p, "Corp SSO"))
		require.NoError(t, err)
		resp.Body.Close()
		to, err := url.Parse(resp.Header.Get("Location"))
		require.NoError(t, err)
		q := to.Query()
		require.NotEmpty(t, q.Get("nonce"))
		require.Equal(t, "S256", q.Get("code_challenge_method"))
		q.Set("nonce", "someone-elses-nonce")
		to.RawQuery = q.Encode()
		p = b.throughPages(b.get(to.String()), "erin", "erin-password-0123", "allow")
		errorPage(t, p, http.StatusBadRequest, "does not belong to this sign-in")
	})

	t.Run("an answer naming another issuer (RFC 9207 mix-up)", func(t *testing.T) {
		b, p, _ := e.start(t)
		// The same browser, stopped before the upstream's answer arrives.
		held := newBrowser(t, e.down.URL+"/login/corp/callback")
		held.client.Jar = b.client.Jar
		p = held.throughPages(held.get(connectorLink(t, p, "Corp SSO")), "erin", "erin-password-0123", "allow")
		answer, err := url.Parse(p.header.Get("Location"))
		require.NoError(t, err)
		q := answer.Query()
		require.Equal(t, e.up.URL, q.Get("iss"), "the upstream names itself")
		q.Set("iss", "https://evil.example")
		answer.RawQuery = q.Encode()
		errorPage(t, b.get(answer.String()), http.StatusBadRequest, "does not belong to this sign-in")
	})

	t.Run("upstream key rotation", func(t *testing.T) {
		before := upstreamSigningKID(t, e)
		e.up.cli(t, "keys", "rotate")
		// The running upstream publishes and signs with its new key
		// within its key cache's 5 s.
		deadline := time.Now().Add(20 * time.Second)
		kid := newestKID(t, e.up.URL)
		for kid == before {
			require.True(t, time.Now().Before(deadline), "the upstream never published a new key")
			time.Sleep(time.Second)
			kid = newestKID(t, e.up.URL)
		}
		for upstreamSigningKID(t, e) != kid {
			require.True(t, time.Now().Before(deadline), "the upstream never signed with its new key %s", kid)
			time.Sleep(time.Second)
		}
		_, _, claims := e.signIn(t, "Corp SSO", "alice", "alice-password-0123")
		require.Equal(t, "alice", claims["sub"], "the downstream verified an ID token of a key it had not seen")
	})

	t.Run("upstream user deleted: refresh refused", func(t *testing.T) {
		_, tok, claims := e.signIn(t, "Corp SSO", "dave", "dave-password-0123")
		require.Equal(t, "dave", claims["sub"])
		_, err := e.app().TokenSource(ctxT(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		require.NoError(t, err, "dave is still known upstream")
		require.Equal(t, http.StatusNoContent, e.up.admin(t, http.MethodDelete, "/admin/users/dave", nil))
		_, err = e.app().TokenSource(ctxT(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		var re *oauth2.RetrieveError
		require.True(t, errors.As(err, &re), "got %v", err)
		require.Equal(t, "invalid_grant", re.ErrorCode)
	})

	t.Run("CLI lists connectors; admin API never shows the secret", func(t *testing.T) {
		out := e.down.cli(t, "connectors", "list")
		require.Contains(t, out, "corp-link")
		// The CLI knows the configured issuer only; this one follows the
		// port serve took, so only the path is certain.
		require.Contains(t, out, "/login/corp/callback")
		req, err := http.NewRequest(http.MethodGet, e.down.URL+"/admin/connectors", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var list struct {
			Items []map[string]any `json:"items"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&list))
		require.Len(t, list.Items, 5)
		raw, _ := json.Marshal(list)
		require.NotContains(t, string(raw), downSecret)
		for _, item := range list.Items {
			require.Equal(t, true, item["client_secret_set"], "%v", item["id"])
		}
	})

	for _, l := range []*latch{e.up, e.down} {
		require.NotContains(t, l.Stderr.String(), downSecret, "no secret in the log")
		require.NotContains(t, l.Stderr.String(), "panic")
	}
}

var (
	totpSecret   = regexp.MustCompile(`<code id="totp-secret">([A-Z2-7]+)</code>`)
	continueLink = regexp.MustCompile(`<a class="btn btn-primary" href="([^"]+)">Continue</a>`)
)

// newestKID is the kid of the newest key of issuer's JWKS (Latch lists
// the current key first).
func newestKID(t *testing.T, issuer string) string {
	resp, err := http.Get(issuer + "/.well-known/jwks.json")
	require.NoError(t, err)
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&set))
	require.NotEmpty(t, set.Keys)
	return set.Keys[0].KeyID
}

// upstreamSigningKID signs erin in at the upstream directly (as the
// downstream's client) and returns the kid of the ID token it issues.
func upstreamSigningKID(t *testing.T, e *env) string {
	redirect := e.down.URL + "/login/corp/callback"
	cfg := &oauth2.Config{ClientID: downID, ClientSecret: downSecret, RedirectURL: redirect,
		Endpoint: oauth2.Endpoint{AuthURL: e.up.URL + "/oauth2/auth", TokenURL: e.up.URL + "/oauth2/token"}, Scopes: []string{"openid"}}
	b := newBrowser(t, redirect)
	verifier := oauth2.GenerateVerifier()
	p := b.throughPages(b.get(cfg.AuthCodeURL("probe-state", oauth2.S256ChallengeOption(verifier))), "erin", "erin-password-0123", "allow")
	require.Contains(t, []int{http.StatusFound, http.StatusSeeOther}, p.status)
	loc, err := url.Parse(p.header.Get("Location"))
	require.NoError(t, err)
	tok, err := cfg.Exchange(ctxT(t), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	require.NoError(t, err)
	jws, err := jose.ParseSigned(tok.Extra("id_token").(string))
	require.NoError(t, err)
	return jws.Signatures[0].Header.KeyID
}
