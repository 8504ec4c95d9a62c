// Package oidc is the connector to an upstream OpenID Connect provider:
// discovery from its issuer, the code flow with PKCE (S256), state and
// nonce, and the ID token verified by go-oidc (issuer, audience, expiry,
// signature from the upstream's JWKS, fetched again when a token names a
// key it has not seen, so the upstream may rotate its keys). The nonce is
// checked here: go-oidc leaves it to the caller.
package oidc

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchauth/latch/connector"
)

// Claims names the claim path of each field of an Identity. Empty fields
// take the standard claims (OIDC Core §5.1, and the common "groups").
type Claims struct {
	Username      string
	Email         string
	EmailVerified string
	Name          string
	Groups        string
}

func (c Claims) withDefaults() Claims {
	def := func(v, d string) string {
		if v == "" {
			return d
		}
		return v
	}
	return Claims{
		Username:      def(c.Username, "preferred_username"),
		Email:         def(c.Email, "email"),
		EmailVerified: def(c.EmailVerified, "email_verified"),
		Name:          def(c.Name, "name"),
		Groups:        def(c.Groups, "groups"),
	}
}

// Config is one upstream OpenID Connect provider.
type Config struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	// RedirectURL is Latch's callback, ISSUER/login/ID/callback.
	RedirectURL string
	// Scopes asked for; openid is added when missing. With
	// offline_access granted, the upstream's refresh token is kept so
	// that Refresh can ask the upstream about the person again.
	Scopes []string
	Claims Claims
	// UserInfo also reads the upstream's userinfo endpoint, for
	// providers that put little in the ID token.
	UserInfo bool
	// Prompt is passed upstream as OIDC's prompt ("login", "consent",
	// "select_account"); empty sends none.
	Prompt string
	Rules  connector.Rules
	// Timeout bounds each call to the upstream (default 10 s).
	Timeout time.Duration
}

// Connector signs people in at an upstream OpenID Connect provider.
type Connector struct {
	cfg    Config
	client *http.Client

	// The provider is discovered on first use, not at construction: an
	// upstream that is down at start must not stop Latch, and a failed
	// discovery is tried again at the next sign-in.
	mu       sync.Mutex
	provider *gooidc.Provider
}

var (
	_ connector.RedirectConnector = (*Connector)(nil)
	_ connector.Refresher         = (*Connector)(nil)
)

// New makes the connector; it does not call the upstream yet.
func New(cfg Config) (*Connector, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" || cfg.RedirectURL == "" {
		return nil, errors.New("oidc connector: issuer, client_id and the redirect URL are required")
	}
	if !slices.Contains(cfg.Scopes, gooidc.ScopeOpenID) {
		cfg.Scopes = append([]string{gooidc.ScopeOpenID}, cfg.Scopes...)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	cfg.Claims = cfg.Claims.withDefaults()
	return &Connector{cfg: cfg, client: connector.NewHTTPClient(cfg.Timeout)}, nil
}

func (c *Connector) ctx(ctx context.Context) context.Context {
	return gooidc.ClientContext(ctx, c.client)
}

// discover returns the provider, discovering it first when needed.
func (c *Connector) discover(ctx context.Context) (*gooidc.Provider, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.provider != nil {
		return c.provider, nil
	}
	// The provider's key set outlives this request (go-oidc detaches it
	// from cancellation); the client travels in the context.
	p, err := gooidc.NewProvider(c.ctx(ctx), c.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc connector: discovery at %s: %w", c.cfg.Issuer, err)
	}
	c.provider = p
	return p, nil
}

func (c *Connector) oauth2Config(p *gooidc.Provider) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     c.cfg.ClientID,
		ClientSecret: c.cfg.ClientSecret,
		Endpoint:     p.Endpoint(),
		RedirectURL:  c.cfg.RedirectURL,
		Scopes:       c.cfg.Scopes,
	}
}

// LoginURL is the upstream's authorization endpoint with Latch's state,
// nonce and PKCE challenge. It needs the discovery document, so it may
// call the upstream.
func (c *Connector) LoginURL(state, nonce, pkceVerifier string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
	defer cancel()
	p, err := c.discover(ctx)
	if err != nil {
		return "", err
	}
	opts := []oauth2.AuthCodeOption{gooidc.Nonce(nonce), oauth2.S256ChallengeOption(pkceVerifier)}
	if c.cfg.Prompt != "" {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", c.cfg.Prompt))
	}
	return c.oauth2Config(p).AuthCodeURL(state, opts...), nil
}

// HandleCallback redeems the code (with the PKCE verifier), verifies the
// ID token and its nonce, and maps its claims (and the userinfo's, when
// configured) to an Identity.
func (c *Connector) HandleCallback(ctx context.Context, r *http.Request, nonce, pkceVerifier string) (connector.Identity, error) {
	q := r.URL.Query()
	if iss := q.Get("iss"); iss != "" && iss != c.cfg.Issuer {
		// RFC 9207 §2.4: an answer naming another issuer is a mix-up.
		return connector.Identity{}, fmt.Errorf("%w: the answer names the issuer %q", connector.ErrMisdirected, iss)
	}
	if code := q.Get("error"); code != "" {
		return connector.Identity{}, &connector.UpstreamError{Code: code, Description: q.Get("error_description")}
	}
	code := q.Get("code")
	if code == "" {
		return connector.Identity{}, &connector.UpstreamError{Code: "invalid_request", Description: "the callback carries no code"}
	}
	p, err := c.discover(ctx)
	if err != nil {
		return connector.Identity{}, err
	}
	tok, err := c.oauth2Config(p).Exchange(c.ctx(ctx), code, oauth2.VerifierOption(pkceVerifier))
	if err != nil {
		return connector.Identity{}, fmt.Errorf("oidc connector: redeem the code: %w", err)
	}
	claims, err := c.verify(ctx, p, tok)
	if err != nil {
		return connector.Identity{}, err
	}
	got, _ := claims["nonce"].(string)
	if subtle.ConstantTimeCompare([]byte(got), []byte(nonce)) != 1 {
		return connector.Identity{}, fmt.Errorf("%w: the ID token's nonce is not this sign-in's", connector.ErrMisdirected)
	}
	return c.identity(ctx, p, tok, claims)
}

// verify checks the ID token of tok and returns its claims.
func (c *Connector) verify(ctx context.Context, p *gooidc.Provider, tok *oauth2.Token) (map[string]any, error) {
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return nil, errors.New("oidc connector: the token response has no ID token")
	}
	idt, err := p.Verifier(&gooidc.Config{ClientID: c.cfg.ClientID}).Verify(c.ctx(ctx), raw)
	if err != nil {
		return nil, fmt.Errorf("oidc connector: the ID token does not verify: %w", err)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return nil, fmt.Errorf("oidc connector: ID token claims: %w", err)
	}
	return claims, nil
}

// identity maps claims (and the userinfo's, when configured) to an
// Identity and checks the allow rules.
func (c *Connector) identity(ctx context.Context, p *gooidc.Provider, tok *oauth2.Token, claims map[string]any) (connector.Identity, error) {
	if c.cfg.UserInfo {
		ui, err := p.UserInfo(c.ctx(ctx), oauth2.StaticTokenSource(tok))
		if err != nil {
			return connector.Identity{}, fmt.Errorf("oidc connector: userinfo: %w", err)
		}
		if ui.Subject != claims["sub"] {
			// OIDC Core §5.3.2: the userinfo must be the ID token's person.
			return connector.Identity{}, fmt.Errorf("%w: the userinfo's sub differs from the ID token's", connector.ErrMisdirected)
		}
		var extra map[string]any
		if err := ui.Claims(&extra); err != nil {
			return connector.Identity{}, fmt.Errorf("oidc connector: userinfo claims: %w", err)
		}
		for k, v := range extra {
			claims[k] = v
		}
	}
	m := c.cfg.Claims
	id := connector.Identity{
		Subject:       connector.String(claims, "sub"),
		Username:      connector.String(claims, m.Username),
		Email:         connector.String(claims, m.Email),
		EmailVerified: connector.Bool(claims, m.EmailVerified),
		Name:          connector.String(claims, m.Name),
		Groups:        connector.Strings(claims, m.Groups),
	}
	if id.Subject == "" {
		return connector.Identity{}, errors.New("oidc connector: the ID token has no sub")
	}
	if err := c.cfg.Rules.Check(id); err != nil {
		return connector.Identity{}, err
	}
	if tok.RefreshToken != "" {
		data, err := json.Marshal(refreshData{RefreshToken: tok.RefreshToken})
		if err != nil {
			return connector.Identity{}, err
		}
		id.Data = data
	}
	return id, nil
}

// refreshData is what Identity.Data holds: the upstream's refresh token.
type refreshData struct {
	RefreshToken string `json:"refresh_token"`
}

// Refresh asks the upstream about the person again with the refresh token
// kept at sign-in: a refresh the upstream refuses with invalid_grant (the
// person deleted or disabled, the grant revoked) is connector.ErrGone.
// Without a kept refresh token (offline_access not granted) there is
// nothing to ask, and the person is taken as still there.
func (c *Connector) Refresh(ctx context.Context, id connector.Identity) (connector.Identity, error) {
	var d refreshData
	if len(id.Data) == 0 || json.Unmarshal(id.Data, &d) != nil || d.RefreshToken == "" {
		return id, nil
	}
	p, err := c.discover(ctx)
	if err != nil {
		return connector.Identity{}, err
	}
	tok, err := c.oauth2Config(p).TokenSource(c.ctx(ctx), &oauth2.Token{RefreshToken: d.RefreshToken}).Token()
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
		return connector.Identity{}, connector.ErrGone
	}
	if err != nil {
		return connector.Identity{}, fmt.Errorf("oidc connector: refresh: %w", err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		// No new ID token: what sign-in said stands, with the new
		// refresh token (a rotating upstream sends one).
		if err := c.cfg.Rules.Check(id); err != nil {
			return connector.Identity{}, err
		}
		id.Data, err = json.Marshal(refreshData{RefreshToken: tok.RefreshToken})
		return id, err
	}
	claims, err := c.verify(ctx, p, tok)
	if err != nil {
		return connector.Identity{}, err
	}
	if connector.String(claims, "sub") != id.Subject {
		return connector.Identity{}, fmt.Errorf("%w: the refreshed ID token names another person", connector.ErrMisdirected)
	}
	return c.identity(ctx, p, tok, claims)
}
