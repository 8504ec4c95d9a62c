package latchtest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ory/fosite"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/server"
	"github.com/latchauth/latch/users"
)

// IssueOptions says what IssueToken mints.
type IssueOptions struct {
	// ClientID is the client the tokens are issued to (default: the
	// confidential client).
	ClientID string
	// Subject is the user the tokens are for: a user of the server gets
	// their profile claims, any other subject only sub. Empty: the client
	// itself, as with client_credentials.
	Subject string
	// Scopes and Audience must be registered for the client, as at the
	// token endpoint.
	Scopes   []string
	Audience []string
	// Extra claims of the ID token (not the protocol claims: sub, iss,
	// aud, exp, ...).
	Extra map[string]any
	// Nonce of the ID token.
	Nonce string
	// Refresh asks for a refresh token (adds offline_access; the client
	// needs the refresh_token grant), IDToken for an ID token (adds
	// openid; needs a Subject), in the token's Extra("id_token").
	Refresh bool
	IDToken bool
	// Lifespan of the access token (default: the server's, 1h).
	Lifespan time.Duration
}

// IssueToken mints tokens as the token endpoint would after such a grant,
// and stores them as a real flow does: they introspect, refresh, revoke
// and expire like any other.
func (s *Server) IssueToken(o IssueOptions) (*oauth2.Token, error) {
	if o.ClientID == "" {
		o.ClientID = s.confidential.ID
	}
	issued, err := s.in.Server.IssueTokens(context.Background(), server.TokenRequest{
		ClientID: o.ClientID, Subject: o.Subject, Scopes: o.Scopes, Audience: o.Audience, Claims: o.Extra,
		Nonce: o.Nonce, Refresh: o.Refresh, IDToken: o.IDToken, Lifespan: o.Lifespan,
	})
	if err != nil {
		return nil, fmt.Errorf("latchtest: issue token: %w", describe(err))
	}
	tok := &oauth2.Token{
		AccessToken:  issued.AccessToken,
		TokenType:    issued.TokenType,
		RefreshToken: issued.RefreshToken,
		ExpiresIn:    issued.ExpiresIn,
		Expiry:       time.Now().Add(time.Duration(issued.ExpiresIn) * time.Second),
	}
	extra := map[string]any{"scope": issued.Scope}
	if issued.IDToken != "" {
		extra["id_token"] = issued.IDToken
	}
	return tok.WithExtra(extra), nil
}

// Expire makes an access token, refresh token, authorization code or
// device code expire now: introspection answers inactive, and using it
// fails as an expired one does.
func (s *Server) Expire(token string) error {
	if err := s.in.Server.ExpireToken(context.Background(), token); err != nil {
		if errors.Is(err, fosite.ErrNotFound) {
			return errors.New("latchtest: expire: no token, code or device code has that value")
		}
		return fmt.Errorf("latchtest: expire: %w", err)
	}
	return nil
}

// FailNext makes the next n requests to endpoint (a path such as
// "/oauth2/token", or a URL of the server) answer status with a JSON OAuth
// error, {"error": oauthError, ...}, as for a retry test. Calls for one
// endpoint queue up. It panics on a status outside 400-599, n < 1 or an
// empty oauthError.
func (s *Server) FailNext(endpoint string, n, status int, oauthError string) {
	if err := s.faults.Add(server.Failure{Path: endpoint, N: n, Status: status, Error: oauthError}); err != nil {
		panic("latchtest: FailNext: " + err.Error())
	}
}

// AddClient registers c, validated as the admin API does. A confidential
// client with an empty secret gets a generated one; a chosen secret is
// hashed with argon2id (tens of milliseconds).
func (s *Server) AddClient(c clients.Client, secret string) (Client, error) {
	return s.addClient(context.Background(), c, secret)
}

func (s *Server) addClient(ctx context.Context, c clients.Client, secret string) (Client, error) {
	secret, err := s.in.Clients.Create(ctx, &c, secret)
	if err != nil {
		return Client{}, fmt.Errorf("latchtest: add client %s: %w", c.ID, err)
	}
	s.mu.Lock()
	s.secrets[c.ID] = secret
	s.mu.Unlock()
	out := Client{ID: c.ID, Secret: secret, Scopes: c.Scopes}
	if len(c.RedirectURIs) > 0 {
		out.RedirectURI = c.RedirectURIs[0]
	}
	return out, nil
}

// AddUser adds or replaces a user, as config.yaml's users are seeded.
func (s *Server) AddUser(u User) error {
	err := users.Seed(context.Background(), s.in.Store, []config.User{{
		Username: u.Username, Password: u.Password, Email: u.Email, EmailVerified: u.EmailVerified,
		Name: u.Name, Groups: u.Groups, Claims: u.Claims,
	}})
	if err != nil {
		return fmt.Errorf("latchtest: add user: %w", err)
	}
	return nil
}

// Endpoint is the server's authorization and token endpoint.
func (s *Server) Endpoint() oauth2.Endpoint {
	return oauth2.Endpoint{AuthURL: s.issuer + "/oauth2/auth", TokenURL: s.issuer + "/oauth2/token"}
}

// OAuth2Config is the golang.org/x/oauth2 configuration of c for the
// authorization code flow, asking for scopes.
func (s *Server) OAuth2Config(c Client, scopes ...string) *oauth2.Config {
	ep := s.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInHeader
	if c.Secret == "" {
		ep.AuthStyle = oauth2.AuthStyleInParams
	}
	return &oauth2.Config{ClientID: c.ID, ClientSecret: c.Secret, Endpoint: ep, RedirectURL: c.RedirectURI, Scopes: scopes}
}

// ClientCredentials is the golang.org/x/oauth2/clientcredentials
// configuration of c, asking for scopes.
func (s *Server) ClientCredentials(c Client, scopes ...string) *clientcredentials.Config {
	return &clientcredentials.Config{
		ClientID: c.ID, ClientSecret: c.Secret, TokenURL: s.Endpoint().TokenURL, Scopes: scopes,
		AuthStyle: oauth2.AuthStyleInHeader,
	}
}

// describe turns a fosite error into one that says what was wrong.
func describe(err error) error {
	var rfc *fosite.RFC6749Error
	if errors.As(err, &rfc) {
		return fmt.Errorf("%s: %s", rfc.ErrorField, rfc.GetDescription())
	}
	return err
}
