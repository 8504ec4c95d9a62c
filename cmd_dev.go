package main

import (
	"context"
	"fmt"

	"github.com/latchauth/latch/clients"
)

// The demo client of --dev has a fixed, published secret so the README's
// walk-through works verbatim. --dev keeps everything in memory; this
// client exists nowhere else.
const (
	demoClientID     = "demo-client"
	demoClientSecret = "demo-secret"
)

func (c *cli) createDemoClients(ctx context.Context, mgr *clients.Manager, issuer string) error {
	demo := &clients.Client{
		ID:                      demoClientID,
		Name:                    "Demo client",
		GrantTypes:              []string{clients.GrantClientCredentials},
		Scopes:                  []string{"read", "write"},
		TokenEndpointAuthMethod: clients.AuthMethodBasic,
	}
	if _, err := mgr.Create(ctx, demo, demoClientSecret); err != nil {
		return fmt.Errorf("dev: demo client: %w", err)
	}
	fmt.Fprintf(c.stdout, `dev mode: in-memory database, nothing is kept; the demo credentials below are public.
demo client (client_credentials, client_secret_basic, scopes read write):
  client_id:     %s
  client_secret: %s
get a token:
  curl -s -u %s:%s -d grant_type=client_credentials -d scope=read %s/oauth2/token
`, demoClientID, demoClientSecret, demoClientID, demoClientSecret, issuer)
	return nil
}
