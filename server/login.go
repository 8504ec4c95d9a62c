package server

import (
	"bytes"
	"errors"
	"net/http"

	"github.com/ory/fosite"

	"github.com/latchauth/latch/storage"
	"github.com/latchauth/latch/templates"
	"github.com/latchauth/latch/users"
)

const (
	pathLogin   = "/login"
	pathConsent = "/consent"
)

// loadChallenge returns the authorization request a page works on, or
// shows the error page and returns nil.
func (s *Server) loadChallenge(w http.ResponseWriter, r *http.Request) (string, fosite.AuthorizeRequester) {
	challenge := r.FormValue("challenge")
	if challenge == "" {
		s.renderError(w, r, http.StatusBadRequest, "There is no sign-in in progress.",
			"Start signing in from the application you want to use.")
		return "", nil
	}
	ar, err := s.store.GetAuthorizeChallenge(r.Context(), boundChallenge(r, challenge))
	if !s.challengeFound(w, r, err) {
		return "", nil
	}
	return challenge, ar
}

// challengeFound reports whether the lookup of something bound to this
// browser (a challenge, an upstream attempt) found it; when not, it has
// shown the page: gone (ErrNotFound) or the database's failure.
func (s *Server) challengeFound(w http.ResponseWriter, r *http.Request, err error) bool {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		s.renderChallengeGone(w, r)
		return false
	case err != nil:
		s.renderStorageError(w, r, err)
		return false
	}
	return true
}

// renderChallengeGone is the page for a challenge that is not there for
// this browser: expired, decided already, or bound to another browser.
func (s *Server) renderChallengeGone(w http.ResponseWriter, r *http.Request) {
	s.renderError(w, r, http.StatusBadRequest, "This sign-in has expired, was already completed, or was started in another browser.",
		"Go back to the application and start again, in this browser.")
}

// handleLogin is GET and POST /login: the login form of an authorization
// request in progress.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	challenge, ar := s.loadChallenge(w, r)
	if ar == nil {
		return
	}
	if r.Method == http.MethodGet {
		if to := s.hintedUpstream(r, challenge, ar); to != "" {
			w.Header().Set("Cache-Control", "no-store")
			http.Redirect(w, r, to, http.StatusFound)
			return
		}
		s.renderLogin(w, r, challenge, ar, http.StatusOK, "", "")
		return
	}
	if s.cfg.DevMode && r.PostForm.Has("subject") {
		// Dev mode's second form (devlogin.go).
		if ls, ok := s.devSignIn(w, r, challenge, ar); ok {
			s.proceed(w, r, ar, challenge, ls, true)
		}
		return
	}
	if s.cfg.NoPasswordForm && r.PostFormValue("passkey_ceremony") == "" {
		s.renderError(w, r, http.StatusForbidden, "Signing in with a password is turned off here.",
			"Go back and choose one of the other ways to sign in.")
		return
	}
	user, amr, ok := s.anySignIn(w, r, func(status int, username, msg string) {
		s.renderLogin(w, r, challenge, ar, status, username, msg)
	})
	if !ok {
		return
	}
	ls, ok := s.completeSignIn(w, r, user.Username, amr, s.mfaPolicy(ar.GetClient(), ar.GetRequestForm()), mfaPending{Challenge: challenge})
	if !ok {
		return
	}
	s.proceed(w, r, ar, challenge, ls, true)
}

// anySignIn checks what the form posted: a passkey (the script of the
// login page posts its answer) or a username and password. It returns
// the user and what they proved (RFC 8176 amr); completeSignIn (mfa.go)
// then asks for a second factor or starts the session. On failure it has
// answered, as signIn does.
func (s *Server) anySignIn(w http.ResponseWriter, r *http.Request, rerender func(status int, username, msg string)) (*storage.User, []string, bool) {
	if r.PostFormValue("passkey_ceremony") != "" {
		return s.passkeySignIn(w, r, rerender)
	}
	user, ok := s.signIn(w, r, rerender)
	return user, []string{amrPassword}, ok
}

// signIn checks the posted login form; completeSignIn (mfa.go) then asks
// for a second factor or starts the session. On failure it has answered:
// rerender shows the form again with a message (wrong password, rate
// limit), a database failure gets the storage error page.
func (s *Server) signIn(w http.ResponseWriter, r *http.Request, rerender func(status int, username, msg string)) (*storage.User, bool) {
	username, password := r.PostFormValue("username"), r.PostFormValue("password")
	user, ok := s.checkPassword(w, r, username, password, "Wrong username or password.", func(status int, msg string) {
		rerender(status, username, msg)
	})
	if !ok {
		return nil, false
	}
	return user, true
}

// checkPassword verifies a password under the login throttling, with at
// most one check per core at a time (each costs a password hash). On
// failure it has answered: rerender shows the form again with a message
// (wrong is the one for a wrong password), a database failure gets the
// storage error page.
func (s *Server) checkPassword(w http.ResponseWriter, r *http.Request, username, password, wrong string, rerender func(status int, msg string)) (*storage.User, bool) {
	s.passwordChecks <- struct{}{}
	user, err := s.users.Authenticate(r.Context(), username, password, s.clientKey(r))
	<-s.passwordChecks
	var limited *users.RateLimitedError
	switch {
	case errors.As(err, &limited):
		s.metrics.loginFails.Inc()
		setRetryAfter(w, limited.RetryAfter)
		rerender(http.StatusTooManyRequests, waitMessage(limited.RetryAfter))
		return nil, false
	case errors.Is(err, users.ErrInvalidCredentials):
		s.metrics.loginFails.Inc()
		// RFC 9110 §15.5.2: a 401 names how to authenticate; here, the form.
		w.Header().Set("WWW-Authenticate", `Form realm="latch"`)
		rerender(http.StatusUnauthorized, wrong)
		return nil, false
	case err != nil:
		s.renderStorageError(w, r, err)
		return nil, false
	}
	return user, true
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, challenge string, ar fosite.AuthorizeRequester, status int, username, msg string) {
	d := s.loginData(r, challenge, ar)
	d.Username, d.Error = username, msg
	s.renderLoginData(w, r, ar, status, d)
}

// loginData is the login page of the authorization request ar.
func (s *Server) loginData(r *http.Request, challenge string, ar fosite.AuthorizeRequester) templates.LoginData {
	return templates.LoginData{
		Page:       s.page(r, ""),
		Action:     pathLogin,
		ClientName: clientName(ar.GetClient()),
		Hidden:     map[string]string{"challenge": challenge},
		Dev:        s.cfg.DevMode,

		PasskeyBegin:   s.passkeyBegin(),
		NoPasswordForm: s.cfg.NoPasswordForm,
		Connectors:     s.connectorButtons(r.Context(), challenge),
	}
}

func (s *Server) renderLoginData(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, status int, d templates.LoginData) {
	s.render(w, r, status, func(b *bytes.Buffer) error {
		return s.pages.Login(b, d)
	}, ar.GetRedirectURI().String())
}

// handleConsent is GET and POST /consent: the person allows or denies the
// client the scopes it asked for.
func (s *Server) handleConsent(w http.ResponseWriter, r *http.Request) {
	challenge, ar := s.loadChallenge(w, r)
	if ar == nil {
		return
	}
	ls, err := s.currentSession(r)
	if err != nil {
		s.renderStorageError(w, r, err)
		return
	}
	if ls == nil {
		// Signed out meanwhile (or another browser): sign in first.
		s.redirectToPage(w, r, ar, challenge, pathLogin)
		return
	}
	user, err := s.store.GetUser(r.Context(), ls.Username)
	if errors.Is(err, storage.ErrNotFound) {
		s.redirectToPage(w, r, ar, challenge, pathLogin)
		return
	} else if err != nil {
		s.renderStorageError(w, r, err)
		return
	}
	if r.Method == http.MethodGet {
		s.render(w, r, http.StatusOK, func(b *bytes.Buffer) error {
			return s.pages.Consent(b, templates.ConsentData{
				Page:       s.page(r, ""),
				Action:     pathConsent,
				ClientName: clientName(ar.GetClient()),
				ClientID:   ar.GetClient().GetID(),
				Username:   user.Username,
				Scopes:     scopeList(ar.GetRequestedScopes()),
				Hidden:     map[string]string{"challenge": challenge},
				Remember:   true,
			})
		}, ar.GetRedirectURI().String())
		return
	}
	switch r.PostFormValue("decision") {
	case "allow":
	case "deny":
		// A denial claims the challenge as an approval does (finish): of
		// concurrent decisions exactly one is sent to the client.
		if !s.claimChallenge(w, r, challenge) {
			return
		}
		s.writeAuthorizeError(w, r, ar, fosite.ErrAccessDenied.WithHint("The person denied the request."))
		return
	default:
		s.renderError(w, r, http.StatusBadRequest, "Choose Allow or Deny.", "")
		return
	}
	if r.PostFormValue("remember") == "true" {
		if err := s.store.SaveConsent(r.Context(), user.Username, ar.GetClient().GetID(), ar.GetRequestedScopes()); err != nil {
			s.renderStorageError(w, r, err)
			return
		}
	}
	s.finish(w, r, ar, challenge, user, ls)
}
