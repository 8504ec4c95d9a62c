package server

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/token/jwt"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/storage"
	"github.com/latchauth/latch/users"
)

// OAuth 2.0 Token Exchange (RFC 8693): a confidential client hands in a
// token it holds (subject_token), and optionally one that stands for
// itself (actor_token), and gets a new token for the targets its policy
// (clients.TokenExchangePolicy) allows. fosite v0.49 has no handler for
// it; this one is composed in provider.go like the others.

// Token type identifiers of RFC 8693 §3.
const (
	tokenTypeAccess  = "urn:ietf:params:oauth:token-type:access_token"
	tokenTypeRefresh = "urn:ietf:params:oauth:token-type:refresh_token"
	tokenTypeIDToken = "urn:ietf:params:oauth:token-type:id_token"
	tokenTypeJWT     = "urn:ietf:params:oauth:token-type:jwt"
	// tokenTypeNA is the token_type of an issued token that is not an
	// access token (§2.2.1).
	tokenTypeNA = "N_A"
)

const (
	// exchangeTokenMaxLen caps a subject or actor token: Latch's own
	// tokens are well under 2 KiB, and nothing longer is parsed.
	exchangeTokenMaxLen = 8 << 10
	// exchangeMaxTargets caps the audience and resource values of one
	// request.
	exchangeMaxTargets = 20
)

// exchangeSingleParams are the parameters RFC 8693 §2.1 defines once;
// RFC 6749 §3.2 forbids repeating them.
var exchangeSingleParams = []string{"subject_token", "subject_token_type", "actor_token", "actor_token_type", "requested_token_type", "scope"}

// tokenExchangeGrant is the token exchange handler. jwtBearer carries the
// RFC 7523 trust checks, which a subject or actor JWT from a trusted
// issuer passes exactly as a JWT bearer assertion would.
type tokenExchangeGrant struct {
	store     storage.Store
	links     storage.ExchangedGrants // nil: exchanged grants are not linked
	strategy  *tokenStrategy
	signer    jwt.Signer
	jwtBearer jwtBearerGrant
	fc        *fosite.Config
	issuer    string
}

var _ fosite.TokenEndpointHandler = (*tokenExchangeGrant)(nil)

func newTokenExchangeGrant(store storage.Store, strategy *tokenStrategy, signer jwt.Signer, jwtBearer jwtBearerGrant, fc *fosite.Config, issuer string) *tokenExchangeGrant {
	links, _ := store.(storage.ExchangedGrants)
	return &tokenExchangeGrant{store: store, links: links, strategy: strategy, signer: signer, jwtBearer: jwtBearer, fc: fc, issuer: issuer}
}

func (g *tokenExchangeGrant) CanHandleTokenEndpointRequest(_ context.Context, ar fosite.AccessRequester) bool {
	return ar.GetGrantTypes().ExactOne(clients.GrantTokenExchange)
}

// CanSkipClientAuth is false: only an authenticated client may exchange.
func (g *tokenExchangeGrant) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool {
	return false
}

// exchange is what HandleTokenEndpointRequest decided, for
// PopulateTokenEndpointResponse to issue. It rides on the request's
// session, which is the one object of a token request both see.
type exchange struct {
	requested string         // the requested token type
	subject   *exchangeToken // the subject token, as checked
}

// HandleTokenEndpointRequest checks the request per RFC 8693 §2.1 and the
// client's policy, and prepares the session of the token to issue.
func (g *tokenExchangeGrant) HandleTokenEndpointRequest(ctx context.Context, ar fosite.AccessRequester) error {
	if !g.CanHandleTokenEndpointRequest(ctx, ar) {
		return fosite.ErrUnknownRequest
	}
	client, policy, err := exchangeClient(ar.GetClient())
	if err != nil {
		return err
	}
	form := ar.GetRequestForm()
	if err := checkExchangeForm(form); err != nil {
		return err
	}
	requested, err := requestedTokenType(form.Get("requested_token_type"), client, policy)
	if err != nil {
		return err
	}
	targets, err := exchangeTargets(ar, form, policy)
	if err != nil {
		return err
	}
	// What can be refused without the tokens is refused before any is
	// checked: a trusted issuer's JWT would spend its jti on a request
	// bound to fail.
	if form.Get("actor_token") == "" && !policy.Impersonation {
		return fosite.ErrInvalidRequest.WithHint("The client may not impersonate: send an 'actor_token' for a delegation (token_exchange.impersonation is off for this client).")
	}
	if _, err := exchangeScopes(ctx, g.fc, ar.GetRequestedScopes(), client, ar.GetRequestedScopes()); err != nil {
		return err
	}
	subject, err := g.checkToken(ctx, client, "subject_token", form.Get("subject_token"), form.Get("subject_token_type"))
	if err != nil {
		return err
	}
	var actor *exchangeToken
	if form.Get("actor_token") != "" {
		if actor, err = g.checkToken(ctx, client, "actor_token", form.Get("actor_token"), form.Get("actor_token_type")); err != nil {
			return err
		}
	}
	scopes, err := exchangeScopes(ctx, g.fc, ar.GetRequestedScopes(), client, subject.scopes)
	if err != nil {
		return err
	}
	if requested == tokenTypeRefresh && !scopes.Has("offline_access") {
		return fosite.ErrInvalidScope.WithHint("A refresh token needs the scope 'offline_access', granted to the subject token and to the client.")
	}
	sess, ok := ar.GetSession().(*grantSession)
	req, okReq := ar.(*fosite.AccessRequest)
	if !ok || !okReq {
		return fosite.ErrServerError.WithDebug("the token exchange needs the token endpoint's grantSession and *fosite.AccessRequest")
	}
	req.SetID(newGrantID())
	req.GrantedScope, req.GrantedAudience = scopes, targets
	g.prepareSession(sess, subject, actor, scopes, requested)
	sess.exchange = &exchange{requested: requested, subject: subject}
	return nil
}

// exchangeClient is the client as a token exchange needs it: listing the
// grant, confidential, with a policy (clients.Validate makes the last two
// follow from the first; checked again for a store of another kind).
func exchangeClient(c fosite.Client) (*clients.Client, *clients.TokenExchangePolicy, error) {
	client, ok := c.(*clients.Client)
	if !ok || !client.GetGrantTypes().Has(clients.GrantTokenExchange) {
		return nil, nil, fosite.ErrUnauthorizedClient.WithHintf("The client is not allowed to use the grant '%s'.", clients.GrantTokenExchange)
	}
	if client.IsPublic() || client.TokenExchange == nil {
		return nil, nil, fosite.ErrUnauthorizedClient.WithHint("Token exchange is for confidential clients with a token exchange policy.")
	}
	return client, client.TokenExchange, nil
}

// checkExchangeForm checks the shape of the parameters of §2.1.
func checkExchangeForm(form url.Values) error {
	for _, p := range exchangeSingleParams {
		if len(form[p]) > 1 {
			return fosite.ErrInvalidRequest.WithHintf("The parameter '%s' is given more than once.", p)
		}
	}
	switch {
	case form.Get("subject_token") == "":
		return fosite.ErrInvalidRequest.WithHint("The 'subject_token' parameter is missing.")
	case form.Get("subject_token_type") == "":
		return fosite.ErrInvalidRequest.WithHint("The 'subject_token_type' parameter is missing.")
	case form.Get("actor_token") != "" && form.Get("actor_token_type") == "":
		return fosite.ErrInvalidRequest.WithHint("The 'actor_token_type' parameter is required with an 'actor_token'.")
	case form.Get("actor_token") == "" && form.Get("actor_token_type") != "":
		return fosite.ErrInvalidRequest.WithHint("The 'actor_token_type' parameter must not be sent without an 'actor_token'.")
	case len(form.Get("subject_token")) > exchangeTokenMaxLen || len(form.Get("actor_token")) > exchangeTokenMaxLen:
		return fosite.ErrInvalidRequest.WithHintf("A token longer than %d bytes is not one of this server's or its trusted issuers'.", exchangeTokenMaxLen)
	}
	return nil
}

// requestedTokenType is the token type to issue: an access token unless
// the request names another that Latch issues and the policy allows.
func requestedTokenType(raw string, client *clients.Client, policy *clients.TokenExchangePolicy) (string, error) {
	switch raw {
	case "", tokenTypeAccess:
		return tokenTypeAccess, nil
	case tokenTypeJWT, tokenTypeIDToken:
		return raw, nil
	case tokenTypeRefresh:
		if !policy.RefreshTokens || !client.GetGrantTypes().Has(clients.GrantRefreshToken) {
			return "", fosite.ErrInvalidRequest.WithHint("The client may not obtain a refresh token by token exchange (token_exchange.refresh_tokens and the refresh_token grant).")
		}
		return raw, nil
	}
	return "", fosite.ErrInvalidRequest.WithHintf("The 'requested_token_type' is not one this server issues: use %s, %s, %s or %s.",
		tokenTypeAccess, tokenTypeJWT, tokenTypeIDToken, tokenTypeRefresh)
}

// errInvalidTarget is RFC 8693 §2.2.2's invalid_target, which fosite does
// not define.
var errInvalidTarget = &fosite.RFC6749Error{ErrorField: "invalid_target", CodeField: http.StatusBadRequest,
	DescriptionField: "The requested target is not one this client may obtain a token for."}

// exchangeTargets are the audience and resource values of the request
// (§2.1), each of which the client's policy must list: otherwise
// invalid_target (§2.2.2). A resource must also be an absolute URI
// without a fragment (RFC 8707 §2, whose error is invalid_target too).
func exchangeTargets(ar fosite.AccessRequester, form url.Values, policy *clients.TokenExchangePolicy) (fosite.Arguments, error) {
	invalid := errInvalidTarget
	for _, res := range form["resource"] {
		if u, err := url.Parse(res); err != nil || !u.IsAbs() || u.Fragment != "" || strings.Contains(res, "#") {
			return nil, invalid.WithHintf("The 'resource' %q is not an absolute URI without a fragment.", res)
		}
	}
	targets := fosite.Arguments{}
	for _, t := range append(slices.Clone(ar.GetRequestedAudience()), form["resource"]...) {
		if t == "" || targets.Has(t) {
			continue
		}
		if len(targets) == exchangeMaxTargets {
			return nil, invalid.WithHintf("A token exchange names at most %d targets.", exchangeMaxTargets)
		}
		if !slices.Contains(policy.Audiences, t) {
			return nil, invalid.WithHintf("The client's token exchange policy does not list the audience %q.", t)
		}
		targets = append(targets, t)
	}
	return targets, nil
}

// exchangeScopes are the scopes of the new token: those asked for, each
// granted to the subject token and allowed to the client; without a
// scope parameter, every scope of the subject token the client is allowed.
// An exchange never widens what the subject token allows.
func exchangeScopes(ctx context.Context, fc *fosite.Config, asked fosite.Arguments, client *clients.Client, subject fosite.Arguments) (fosite.Arguments, error) {
	match := fc.GetScopeStrategy(ctx)
	out := fosite.Arguments{}
	if len(asked) == 0 {
		for _, s := range subject {
			if match(client.GetScopes(), s) {
				out = append(out, s)
			}
		}
		return out, nil
	}
	for _, s := range asked {
		switch {
		case !match(client.GetScopes(), s):
			return nil, fosite.ErrInvalidScope.WithHintf("The client is not allowed to request the scope '%s'.", s)
		case !subject.Has(s):
			return nil, fosite.ErrInvalidScope.WithHintf("The scope '%s' is not granted to the subject token; an exchange cannot widen it.", s)
		}
		if !out.Has(s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// prepareSession makes sess the session of the new token: the subject's
// (who, how they signed in, their claims narrowed to the new scopes), an
// expiry never later than the subject token's, and the act claim of §4.1:
// with an actor, the actor on top of the subject token's own act (so a
// chain of delegations nests); impersonating, the subject token's act as
// it was.
func (g *tokenExchangeGrant) prepareSession(sess *grantSession, subject, actor *exchangeToken, scopes fosite.Arguments, requested string) {
	inner, connector := newSession(), ""
	if subject.session != nil {
		// The person signed in through a connector is checked upstream
		// at each refresh of an exchanged grant too (upstream_refresh.go).
		inner, connector = subject.session.DefaultSession, subject.session.Connector
	}
	inner.Subject = subject.subject
	if inner.Claims != nil {
		inner.Claims.Extra = users.NarrowClaims(inner.Claims.Extra, scopes)
	}
	inner.ExpiresAt = map[fosite.TokenType]time.Time{}
	sess.DefaultSession, sess.DPoPJKT, sess.RefreshJKT, sess.Connector = inner, "", "", connector
	sess.Exchanged = subject.grantID != ""
	sess.Act = subject.act
	if actor != nil {
		sess.Act = boundAct(actorClaim(actor, subject.act), 0)
	}
	now := time.Now().UTC()
	switch requested {
	case tokenTypeRefresh:
		sess.SetExpiresAt(fosite.RefreshToken, now.Add(g.fc.GetRefreshTokenLifespan(context.Background())).Round(time.Second))
	case tokenTypeIDToken:
		sess.SetExpiresAt(fosite.IDToken, capExpiry(now.Add(g.fc.GetIDTokenLifespan(context.Background())), subject.expiresAt))
	default:
		sess.SetExpiresAt(fosite.AccessToken, capExpiry(now.Add(g.fc.GetAccessTokenLifespan(context.Background())), subject.expiresAt))
	}
}

// capExpiry is exp, or limit when that comes first: an exchanged token
// does not outlive the token it was exchanged for.
func capExpiry(exp, limit time.Time) time.Time {
	exp = exp.Round(time.Second)
	if !limit.IsZero() && limit.Before(exp) {
		return limit.UTC().Truncate(time.Second)
	}
	return exp
}

// actorClaim is the act claim of §4.1 for actor: who acts, and, nested,
// who acted before in the subject token.
func actorClaim(actor *exchangeToken, prior map[string]any) map[string]any {
	act := map[string]any{"sub": actor.subject}
	if actor.issuer != "" {
		act["iss"] = actor.issuer
	}
	if prior != nil {
		act["act"] = prior
	}
	return act
}
