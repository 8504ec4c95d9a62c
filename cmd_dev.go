package main

import (
	"context"
	"fmt"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/storage"
	"github.com/latchauth/latch/users"
)

// The demo client and user of --dev have fixed, published credentials so
// the README's walk-throughs work verbatim. --dev keeps everything in
// memory; they exist nowhere else.
const (
	demoClientID     = "demo-client"
	demoClientSecret = "demo-secret"
	demoWebClientID  = "demo-web"
	demoSPAClientID  = "demo-spa"
	demoDeviceID     = "demo-device"
	demoRedirectURI  = "http://127.0.0.1:5555/callback"
	demoUsername     = "alice"
	demoPassword     = "alice-password"
)

func (c *cli) createDemoClients(ctx context.Context, mgr *clients.Manager, st storage.Store, issuer string) error {
	demo := []struct {
		client *clients.Client
		secret string
	}{
		{&clients.Client{
			ID:                      demoClientID,
			Name:                    "Demo service",
			GrantTypes:              []string{clients.GrantClientCredentials},
			Scopes:                  []string{"read", "write"},
			TokenEndpointAuthMethod: clients.AuthMethodBasic,
		}, demoClientSecret},
		{&clients.Client{
			ID:                      demoWebClientID,
			Name:                    "Demo web app",
			GrantTypes:              []string{clients.GrantAuthorizationCode, clients.GrantRefreshToken},
			ResponseTypes:           []string{"code"},
			RedirectURIs:            []string{demoRedirectURI},
			PostLogoutRedirectURIs:  []string{"http://127.0.0.1:5555/"},
			Scopes:                  []string{"openid", "profile", "email", "groups", "offline_access"},
			TokenEndpointAuthMethod: clients.AuthMethodBasic,
		}, demoClientSecret},
		{&clients.Client{
			ID:                      demoSPAClientID,
			Name:                    "Demo single-page app",
			GrantTypes:              []string{clients.GrantAuthorizationCode, clients.GrantRefreshToken},
			ResponseTypes:           []string{"code"},
			RedirectURIs:            []string{demoRedirectURI},
			PostLogoutRedirectURIs:  []string{"http://127.0.0.1:5555/"},
			Scopes:                  []string{"openid", "profile", "email", "groups", "offline_access"},
			TokenEndpointAuthMethod: clients.AuthMethodNone,
		}, ""},
		{&clients.Client{
			ID:                      demoDeviceID,
			Name:                    "Demo device",
			GrantTypes:              []string{clients.GrantDeviceCode, clients.GrantRefreshToken},
			Scopes:                  []string{"openid", "profile", "offline_access"},
			TokenEndpointAuthMethod: clients.AuthMethodNone,
		}, ""},
	}
	for _, d := range demo {
		if _, err := mgr.Create(ctx, d.client, d.secret); err != nil {
			return fmt.Errorf("dev: demo client %s: %w", d.client.ID, err)
		}
	}
	err := users.Seed(ctx, st, []config.User{{
		Username: demoUsername, Password: demoPassword, Email: "alice@example.com", EmailVerified: true,
		Name: "Alice Example", Groups: []string{"admins"},
	}})
	if err != nil {
		return fmt.Errorf("dev: demo user: %w", err)
	}
	fmt.Fprintf(c.stdout, `dev mode: in-memory database, nothing is kept; the demo credentials below are public.
demo user:    %s / %s
demo clients:
  %-12s secret %-12s client_credentials (scopes read write)
  %-12s secret %-12s authorization_code + refresh_token, redirect %s
  %-12s public (PKCE)        authorization_code + refresh_token, redirect %s
  %-12s public               device_code + refresh_token (scopes openid profile offline_access)
get a token:
  curl -s -u %s:%s -d grant_type=client_credentials -d scope=read %s/oauth2/token
sign in with a browser:
  %s/oauth2/auth?response_type=code&client_id=%s&redirect_uri=%s&scope=openid+profile+email&state=xyz12345&nonce=n0nce1234
connect a device (then open verification_uri_complete in a browser):
  curl -s -d client_id=%s -d scope='openid profile offline_access' %s/oauth2/device/auth
`, demoUsername, demoPassword,
		demoClientID, demoClientSecret, demoWebClientID, demoClientSecret, demoRedirectURI, demoSPAClientID, demoRedirectURI,
		demoDeviceID,
		demoClientID, demoClientSecret, issuer,
		issuer, demoWebClientID, demoRedirectURI,
		demoDeviceID, issuer)
	return nil
}
