package server

import (
	"errors"
	"net/http"

	"github.com/ory/fosite"

	"github.com/latchauth/latch/storage"
	"github.com/latchauth/latch/users"
)

// handleUserinfo is GET and POST /userinfo (OIDC Core §5.3): the claims of
// the token's user for the scopes the token was granted, read fresh from
// the users table.
func (s *Server) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	token := fosite.AccessTokenFromRequest(r)
	if token == "" {
		s.bearerError(w, http.StatusUnauthorized, "invalid_request", "No access token: send it as a Bearer Authorization header.")
		return
	}
	tu, ar, err := s.oauth.IntrospectToken(ctx, token, fosite.AccessToken, newSession())
	if errors.Is(err, storage.ErrUnavailable) {
		s.writeOAuthError(ctx, w, r, err)
		return
	}
	if err != nil || tu != fosite.AccessToken {
		s.bearerError(w, http.StatusUnauthorized, "invalid_token", "The access token is not active.")
		return
	}
	if !ar.GetGrantedScopes().Has("openid") {
		s.bearerError(w, http.StatusForbidden, "insufficient_scope", "The access token was not granted the openid scope.")
		return
	}
	user, err := s.store.GetUser(ctx, ar.GetSession().GetSubject())
	if errors.Is(err, storage.ErrNotFound) {
		s.bearerError(w, http.StatusUnauthorized, "invalid_token", "The user of this token no longer exists.")
		return
	} else if err != nil {
		s.writeOAuthError(ctx, w, r, err)
		return
	}
	claims := users.ClaimsFor(user, ar.GetGrantedScopes())
	claims["sub"] = user.Username
	writeJSON(w, http.StatusOK, claims)
}

// bearerError answers as RFC 6750 §3 says: the error in WWW-Authenticate
// and, for clients that read bodies, as JSON.
func (s *Server) bearerError(w http.ResponseWriter, status int, code, description string) {
	challenge := `Bearer realm="latch"`
	if code != "invalid_request" || status != http.StatusUnauthorized {
		challenge += `, error="` + code + `"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}
