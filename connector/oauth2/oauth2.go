// Package oauth2 is the connector to an upstream that speaks OAuth 2.0
// but not OpenID Connect: the code flow with PKCE and state against its
// authorization and token endpoints, then the person read from a user-info
// URL by claim paths. The github preset (github.go) knows GitHub's
// documented endpoints.
package oauth2

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchauth/latch/connector"
)

// Claims names the path, in the user-info JSON, of each field of an
// Identity; empty fields take the defaults below.
type Claims struct {
	Subject       string // default "sub", then "id"
	Username      string // default "preferred_username", then "login"
	Email         string // default "email"
	EmailVerified string // default "email_verified"
	Name          string // default "name"
	Groups        string // default "groups"
}

// Config is one upstream OAuth 2.0 provider.
type Config struct {
	AuthURL      string
	TokenURL     string
	UserInfoURL  string
	ClientID     string
	ClientSecret string
	// RedirectURL is Latch's callback, ISSUER/login/ID/callback.
	RedirectURL string
	Scopes      []string
	Claims      Claims
	Rules       connector.Rules
	// Timeout bounds each call to the upstream (default 10 s).
	Timeout time.Duration
}

// Connector signs people in at an upstream OAuth 2.0 provider.
type Connector struct {
	oauth  *oauth2.Config
	client *http.Client
	rules  connector.Rules
	// person reads who the token belongs to. It answers errUnauthorized
	// when the upstream refuses the token (401), which Refresh turns into
	// connector.ErrGone.
	person func(ctx context.Context, client *http.Client) (connector.Identity, error)
}

var (
	_ connector.RedirectConnector = (*Connector)(nil)
	_ connector.Refresher         = (*Connector)(nil)
)

// errUnauthorized: the upstream answered 401 to a request with the token.
var errUnauthorized = errors.New("oauth2 connector: the upstream refused the token (401)")

// New makes a generic OAuth 2.0 connector.
func New(cfg Config) (*Connector, error) {
	if cfg.AuthURL == "" || cfg.TokenURL == "" || cfg.UserInfoURL == "" || cfg.ClientID == "" || cfg.RedirectURL == "" {
		return nil, errors.New("oauth2 connector: auth_url, token_url, userinfo_url, client_id and the redirect URL are required")
	}
	c := newConnector(cfg.ClientID, cfg.ClientSecret, cfg.RedirectURL, cfg.AuthURL, cfg.TokenURL, cfg.Scopes, cfg.Rules, cfg.Timeout)
	m := cfg.Claims
	c.person = func(ctx context.Context, client *http.Client) (connector.Identity, error) {
		var claims map[string]any
		if err := getJSON(ctx, client, cfg.UserInfoURL, &claims); err != nil {
			return connector.Identity{}, err
		}
		return connector.Identity{
			Subject:       first(claims, m.Subject, "sub", "id"),
			Username:      first(claims, m.Username, "preferred_username", "login"),
			Email:         first(claims, m.Email, "email"),
			EmailVerified: connector.Bool(claims, or(m.EmailVerified, "email_verified")),
			Name:          first(claims, m.Name, "name"),
			Groups:        connector.Strings(claims, or(m.Groups, "groups")),
		}, nil
	}
	return c, nil
}

func newConnector(clientID, secret, redirect, authURL, tokenURL string, scopes []string, rules connector.Rules, timeout time.Duration) *Connector {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &Connector{
		oauth: &oauth2.Config{ClientID: clientID, ClientSecret: secret, RedirectURL: redirect, Scopes: scopes,
			Endpoint: oauth2.Endpoint{AuthURL: authURL, TokenURL: tokenURL}},
		client: connector.NewHTTPClient(timeout),
		rules:  rules,
	}
}

// first is the claim at path, or when path is empty the first of the
// defaults that is set.
func first(claims map[string]any, path string, defaults ...string) string {
	if path != "" {
		return connector.String(claims, path)
	}
	for _, d := range defaults {
		if v := connector.String(claims, d); v != "" {
			return v
		}
	}
	return ""
}

func or(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

func (c *Connector) ctx(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, c.client)
}

// LoginURL is the upstream's authorization endpoint with Latch's state and
// PKCE challenge. OAuth 2.0 has no nonce: state and PKCE bind the answer
// to the attempt.
func (c *Connector) LoginURL(state, _, pkceVerifier string) (string, error) {
	return c.oauth.AuthCodeURL(state, oauth2.S256ChallengeOption(pkceVerifier)), nil
}

// HandleCallback redeems the code and reads the person with the token.
func (c *Connector) HandleCallback(ctx context.Context, r *http.Request, _, pkceVerifier string) (connector.Identity, error) {
	q := r.URL.Query()
	if code := q.Get("error"); code != "" {
		return connector.Identity{}, &connector.UpstreamError{Code: code, Description: q.Get("error_description")}
	}
	if q.Get("code") == "" {
		return connector.Identity{}, &connector.UpstreamError{Code: "invalid_request", Description: "the callback carries no code"}
	}
	tok, err := c.oauth.Exchange(c.ctx(ctx), q.Get("code"), oauth2.VerifierOption(pkceVerifier))
	if err != nil {
		return connector.Identity{}, fmt.Errorf("oauth2 connector: redeem the code: %w", err)
	}
	return c.identity(ctx, tok)
}

// identity reads the person with tok, checks the rules, and keeps tok in
// Data for Refresh.
func (c *Connector) identity(ctx context.Context, tok *oauth2.Token) (connector.Identity, error) {
	id, err := c.person(ctx, c.oauth.Client(c.ctx(ctx), tok))
	if err != nil {
		return connector.Identity{}, err
	}
	if id.Subject == "" {
		return connector.Identity{}, errors.New("oauth2 connector: the user info names no subject")
	}
	if err := c.rules.Check(id); err != nil {
		return connector.Identity{}, err
	}
	if id.Data, err = json.Marshal(tok); err != nil {
		return connector.Identity{}, err
	}
	return id, nil
}

// Refresh reads the person again with the token kept at sign-in (renewed
// with its refresh token when it has expired and the upstream issued
// one). A token the upstream refuses, with 401 or invalid_grant, means the
// person revoked Latch or is gone: connector.ErrGone.
func (c *Connector) Refresh(ctx context.Context, id connector.Identity) (connector.Identity, error) {
	var tok oauth2.Token
	if len(id.Data) == 0 || json.Unmarshal(id.Data, &tok) != nil || tok.AccessToken == "" {
		return connector.Identity{}, connector.ErrGone
	}
	fresh, err := c.oauth.TokenSource(c.ctx(ctx), &tok).Token()
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
		return connector.Identity{}, connector.ErrGone
	}
	if err != nil {
		return connector.Identity{}, fmt.Errorf("oauth2 connector: refresh: %w", err)
	}
	got, err := c.identity(ctx, fresh)
	if errors.Is(err, errUnauthorized) {
		return connector.Identity{}, connector.ErrGone
	}
	if err != nil {
		return connector.Identity{}, err
	}
	if got.Subject != id.Subject {
		return connector.Identity{}, fmt.Errorf("%w: the token now names another person", connector.ErrMisdirected)
	}
	return got, nil
}

// getJSON GETs url with client (which adds the token) into v.
func getJSON(ctx context.Context, client *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("oauth2 connector: GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return errUnauthorized
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("oauth2 connector: GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("oauth2 connector: GET %s: %w", url, err)
	}
	return nil
}
