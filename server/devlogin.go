package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"

	"github.com/ory/fosite"

	"github.com/latchauth/latch/storage"
	"github.com/latchauth/latch/users"
)

// Dev mode's second login form, as mock-oauth2-server offers it: sign in
// as any subject with any extra claims, typed as a JSON object. The
// subject becomes a user (its password, if it had one, is kept; a new one
// has none, so only this form signs it in), and the claims become its
// profile: ID tokens, userinfo and JWT access tokens say them.
const (
	devMaxSubject = 255
	devMaxClaims  = 8 << 10
)

// devSignIn signs the browser in as the posted subject with the posted
// claims. On a refusal it has shown the form again with the reason.
func (s *Server) devSignIn(w http.ResponseWriter, r *http.Request, challenge string, ar fosite.AuthorizeRequester) (*storage.LoginSession, bool) {
	ctx := r.Context()
	subject, raw := r.PostFormValue("subject"), r.PostFormValue("claims")
	u, refusal := devUser(subject, raw)
	if refusal != "" {
		d := s.loginData(r, challenge, ar)
		d.Subject, d.DevError = subject, refusal
		if len(raw) <= devMaxClaims {
			d.Claims = raw
		}
		s.renderLoginData(w, r, ar, http.StatusBadRequest, d)
		return nil, false
	}
	old, err := s.store.GetUser(ctx, u.Username)
	switch {
	case err == nil:
		u.PasswordHash = old.PasswordHash
	case !errors.Is(err, storage.ErrNotFound):
		s.renderStorageError(w, r, err)
		return nil, false
	}
	if err := s.store.UpsertUser(ctx, u); err != nil {
		s.renderStorageError(w, r, err)
		return nil, false
	}
	// A typed subject counts as a password sign-in, as in
	// mock-oauth2-server: amr pwd.
	ls, err := s.startSession(w, r, u.Username, []string{amrPassword}, "")
	if err != nil {
		s.renderStorageError(w, r, err)
		return nil, false
	}
	s.log.InfoContext(ctx, "dev mode: signed in as a typed subject", "subject", u.Username)
	return ls, true
}

// devUser checks the typed subject and claims and makes the user they
// describe, or says in a sentence for the page why not. name, email, email_verified and groups fill the standard
// profile (released by the profile, email and groups scopes, as for any
// user); every other claim is custom and always released.
func devUser(subject, raw string) (*storage.User, string) {
	switch {
	case subject == "" || strings.TrimSpace(subject) != subject:
		return nil, "The subject must not be empty or start or end with a space."
	case len(subject) > devMaxSubject:
		return nil, fmt.Sprintf("The subject must be at most %d characters.", devMaxSubject)
	case strings.IndexFunc(subject, unicode.IsControl) >= 0:
		return nil, "The subject must not contain control characters."
	case len(raw) > devMaxClaims:
		return nil, fmt.Sprintf("The claims must be at most %d bytes of JSON.", devMaxClaims)
	}
	claims := map[string]any{}
	if strings.TrimSpace(raw) != "" {
		dec := json.NewDecoder(strings.NewReader(raw))
		if err := dec.Decode(&claims); err != nil || claims == nil || dec.More() {
			return nil, `The claims must be one JSON object, like {"email": "dev@example.com"}.`
		}
	}
	u := &storage.User{Username: subject, Claims: map[string]any{}}
	for k, v := range claims {
		var ok bool
		switch {
		case users.ReservedClaim(k) || k == "preferred_username":
			return nil, fmt.Sprintf("The claim %q is set by the server and cannot be typed here.", k)
		case k == "name":
			u.Name, ok = v.(string)
		case k == "email":
			u.Email, ok = v.(string)
		case k == "email_verified":
			u.EmailVerified, ok = v.(bool)
		case k == "groups":
			u.Groups, ok = stringList(v)
		default:
			u.Claims[k], ok = v, true
		}
		if !ok {
			return nil, fmt.Sprintf("The claim %q has the wrong type (name and email are strings, email_verified true or false, groups a list of strings).", k)
		}
	}
	return u, ""
}

// stringList is v as a list of strings, if it is one.
func stringList(v any) ([]string, bool) {
	list, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(list))
	for _, item := range list {
		s, ok := item.(string)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}
