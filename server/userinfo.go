package server

import (
	"errors"
	"mime"
	"net/http"
	"strings"

	"github.com/ory/fosite"

	"github.com/latchauth/latch/storage"
	"github.com/latchauth/latch/users"
)

// handleUserinfo is GET and POST /userinfo (OIDC Core §5.3): the claims of
// the token's user for the scopes the token was granted, read fresh from
// the users table.
func (s *Server) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ar, ok := s.accessTokenFor(w, r, pathUserinfo)
	if !ok {
		return
	}
	if !ar.GetGrantedScopes().Has("openid") {
		s.resourceError(w, ar, http.StatusForbidden, "insufficient_scope", "The access token was not granted the openid scope.")
		return
	}
	if !issuedToUser(ar.GetSession()) {
		// A client_credentials token's subject is the client id and a
		// jwt-bearer token's is what another issuer asserted: neither
		// is a user who signed in here, even where a user has that name.
		s.resourceError(w, ar, http.StatusUnauthorized, "invalid_token", "The access token was not issued through a user's sign-in.")
		return
	}
	user, err := s.store.GetUser(ctx, ar.GetSession().GetSubject())
	if errors.Is(err, storage.ErrNotFound) {
		s.resourceError(w, ar, http.StatusUnauthorized, "invalid_token", "The user of this token no longer exists.")
		return
	} else if err != nil {
		s.writeOAuthError(ctx, w, r, err)
		return
	}
	claims := users.ClaimsFor(user, ar.GetGrantedScopes())
	claims["sub"] = user.Username
	writeJSON(w, http.StatusOK, claims)
}

// userinfoToken is the access token of a userinfo request: from the
// Authorization header, or from a form body of a POST (RFC 6750 §2.1,
// §2.2). A token in the query string is refused, never used: RFC 9700
// §2 forbids it, since URLs end up in logs, histories and Referer
// headers. Two ways at once is also refused (RFC 6750 §2: "MUST NOT use
// more than one method"). problem is the refusal's description.
func userinfoToken(r *http.Request) (token, problem string) {
	if r.URL.Query().Has("access_token") {
		return "", "An access token in the query string is refused (RFC 9700 §2): send it as a Bearer Authorization header."
	}
	if auth := r.Header.Get("Authorization"); len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
		token = strings.TrimSpace(auth[7:])
	}
	if r.Method != http.MethodPost {
		return token, ""
	}
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mediaType != "application/x-www-form-urlencoded" {
		return token, ""
	}
	if err := r.ParseForm(); err != nil {
		return "", "The request body is not a valid form."
	}
	if inBody := r.PostForm.Get("access_token"); inBody != "" {
		if token != "" {
			return "", "The access token was sent in the header and in the body; use one."
		}
		token = inBody
	}
	return token, ""
}

// issuedToUser reports whether a token's session comes from a user's
// authentication at this server: only userSession (the code flow, the
// device flow and the fixture of a stored user) sets the username.
func issuedToUser(sess fosite.Session) bool {
	return sess != nil && sess.GetUsername() != ""
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
