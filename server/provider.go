package server

import (
	"context"
	"crypto/sha256"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/hmac"
)

// newProvider is the one place fosite is composed: a fresh *fosite.Config,
// the HMAC strategy keyed by the system secret, and each grant's handler
// named explicitly (no ComposeAllEnabled).
func newProvider(cfg Config) *fosite.Fosite {
	// fosite uses the first 32 bytes of GlobalSecret; hashing a longer
	// configured secret keeps all of its entropy.
	key := sha256.Sum256(cfg.SystemSecret)
	fc := &fosite.Config{
		AccessTokenLifespan:         cfg.AccessTokenLifespan,
		RefreshTokenLifespan:        cfg.RefreshTokenLifespan,
		AuthorizeCodeLifespan:       cfg.AuthorizeCodeLifespan,
		IDTokenLifespan:             cfg.IDTokenLifespan,
		IDTokenIssuer:               cfg.Issuer,
		AccessTokenIssuer:           cfg.Issuer,
		TokenURL:                    cfg.Issuer + pathToken,
		GlobalSecret:                key[:],
		ClientSecretsHasher:         cfg.Hasher,
		ScopeStrategy:               fosite.ExactScopeStrategy,
		AudienceMatchingStrategy:    fosite.DefaultAudienceMatchingStrategy,
		EnforcePKCEForPublicClients: true,
		SendDebugMessagesToClients:  false,
		// Refresh tokens are issued only when offline_access was granted.
		RefreshTokenScopes: []string{"offline_access"},
	}
	strategy := oauth2.NewHMACSHAStrategy(&hmac.HMACStrategy{Config: fc}, fc)
	store := cfg.Store

	helper := &oauth2.HandleHelper{AccessTokenStrategy: strategy, AccessTokenStorage: store, Config: fc}
	fc.TokenEndpointHandlers.Append(grantListed{&oauth2.ClientCredentialsGrantHandler{HandleHelper: helper, Config: fc}, "client_credentials"})
	fc.TokenEndpointHandlers.Append(&oauth2.RefreshTokenGrantHandler{
		AccessTokenStrategy:    strategy,
		RefreshTokenStrategy:   strategy,
		TokenRevocationStorage: store,
		Config:                 fc,
	})
	fc.TokenIntrospectionHandlers.Append(&oauth2.CoreValidator{CoreStrategy: strategy, CoreStorage: store, Config: fc})
	fc.RevocationHandlers.Append(&oauth2.TokenRevocationHandler{
		TokenRevocationStorage: store,
		AccessTokenStrategy:    strategy,
		RefreshTokenStrategy:   strategy,
	})
	return compose.Compose(fc, store, strategy).(*fosite.Fosite)
}

// newSession is the session every request starts with and every stored
// request is decoded into.
func newSession() *openid.DefaultSession {
	return openid.NewDefaultSession()
}

// grantListed refuses a grant the authenticated client does not list with
// unauthorized_client before its handler looks at the request. fosite's
// client_credentials handler checks the list only after refusing public
// clients with invalid_grant, and SPEC wants unauthorized_client for every
// grant a client may not use.
type grantListed struct {
	fosite.TokenEndpointHandler
	grant string
}

func (g grantListed) HandleTokenEndpointRequest(ctx context.Context, ar fosite.AccessRequester) error {
	if g.CanHandleTokenEndpointRequest(ctx, ar) && !ar.GetClient().GetGrantTypes().Has(g.grant) {
		return fosite.ErrUnauthorizedClient.WithHintf("The client is not allowed to use the grant '%s'.", g.grant)
	}
	return g.TokenEndpointHandler.HandleTokenEndpointRequest(ctx, ar)
}
