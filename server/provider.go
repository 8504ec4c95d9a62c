package server

import (
	"context"
	"crypto/sha256"
	"html/template"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/par"
	"github.com/ory/fosite/handler/pkce"
	"github.com/ory/fosite/token/hmac"
	"github.com/ory/fosite/token/jwt"

	"github.com/latchauth/latch/storage"
	"github.com/latchauth/latch/users"
)

// parRequestURIPrefix is RFC 9126's request_uri scheme.
const parRequestURIPrefix = "urn:ietf:params:oauth:request_uri:"

// newProvider is the one place fosite is composed: a fresh *fosite.Config,
// the HMAC strategy keyed by the system secret, the OpenID Connect strategy
// signing with the stored keys, and each handler named explicitly (no
// ComposeAllEnabled).
//
// It also returns the device grant, whose token strategy and ID token
// helper the fixture helpers (dev.go) mint with.
func newProvider(cfg Config, signer jwt.Signer, formPost *template.Template, checkPassword passwordCheck, checkUpstream upstreamCheck) (*fosite.Fosite, *deviceGrant) {
	// fosite uses the first 32 bytes of GlobalSecret; hashing a longer
	// configured secret keeps all of its entropy.
	key := sha256.Sum256(cfg.SystemSecret)
	fc := &fosite.Config{
		AccessTokenLifespan:            cfg.AccessTokenLifespan,
		RefreshTokenLifespan:           cfg.RefreshTokenLifespan,
		AuthorizeCodeLifespan:          cfg.AuthorizeCodeLifespan,
		IDTokenLifespan:                cfg.IDTokenLifespan,
		IDTokenIssuer:                  cfg.Issuer,
		AccessTokenIssuer:              cfg.Issuer,
		TokenURL:                       cfg.Issuer + pathToken,
		GlobalSecret:                   key[:],
		ClientSecretsHasher:            cfg.Hasher,
		ScopeStrategy:                  fosite.ExactScopeStrategy,
		AudienceMatchingStrategy:       fosite.DefaultAudienceMatchingStrategy,
		EnforcePKCEForPublicClients:    true,
		EnablePKCEPlainChallengeMethod: false,
		SendDebugMessagesToClients:     false,
		// Refresh tokens are issued only when offline_access was granted.
		RefreshTokenScopes:              []string{"offline_access"},
		PushedAuthorizeRequestURIPrefix: parRequestURIPrefix,
		PushedAuthorizeContextLifespan:  90 * time.Second,
		// RFC 7523 (rfc7523.go): the client authenticates and lists the
		// grant; assertions need jti, iat and exp at most this far ahead.
		GrantTypeJWTBearerMaxDuration: jwtBearerMaxLifetime,
		// Our styled page with a CSP-hashed script (formPostHeaders),
		// not fosite's unstyled one with an inline onload handler.
		FormPostHTMLTemplate: formPost,
	}
	strategy := newTokenStrategy(oauth2.NewHMACSHAStrategy(&hmac.HMACStrategy{Config: fc}, fc), signer, cfg.Issuer, cfg.AccessTokenFormat)
	strategy.userClaims = cfg.DevMode
	idTokens := &openid.DefaultStrategy{Signer: signer, Config: fc}
	idHelper := &openid.IDTokenHandleHelper{IDTokenStrategy: idTokens}
	store := cfg.Store

	// Authorization code grant, with PKCE and OpenID Connect on top.
	explicit := &oauth2.AuthorizeExplicitGrantHandler{
		AccessTokenStrategy:    strategy,
		RefreshTokenStrategy:   strategy,
		AuthorizeCodeStrategy:  strategy,
		CoreStorage:            store,
		TokenRevocationStorage: store,
		Config:                 fc,
	}
	fc.AuthorizeEndpointHandlers.Append(explicit)
	fc.AuthorizeEndpointHandlers.Append(&pkce.Handler{AuthorizeCodeStrategy: strategy, Storage: store, Config: fc})
	oidcExplicit := &openid.OpenIDConnectExplicitHandler{
		OpenIDConnectRequestStorage:   store,
		IDTokenHandleHelper:           idHelper,
		OpenIDConnectRequestValidator: openid.NewOpenIDConnectRequestValidator(signer, fc),
		Config:                        fc,
	}
	fc.AuthorizeEndpointHandlers.Append(oidcExplicit)
	fc.PushedAuthorizeEndpointHandlers.Append(&par.PushedAuthorizeHandler{Storage: store, Config: fc})

	// The token endpoint: the handlers above that also redeem codes (the
	// code grant itself used once under concurrency, singleuse.go), then
	// the grants of the token endpoint alone.
	for _, h := range fc.AuthorizeEndpointHandlers {
		if h == fosite.AuthorizeEndpointHandler(explicit) {
			fc.TokenEndpointHandlers.Append(codeOnce{explicit})
		} else if th, ok := h.(fosite.TokenEndpointHandler); ok {
			fc.TokenEndpointHandlers.Append(th)
		}
	}
	helper := &oauth2.HandleHelper{AccessTokenStrategy: strategy, AccessTokenStorage: store, Config: fc}
	fc.TokenEndpointHandlers.Append(grantListed{&oauth2.ClientCredentialsGrantHandler{HandleHelper: helper, Config: fc}, "client_credentials"})
	jwtBearer := newJWTBearerGrant(store, helper, fc)
	fc.TokenEndpointHandlers.Append(jwtBearer)
	// RFC 8693 token exchange (tokenexchange.go): fosite has no handler;
	// trusted-issuer subject tokens pass the JWT bearer grant's checks.
	fc.TokenEndpointHandlers.Append(newTokenExchangeGrant(store, strategy, signer, jwtBearer, fc, cfg.Issuer))
	// RFC 6749 §4.3 for clients that list it (password.go).
	// fosite's handler refuses a client that does not list it before it
	// checks the password. (Not in grantListed: Append keeps one handler
	// of each type.) fosite marks the handler deprecated only to discourage
	// the grant; Latch offers it solely to clients that list it.
	//lint:ignore SA1019 the password grant is opt-in per client (README)
	fc.TokenEndpointHandlers.Append(passwordGrant{&oauth2.ResourceOwnerPasswordCredentialsGrantHandler{
		HandleHelper: helper, ResourceOwnerPasswordCredentialsGrantStorage: passwordStorage{store, checkPassword},
		RefreshTokenStrategy: strategy, Config: fc,
	}})
	// private_key_jwt failures are 401 invalid_client, like every wrong
	// client authentication; client_secret_jwt is Latch's own.
	fc.ClientAuthenticationStrategy = clientAuthentication(fc, store, assertionAudiences(cfg.Issuer))
	// A grant from an upstream sign-in asks the upstream again at each
	// refresh (upstream_refresh.go).
	fc.TokenEndpointHandlers.Append(upstreamChecked{refreshOnce{refreshScopes{&oauth2.RefreshTokenGrantHandler{
		AccessTokenStrategy:    strategy,
		RefreshTokenStrategy:   strategy,
		TokenRevocationStorage: keepRefreshScope{store},
		Config:                 fc,
	}}}, checkUpstream})
	fc.TokenEndpointHandlers.Append(&openid.OpenIDConnectRefreshHandler{IDTokenHandleHelper: idHelper, Config: fc})
	// RFC 8628 device authorization grant (device.go): fosite has no handler.
	device := newDeviceGrant(cfg, fc, strategy, idHelper)
	fc.TokenEndpointHandlers.Append(device)
	for i, h := range fc.TokenEndpointHandlers {
		fc.TokenEndpointHandlers[i] = onlyItsGrant{h}
	}

	fc.TokenIntrospectionHandlers.Append(&oauth2.CoreValidator{CoreStrategy: strategy, CoreStorage: store, Config: fc})
	fc.RevocationHandlers.Append(&oauth2.TokenRevocationHandler{
		TokenRevocationStorage: store,
		AccessTokenStrategy:    strategy,
		RefreshTokenStrategy:   strategy,
	})
	return compose.Compose(fc, parOnce{store}, strategy).(*fosite.Fosite), device
}

// newSession is the session every request starts with and every stored
// request is decoded into.
func newSession() *openid.DefaultSession {
	return openid.NewDefaultSession()
}

// onlyItsGrant skips a handler's PopulateTokenEndpointResponse for a
// request it cannot handle. fosite asks every handler to populate every
// response, and each one that does not apply answers ErrUnknownRequest
// with a captured stack trace: a few percent of every token request, for
// nothing. Each handler's own check is CanHandleTokenEndpointRequest, so
// the answer is the same, minus the stack.
type onlyItsGrant struct {
	fosite.TokenEndpointHandler
}

func (h onlyItsGrant) PopulateTokenEndpointResponse(ctx context.Context, ar fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !h.CanHandleTokenEndpointRequest(ctx, ar) {
		return fosite.ErrUnknownRequest
	}
	return h.TokenEndpointHandler.PopulateTokenEndpointResponse(ctx, ar, resp)
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

// refreshScopes adds RFC 6749 §6's scope parameter to fosite's refresh
// grant, which ignores it: a refresh may narrow the granted scopes, never
// widen them. The new access token and ID token carry the narrowed scopes
// (and only the claims those scopes release); the new refresh token keeps
// the scopes and session of the old one, as §6 requires, through
// keepRefreshScope.
type refreshScopes struct {
	*oauth2.RefreshTokenGrantHandler
}

func (h refreshScopes) HandleTokenEndpointRequest(ctx context.Context, ar fosite.AccessRequester) error {
	if err := h.RefreshTokenGrantHandler.HandleTokenEndpointRequest(ctx, ar); err != nil {
		return err
	}
	raw := strings.TrimSpace(ar.GetRequestForm().Get("scope"))
	if raw == "" {
		return nil
	}
	granted := ar.GetGrantedScopes()
	narrowed := fosite.Arguments{}
	for _, scope := range fosite.RemoveEmpty(strings.Split(raw, " ")) {
		if !granted.Has(scope) {
			return fosite.ErrInvalidScope.WithHintf("The scope '%s' was not granted to the refresh token, so a refresh cannot add it.", scope)
		}
		narrowed = append(narrowed, scope)
	}
	req, ok := ar.(*fosite.AccessRequest)
	kept, okKept := ctx.Value(refreshScopeKey{}).(*refreshScope)
	if !ok || !okKept {
		return fosite.ErrServerError.WithDebug("refresh scope narrowing needs the token endpoint's context")
	}
	kept.scopes, kept.session = granted, ar.GetSession().Clone()
	req.GrantedScope = narrowed
	if sess, ok := oidcSession(ar.GetSession()); ok && sess.Claims != nil {
		sess.Claims.Extra = users.NarrowClaims(sess.Claims.Extra, narrowed)
	}
	return nil
}

// refreshScope carries, from a narrowing refresh to the store, what the
// new refresh token must keep.
type refreshScope struct {
	scopes  fosite.Arguments
	session fosite.Session
}

type refreshScopeKey struct{}

// withRefreshScope prepares ctx for one token request.
func withRefreshScope(ctx context.Context) context.Context {
	return context.WithValue(ctx, refreshScopeKey{}, &refreshScope{})
}

// keepRefreshScope is the refresh grant's store: a new refresh token is
// stored with the scopes and session of the grant, not the narrowed ones,
// and a reused refresh token is kept.
type keepRefreshScope struct {
	storage.Store
}

// DeleteRefreshTokenSession does nothing. fosite deletes a reused refresh
// token before it revokes the grant, which deactivates that token anyway;
// kept until it expires, the token still tells a later use why it fails
// (used or revoked) instead of "not valid".
func (keepRefreshScope) DeleteRefreshTokenSession(context.Context, string) error { return nil }

func (k keepRefreshScope) CreateRefreshTokenSession(ctx context.Context, signature, accessSignature string, r fosite.Requester) error {
	if g, ok := r.GetSession().(*grantSession); ok && g.Exchanged {
		// A refreshed exchanged grant stays revocable with the grant it
		// was exchanged from as long as its new refresh token lives.
		if x, ok := k.Store.(storage.ExchangedGrants); ok {
			if err := x.ExtendExchangedGrant(ctx, r.GetID(), g.GetExpiresAt(fosite.RefreshToken)); err != nil {
				return err
			}
		}
	}
	if kept, ok := ctx.Value(refreshScopeKey{}).(*refreshScope); ok && kept.scopes != nil {
		if req, ok := r.(*fosite.Request); ok {
			cp := *req
			cp.GrantedScope, cp.Session = kept.scopes, kept.session
			r = &cp
		}
	}
	return k.Store.CreateRefreshTokenSession(ctx, signature, accessSignature, r)
}
