package server

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/rfc7523"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/storage"
)

// RFC 7523: JWT bearer assertions as authorization grants (§2.1) and as
// client authentication, private_key_jwt (§2.2).

// jwtBearerMaxLifetime bounds exp - iat of a grant assertion (fosite's
// GrantTypeJWTBearerMaxDuration). Assertions are minted for one request;
// the bound also bounds how long a used jti is kept.
const jwtBearerMaxLifetime = time.Hour

// newJWTBearerGrant is fosite's RFC 7523 §2.1 handler as Latch runs it:
// the client must authenticate (GrantTypeJWTBearerCanSkipClientAuth stays
// false) and list the grant, and its registration is a second bound on
// scopes and audience. The trusted issuers, their keys and scopes, and the
// used jti values are all in the Store.
func newJWTBearerGrant(store storage.Store, helper *oauth2.HandleHelper, fc *fosite.Config) jwtBearerGrant {
	return jwtBearerGrant{&rfc7523.Handler{Storage: store, HandleHelper: helper, Config: fc}}
}

// jwtBearerGrant wraps fosite's handler:
//
//   - a client that does not list the grant is unauthorized_client before
//     anything else, as grantListed does for client_credentials (it cannot
//     be a grantListed: fosite's TokenEndpointHandlers.Append silently drops
//     a second handler of a type already in the list);
//   - the requested scopes must be allowed by the client's registration as
//     well as by the trusted issuer (fosite checks only the issuer), and the
//     requested audience by the client's registration, as for
//     client_credentials; both are invalid_scope / invalid_request before
//     the assertion is looked at;
//   - a replayed jti is invalid_grant (RFC 7523 §3.1 item 7 and §3.1's
//     "invalid_grant" for any invalid assertion), not fosite's non-standard
//     400 jti_known;
//   - the token's audience is the requested audience, like any other
//     grant's; fosite would grant the assertion's aud, which is this
//     server's token endpoint and means nothing to a resource server.
//
// The session subject is the assertion's sub (fosite sets it).
type jwtBearerGrant struct {
	*rfc7523.Handler
}

func (h jwtBearerGrant) HandleTokenEndpointRequest(ctx context.Context, ar fosite.AccessRequester) error {
	if !h.CanHandleTokenEndpointRequest(ctx, ar) {
		return h.Handler.HandleTokenEndpointRequest(ctx, ar)
	}
	client := ar.GetClient()
	if !client.GetGrantTypes().Has(clients.GrantJWTBearer) {
		return fosite.ErrUnauthorizedClient.WithHintf("The client is not allowed to use the grant '%s'.", clients.GrantJWTBearer)
	}
	for _, scope := range ar.GetRequestedScopes() {
		if !h.Config.GetScopeStrategy(ctx)(client.GetScopes(), scope) {
			return fosite.ErrInvalidScope.WithHintf("The OAuth 2.0 Client is not allowed to request scope '%s'.", scope)
		}
	}
	if err := h.Config.GetAudienceStrategy(ctx)(client.GetAudience(), ar.GetRequestedAudience()); err != nil {
		return err
	}
	if err := checkAssertionTimes(ar.GetRequestForm().Get("assertion"), time.Now(), jwtBearerMaxLifetime, refuseGrantAssertion); err != nil {
		return err
	}
	err := h.Handler.HandleTokenEndpointRequest(ctx, ar)
	if errors.Is(err, fosite.ErrJTIKnown) {
		// Also the race of two requests with one jti: the store's insert
		// refuses the second, which fosite wraps as server_error.
		return fosite.ErrInvalidGrant.WithHint("The 'jti' of the assertion was already used; an assertion is good for one request.").WithWrap(err)
	}
	if err != nil {
		return err
	}
	req, ok := ar.(*fosite.AccessRequest)
	if !ok {
		return fosite.ErrServerError.WithDebugf("the JWT bearer grant needs a *fosite.AccessRequest, got %T", ar)
	}
	req.GrantedAudience = fosite.Arguments{}
	for _, aud := range ar.GetRequestedAudience() {
		ar.GrantAudience(aud)
	}
	return nil
}

// clientAuthentication is fosite's DefaultClientAuthenticationStrategy
// (HTTP Basic, client_secret_post, none, and private_key_jwt client
// assertions) plus client_secret_jwt (clientsecretjwt.go), which fosite
// lacks, with SPEC's answer for a failed client assertion: fosite
// answers some of them 400 invalid_request (a kid the client did not
// register, a key without use=sig, a missing client_id), 400 jti_known (a
// replayed assertion) or even 500 (an expired one: the JWT library's own
// error); SPEC wants every wrong client authentication to be 401
// invalid_client. Store failures keep their own answer (503), as do
// server misconfigurations. A request with an assertion and a secret too
// is refused (RFC 6749 §2.3). An assertion's aud may be any of
// audiences (assertionAudiences).
func clientAuthentication(fc *fosite.Config, store fosite.Storage, audiences []string) fosite.ClientAuthenticationStrategy {
	f := &fosite.Fosite{Config: assertionAudience{fc, audiences}, Store: store}
	hmac := secretJWTAuth{store: store, audiences: audiences, now: time.Now}
	return func(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
		if form.Get("client_assertion_type") != "" && (r.Header.Get("Authorization") != "" || form.Get("client_secret") != "") {
			// RFC 6749 §2.3: one authentication method per request; fosite
			// would look at the assertion alone.
			return nil, fosite.ErrInvalidClient.WithHint("The request uses a client assertion and a client secret; use one client authentication method.")
		}
		if form.Get("client_assertion_type") != "" {
			if err := checkAssertionTimes(form.Get("client_assertion"), time.Now(), clientAssertionMaxAhead, refuseClientAssertion); err != nil {
				return nil, err
			}
			if isHMACAssertion(form) {
				return hmac.authenticate(ctx, form)
			}
		}
		client, err := f.DefaultClientAuthenticationStrategy(ctx, r, form)
		if err == nil {
			return client, nil
		}
		if form.Get("client_assertion") == "" && form.Get("client_assertion_type") == "" {
			return secretRefused(ctx, f, store, r, form, err)
		}
		if errors.Is(err, storage.ErrUnavailable) {
			return nil, err
		}
		var rfc *fosite.RFC6749Error
		if !errors.As(err, &rfc) {
			// fosite hands on the JWT library's own error for some
			// claims, an expired assertion among them.
			return nil, fosite.ErrInvalidClient.WithHintf("The 'client_assertion' is not valid: %v.", err).WithWrap(err)
		}
		if rfc.CodeField >= http.StatusInternalServerError {
			return nil, err
		}
		hint := rfc.HintField
		if revealsAuthMethod(hint) {
			// Also an invalid_client: fosite names the client's method.
			return nil, fosite.ErrInvalidClient.WithWrap(err)
		}
		if rfc.ErrorField == fosite.ErrInvalidClient.ErrorField {
			return nil, err
		}
		if hint == "" {
			hint = rfc.DescriptionField
		}
		return nil, fosite.ErrInvalidClient.WithHint(hint).WithWrap(err)
	}
}

// claimedClientID is the client a request names: the Basic username, or
// the form's client_id.
func claimedClientID(r *http.Request, form url.Values) string {
	if user, _, ok := r.BasicAuth(); ok {
		id, err := url.QueryUnescape(user)
		if err != nil {
			return ""
		}
		return id
	}
	return form.Get("client_id")
}

// assertionAudience is the configuration fosite checks a private_key_jwt
// assertion with: its aud may name any of urls, not only the token
// endpoint (assertionAudiences says why).
type assertionAudience struct {
	*fosite.Config
	urls []string
}

func (a assertionAudience) GetTokenURLs(context.Context) []string { return a.urls }
