package server

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"slices"

	"github.com/gorilla/csrf"
	"github.com/ory/fosite/token/jwt"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/storage"
	"github.com/latchauth/latch/templates"
)

const pathLogout = "/oauth2/sessions/logout"

// logoutRequest is an RP-initiated logout (OIDC RP-Initiated Logout 1.0).
type logoutRequest struct {
	idTokenHint string
	redirectURI string
	state       string
	clientID    string
}

func (q logoutRequest) hidden() map[string]string {
	m := map[string]string{}
	for k, v := range map[string]string{"id_token_hint": q.idTokenHint, "post_logout_redirect_uri": q.redirectURI, "state": q.state, "client_id": q.clientID} {
		if v != "" {
			m[k] = v
		}
	}
	return m
}

// handleLogout is GET and POST /oauth2/sessions/logout. With a valid
// id_token_hint for the signed-in person and a post_logout_redirect_uri
// that the hint's client registered, the session ends and the browser goes
// back at once (with state). Otherwise the person confirms on a page, and
// an unregistered URI is never followed.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.renderError(w, r, http.StatusBadRequest, "This sign-out request is not valid.", "")
		return
	}
	q := logoutRequest{
		idTokenHint: r.Form.Get("id_token_hint"),
		redirectURI: r.Form.Get("post_logout_redirect_uri"),
		state:       r.Form.Get("state"),
		clientID:    r.Form.Get("client_id"),
	}
	ls, err := s.currentSession(r)
	if err != nil {
		s.renderStorageError(w, r, err)
		return
	}
	client, target, err := s.logoutTarget(r, q, ls)
	if err != nil {
		s.renderStorageError(w, r, err)
		return
	}
	confirmed := r.Method == http.MethodPost && r.PostForm.Get("decision") == "allow"
	if confirmed || target != "" {
		if err := s.endSession(w, r); err != nil {
			s.renderStorageError(w, r, err)
			return
		}
		if target != "" {
			w.Header().Set("Cache-Control", "no-store")
			http.Redirect(w, r, target, http.StatusFound)
			return
		}
		s.render(w, r, http.StatusOK, func(b *bytes.Buffer) error {
			return s.pages.Error(b, templates.ErrorData{Page: s.page(r, "You are signed out"), Message: "You can close this page."})
		})
		return
	}
	name := ""
	if client != nil {
		name = clientName(client)
	}
	s.render(w, r, http.StatusOK, func(b *bytes.Buffer) error {
		return s.pages.Logout(b, templates.LogoutData{Page: s.page(r, ""), Action: pathLogout, ClientName: name, Hidden: q.hidden()})
	})
}

// logoutTarget returns the hint's client, and the URI to send the browser
// to when the logout may proceed without asking: the hint verifies with
// one of our keys (expired is fine), names the signed-in person (or nobody
// is signed in), and its client registered the URI exactly.
func (s *Server) logoutTarget(r *http.Request, q logoutRequest, ls *storage.LoginSession) (*clients.Client, string, error) {
	if q.idTokenHint == "" {
		return nil, "", nil
	}
	tok, err := s.signer.Decode(r.Context(), q.idTokenHint)
	var ve *jwt.ValidationError
	if errors.As(err, &ve) && ve.Errors == jwt.ValidationErrorExpired {
		err = nil
	}
	if err != nil || tok == nil {
		if errors.Is(err, storage.ErrUnavailable) {
			return nil, "", err
		}
		return nil, "", nil
	}
	sub, _ := tok.Claims["sub"].(string)
	aud := audience(tok.Claims["aud"])
	if iss, _ := tok.Claims["iss"].(string); iss != s.cfg.Issuer || sub == "" || len(aud) == 0 {
		return nil, "", nil
	}
	clientID := aud[0]
	if q.clientID != "" {
		if !slices.Contains(aud, q.clientID) {
			return nil, "", nil
		}
		clientID = q.clientID
	}
	fc, err := s.store.GetClient(r.Context(), clientID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, "", nil
	} else if err != nil {
		return nil, "", err
	}
	client, _ := fc.(*clients.Client)
	if client == nil || q.redirectURI == "" || !slices.Contains(client.PostLogoutRedirectURIs, q.redirectURI) ||
		s.clientRules().CheckRedirectURI(q.redirectURI) != nil {
		return client, "", nil
	}
	if ls != nil && ls.Username != sub {
		return client, "", nil
	}
	target, err := url.Parse(q.redirectURI)
	if err != nil {
		return client, "", nil
	}
	if q.state != "" {
		v := target.Query()
		v.Set("state", q.state)
		target.RawQuery = v.Encode()
	}
	return client, target.String(), nil
}

func audience(v any) []string {
	switch a := v.(type) {
	case string:
		return []string{a}
	case []any:
		out := make([]string, 0, len(a))
		for _, x := range a {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	case []string:
		return a
	}
	return nil
}

// logoutCSRF exempts an RP's own logout request (no decision field) from
// the CSRF check: it carries no token from our page, and it only ever
// shows the confirmation page or follows a hint-verified, registered URI.
// The confirmation itself (decision=allow) is checked.
func logoutCSRF(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.PostFormValue("decision") == "" {
			r = csrf.UnsafeSkipCheck(r)
		}
		next.ServeHTTP(w, r)
	})
}
