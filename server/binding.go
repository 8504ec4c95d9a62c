package server

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
)

// Binding a login or consent challenge to the browser that started the
// authorization request. The challenge travels in URLs (/login?challenge=)
// and so can leak through history, logs or a shared screen; whoever holds
// it could otherwise finish the request in their own browser, signed in as
// someone else, and the application would sign its user in as that other
// person (a session swap), or be sent a login page to fill in for someone
// else's request (login CSRF).
//
// The first authorization request that needs a page gives the browser a
// random binding secret in an HttpOnly cookie, and the challenge is stored
// under the challenge and that secret together. A browser without the
// cookie finds no challenge: the same "expired or started elsewhere" page
// as an unknown one, with nothing to tell the two apart. One cookie per
// browser (not per request) lets several tabs sign in at once.

const bindingCookie = "latch_browser"

// bindingLen is the length of a binding secret: 32 random bytes, base64url.
const bindingLen = 43

// browserBinding is the binding secret the browser sent, or "" for none or
// a malformed one.
func browserBinding(r *http.Request) string {
	c, err := r.Cookie(bindingCookie)
	if err != nil || len(c.Value) != bindingLen {
		return ""
	}
	if _, err := base64.RawURLEncoding.DecodeString(c.Value); err != nil {
		return ""
	}
	return c.Value
}

// ensureBinding returns the browser's binding secret, giving it one (a
// cookie for the browser session) when it has none.
func (s *Server) ensureBinding(w http.ResponseWriter, r *http.Request) (string, error) {
	if b := browserBinding(r); b != "" {
		return b, nil
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	b := base64.RawURLEncoding.EncodeToString(raw)
	http.SetCookie(w, &http.Cookie{
		Name:     bindingCookie,
		Value:    b,
		Path:     "/",
		HttpOnly: true,
		// Lax: the cookie must come along on the top-level navigation
		// from the application to /oauth2/auth and on to /login.
		SameSite: http.SameSiteLaxMode,
		Secure:   s.secure,
	})
	return b, nil
}

// challengeKey is what a challenge is stored under: the challenge of the
// URL and the binding secret of the browser.
func challengeKey(challenge, binding string) string {
	return challenge + "." + binding
}

// boundChallenge is the stored key of challenge for the browser of r.
func boundChallenge(r *http.Request, challenge string) string {
	return challengeKey(challenge, browserBinding(r))
}
