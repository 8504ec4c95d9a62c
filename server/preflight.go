package server

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strings"

	"github.com/ory/fosite"
	"github.com/ory/fosite/token/jwt"
)

// defaultPrompts are OIDC Core §3.1.2.1's prompt values, which fosite
// allows when its config names none.
var defaultPrompts = []string{"login", "none", "consent", "select_account"}

// checkAuthorizeRequest finishes validating an authorization request that
// fosite's NewAuthorizeRequest accepted. fosite checks the rest (PKCE, the
// response type actually handled, OpenID Connect's redirect_uri and prompt,
// the nonce) only in NewAuthorizeResponse, after the person has signed in
// and consented; a request that cannot succeed must be refused before any
// page is shown. Each rule mirrors the fosite handler composed in
// provider.go that would refuse it later, with the same error code.
func (s *Server) checkAuthorizeRequest(ctx context.Context, ar fosite.AuthorizeRequester) error {
	// Only the authorization code handlers are composed: any other
	// response type would end in unsupported_response_type.
	if !ar.GetResponseTypes().ExactOne("code") {
		return fosite.ErrUnsupportedResponseType.WithHintf("The response_type '%s' is not supported; use 'code'.", strings.Join(ar.GetResponseTypes(), " "))
	}
	// oauth2.AuthorizeExplicitGrantHandler.
	if !s.oauth.Config.GetRedirectSecureChecker(ctx)(ctx, ar.GetRedirectURI()) {
		return fosite.ErrInvalidRequest.WithHint("The redirect URI uses plain http for a host that is not loopback.")
	}
	if err := s.checkPKCE(ctx, ar); err != nil {
		return err
	}
	if err := checkDPoPJKT(ar); err != nil {
		return err
	}
	// fosite checks the nonce's length only when it signs the ID token, at
	// the token endpoint, after the code is spent.
	if n := ar.GetRequestForm().Get("nonce"); n != "" && len(n) < s.oauth.Config.GetMinParameterEntropy(ctx) {
		return fosite.ErrInvalidRequest.WithHintf("The 'nonce' must be at least %d characters long.", s.oauth.Config.GetMinParameterEntropy(ctx))
	}
	if ar.GetRequestedScopes().Has("openid") {
		return s.checkOpenIDRequest(ctx, ar)
	}
	return nil
}

// checkPKCE applies pkce.Handler's rules (RFC 7636) as provider.go
// configures them: S256 only, and a code_challenge required of public
// clients. It also refuses what fosite would store and fail on at the token
// endpoint: a method without a challenge, and an S256 challenge that is
// not the 43 base64url characters of a SHA-256 (RFC 7636 §4.2).
func (s *Server) checkPKCE(ctx context.Context, ar fosite.AuthorizeRequester) error {
	form := ar.GetRequestForm()
	challenge, method := form.Get("code_challenge"), form.Get("code_challenge_method")
	switch {
	case challenge == "" && method != "":
		return fosite.ErrInvalidRequest.WithHint("The code_challenge_method was given without a code_challenge.")
	case challenge == "":
		if ar.GetClient().IsPublic() && s.oauth.Config.GetEnforcePKCEForPublicClients(ctx) {
			return fosite.ErrInvalidRequest.WithHint("This client must include a code_challenge (PKCE, S256) in the authorization request.")
		}
		return nil
	case method != "S256":
		return fosite.ErrInvalidRequest.WithHint("Clients must use code_challenge_method=S256.")
	}
	if raw, err := base64.RawURLEncoding.DecodeString(challenge); err != nil || len(raw) != 32 {
		return fosite.ErrInvalidRequest.WithHint("The code_challenge must be the base64url-encoded SHA-256 of the code verifier (43 characters).")
	}
	return nil
}

// checkOpenIDRequest applies what openid.OpenIDConnectExplicitHandler and
// its request validator check at response time and can check without a
// signed-in person: redirect_uri present, prompt values, and an
// id_token_hint this server signed.
func (s *Server) checkOpenIDRequest(ctx context.Context, ar fosite.AuthorizeRequester) error {
	form := ar.GetRequestForm()
	if form.Get("redirect_uri") == "" {
		return fosite.ErrInvalidRequest.WithHint("The 'redirect_uri' parameter is required when using OpenID Connect 1.0.")
	}
	prompts := fosite.RemoveEmpty(strings.Split(form.Get("prompt"), " "))
	allowed := s.oauth.Config.GetAllowedPrompts(ctx)
	if len(allowed) == 0 {
		allowed = defaultPrompts
	}
	for _, p := range prompts {
		if !slices.Contains(allowed, p) {
			return fosite.ErrInvalidRequest.WithHintf("Used unknown value '%s' for prompt parameter.", p)
		}
	}
	if slices.Contains(prompts, "none") {
		if len(prompts) > 1 {
			return fosite.ErrInvalidRequest.WithHint("Parameter 'prompt' was set to 'none', but contains other values as well which is not allowed.")
		}
		// RFC 6819 §4.2.3: no silent answer to a public client whose
		// redirect URI anyone could claim.
		if ar.GetClient().IsPublic() && !s.oauth.Config.GetRedirectSecureChecker(ctx)(ctx, ar.GetRedirectURI()) {
			return fosite.ErrConsentRequired.WithHint("The client is public and its redirect URI is not secure, but prompt=none was requested.")
		}
	}
	if hint := form.Get("id_token_hint"); hint != "" {
		tok, err := s.signer.Decode(ctx, hint)
		var ve *jwt.ValidationError
		if err != nil && !(errors.As(err, &ve) && ve.Has(jwt.ValidationErrorExpired)) {
			return fosite.ErrInvalidRequest.WithHint("The id_token_hint is not an ID token this server signed.")
		}
		if tok == nil {
			return fosite.ErrInvalidRequest.WithHint("The id_token_hint is not an ID token this server signed.")
		}
		if sub, _ := tok.Claims["sub"].(string); sub == "" {
			return fosite.ErrInvalidRequest.WithHint("The id_token_hint has no subject.")
		}
	}
	return nil
}
