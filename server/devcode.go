package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"

	"github.com/ory/fosite"
)

// CodeRequest says what IssueAuthorizeCode mints: the authorization request
// a client would send, approved by Subject.
type CodeRequest struct {
	ClientID string
	// Subject is the person who approved the request: a user, whose
	// profile claims the ID token will carry, or any other subject.
	Subject string
	// RedirectURI must be registered for the client; empty sends none, as
	// a client with one registered URI may (OpenID Connect needs it).
	RedirectURI string
	// Scopes must be registered for the client; all of them are granted.
	Scopes   []string
	Audience []string
	// CodeChallenge is a PKCE S256 challenge, required for public clients.
	CodeChallenge string
	// Nonce goes into the ID token issued for the code.
	Nonce string
}

// IssueAuthorizeCode mints an authorization code as the authorization
// endpoint does once the person has signed in and consented: fosite parses
// and checks the request exactly as it parses GET /oauth2/auth, then its
// authorize handlers issue the code and store the code, PKCE and OpenID
// Connect sessions. The token endpoint redeems it like any other code, once.
// Its errors are *fosite.RFC6749Error.
func (s *Server) IssueAuthorizeCode(ctx context.Context, cr CodeRequest) (string, error) {
	if cr.Subject == "" {
		return "", fosite.ErrInvalidRequest.WithHint("An authorization code needs a subject.")
	}
	// fosite insists on a state; the caller never sees the redirect.
	raw := make([]byte, 16)
	if _, err := rand.Read(raw); err != nil {
		return "", fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	q := url.Values{
		"response_type": {"code"},
		"client_id":     {cr.ClientID},
		"state":         {base64.RawURLEncoding.EncodeToString(raw)},
	}
	set := map[string]string{
		"redirect_uri": cr.RedirectURI, "scope": strings.Join(cr.Scopes, " "), "audience": strings.Join(cr.Audience, " "),
		"code_challenge": cr.CodeChallenge, "nonce": cr.Nonce,
	}
	for k, v := range set {
		if v != "" {
			q.Set(k, v)
		}
	}
	if cr.CodeChallenge != "" {
		q.Set("code_challenge_method", "S256")
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url(pathAuthorize)+"?"+q.Encode(), nil)
	if err != nil {
		return "", fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	// What handleAuthorize checks before a person is involved.
	ar, err := s.oauth.NewAuthorizeRequest(ctx, r)
	if err != nil {
		return "", oauthError(err)
	}
	if !s.redirectExact(ar) {
		return "", fosite.ErrInvalidRequest.WithHint("The redirect URI is not one the client registered.")
	}
	if need := s.oauth.Config.GetMinParameterEntropy(ctx); cr.Nonce != "" && len(cr.Nonce) < need {
		return "", fosite.ErrInvalidRequest.WithHintf("The 'nonce' must be at least %d characters long.", need)
	}
	// What finish does once the person has consented.
	for _, scope := range ar.GetRequestedScopes() {
		ar.GrantScope(scope)
	}
	for _, aud := range ar.GetRequestedAudience() {
		ar.GrantAudience(aud)
	}
	sess, err := s.fixtureSession(ctx, TokenRequest{ClientID: cr.ClientID, Subject: cr.Subject}, ar.GetGrantedScopes(), s.now().UTC())
	if err != nil {
		return "", err
	}
	resp, err := s.oauth.NewAuthorizeResponse(ctx, ar, sess)
	if err != nil {
		return "", oauthError(err)
	}
	return resp.GetCode(), nil
}
