package server

import (
	"errors"
	"net/http"
	"strings"

	"github.com/ory/fosite"

	"github.com/latchauth/latch/storage"
)

// handleIntrospect is POST /oauth2/introspect (RFC 7662). fosite's
// NewIntrospectionRequest accepts only HTTP Basic or a bearer token and
// answers 401 request_unauthorized; SPEC also allows client_secret_post and
// private_key_jwt, wants invalid_client, and wants token_type and token_use
// in the answer. So the caller is authenticated here, with fosite's own
// AuthenticateClient or IntrospectToken, and fosite introspects the token.
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	// The caller's client and the token's are often one: read it once.
	r = r.WithContext(storage.WithClientMemo(r.Context()))
	ctx := r.Context()
	if err := r.ParseForm(); err != nil {
		s.writeOAuthError(ctx, w, r, fosite.ErrInvalidRequest.WithHint("The request body is not a valid form.").WithWrap(err))
		return
	}
	token := r.PostForm.Get("token")
	if err := s.authenticateIntrospectionCaller(r, token); err != nil {
		s.writeOAuthError(ctx, w, r, err)
		return
	}
	if token == "" {
		s.writeOAuthError(ctx, w, r, fosite.ErrInvalidRequest.WithHint("The 'token' parameter is missing."))
		return
	}
	tu, ar, err := s.oauth.IntrospectToken(ctx, token, fosite.TokenUse(r.PostForm.Get("token_type_hint")), newGrantSession())
	if errors.Is(err, storage.ErrUnavailable) {
		s.writeOAuthError(ctx, w, r, err)
		return
	}
	if err != nil {
		writeJSON(w, http.StatusOK, map[string]bool{"active": false})
		s.countIntrospection(false)
		return
	}
	writeJSON(w, http.StatusOK, s.introspection(tu, ar))
	s.countIntrospection(true)
}

func (s *Server) authenticateIntrospectionCaller(r *http.Request, token string) error {
	ctx := r.Context()
	if auth := r.Header.Get("Authorization"); len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
		bearer := strings.TrimSpace(auth[7:])
		if bearer == token {
			return fosite.ErrInvalidClient.WithHint("The bearer token and the token to introspect are the same.")
		}
		tu, ar, err := s.oauth.IntrospectToken(ctx, bearer, fosite.AccessToken, newSession())
		if errors.Is(err, storage.ErrUnavailable) {
			return err
		}
		if err != nil || tu != fosite.AccessToken {
			return fosite.ErrInvalidClient.WithHint("The bearer token is not an active access token.")
		}
		if ar.GetClient() == nil || ar.GetClient().IsPublic() {
			// The same rule as for a client that authenticates itself: a
			// public client's token (an SPA's, a native app's) is in
			// the hands of whoever runs that app, and would make the
			// endpoint a token oracle for them.
			return fosite.ErrInvalidClient.WithHint("The bearer token was not issued to a confidential client.")
		}
		return nil
	}
	if err := checkClientAuthPresent(r, r.PostForm); err != nil {
		return err
	}
	client, err := s.oauth.AuthenticateClient(ctx, r, r.PostForm)
	if err != nil {
		return err
	}
	if client.IsPublic() {
		// A public client proves nothing by naming itself; letting it
		// introspect would turn the endpoint into a token oracle.
		return fosite.ErrInvalidClient.WithHint("Public clients may not introspect tokens.")
	}
	return nil
}

// introspectionAnswer is the RFC 7662 answer for an active token: a
// struct rather than a map, so that encoding it neither sorts keys nor
// boxes values. Its fields are in alphabetical order, the order of the
// map it replaced, so the bytes of an answer did not change.
type introspectionAnswer struct {
	Act       map[string]any    `json:"act,omitempty"`
	Active    bool              `json:"active"`
	Audience  []string          `json:"aud,omitempty"`
	ClientID  string            `json:"client_id"`
	Cnf       map[string]string `json:"cnf,omitempty"`
	Exp       int64             `json:"exp,omitempty"`
	Iat       int64             `json:"iat"`
	Issuer    string            `json:"iss"`
	Scope     string            `json:"scope"`
	Subject   string            `json:"sub,omitempty"`
	TokenType string            `json:"token_type"`
	TokenUse  string            `json:"token_use"`
	Username  string            `json:"username,omitempty"`
}

// introspection is the RFC 7662 answer for an active token.
func (s *Server) introspection(tu fosite.TokenUse, ar fosite.AccessRequester) *introspectionAnswer {
	sess := ar.GetSession()
	out := &introspectionAnswer{
		Active:    true,
		ClientID:  ar.GetClient().GetID(),
		Scope:     strings.Join(ar.GetGrantedScopes(), " "),
		Iat:       ar.GetRequestedAt().Unix(),
		Issuer:    s.cfg.Issuer,
		TokenType: "Bearer",
		TokenUse:  string(tu),
		Subject:   sess.GetSubject(),
		Username:  sess.GetUsername(),
	}
	expiry := fosite.AccessToken
	if tu == fosite.RefreshToken {
		expiry = fosite.RefreshToken
	}
	if exp := sess.GetExpiresAt(expiry); !exp.IsZero() {
		out.Exp = exp.Unix()
	}
	if aud := ar.GetGrantedAudience(); len(aud) > 0 {
		out.Audience = []string(aud)
	}
	if act := exchangeAct(sess); act != nil {
		out.Act = act // RFC 8693 §4.1
	}
	if jkt := dpopJKT(sess); jkt != "" && tu == fosite.AccessToken {
		// RFC 9449 §6.2: a resource server learns the binding here.
		out.TokenType = tokenTypeDPoP
		out.Cnf = map[string]string{"jkt": jkt}
	}
	return out
}
