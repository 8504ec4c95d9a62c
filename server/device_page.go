package server

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"

	"github.com/ory/fosite"

	"github.com/latchauth/latch/storage"
	"github.com/latchauth/latch/templates"
	"github.com/latchauth/latch/users"
)

// handleDevice is GET and POST /device, the page of RFC 8628 §3.3 where a
// person connects a device. GET shows the code entry, prefilled from
// ?user_code= (verification_uri_complete). Every POST carries the user
// code (typed, or hidden in the later forms) and is one step:
//
//	code entry  → the login form, or the consent form when signed in
//	login form  → the consent form (the same login as /login: the same
//	              users, rate limits and session cookie)
//	consent     → allow or deny, then a page that sends the person back
//	              to the device
//
// Each step looks the code up again, so a code that expired, was decided
// in another tab or was revoked meanwhile stops the flow. The consent page
// is always shown, even to a skip_consent client or after a remembered
// consent: it is the person's one chance to see which client they are
// connecting (RFC 8628 §5.4, remote phishing).
func (s *Server) handleDevice(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		typed := r.URL.Query().Get("user_code")
		if code, ok := normalizeUserCode(typed); ok {
			typed = formatUserCode(code)
		} else if len(typed) > 32 {
			typed = typed[:32]
		}
		s.renderDeviceEntry(w, r, http.StatusOK, typed, "")
		return
	}
	code, dc := s.enteredDeviceCode(w, r)
	if dc == nil {
		return
	}
	if _, loggingIn := r.PostForm["password"]; loggingIn {
		s.deviceLogin(w, r, code, dc)
		return
	}
	ls, err := s.currentSession(r)
	if err != nil {
		s.renderStorageError(w, r, err)
		return
	}
	var user *storage.User
	if ls != nil {
		user, err = s.store.GetUser(r.Context(), ls.Username)
		if errors.Is(err, storage.ErrNotFound) {
			ls, user = nil, nil // the user was deleted: the session means nothing
		} else if err != nil {
			s.renderStorageError(w, r, err)
			return
		}
	}
	if user != nil {
		need, err := s.needSecondFactor(r.Context(), user.Username, ls.AMR, s.mfaPolicy(dc.Request.GetClient(), nil))
		if err != nil {
			s.renderStorageError(w, r, err)
			return
		}
		if need {
			p := deviceReturn(code)
			p.Username, p.AMR, p.Connector = user.Username, ls.AMR, ls.Connector
			s.askSecondFactor(w, r, p)
			return
		}
	}
	switch {
	case user == nil:
		s.renderDeviceLogin(w, r, code, dc, http.StatusOK, "", "")
	case r.PostForm.Has("decision"):
		s.deviceDecide(w, r, code, dc, user, ls)
	default:
		s.renderDeviceConsent(w, r, code, dc, user)
	}
}

// enteredDeviceCode returns the normalized user code of the form and its
// pending device authorization, or shows the code entry again with an
// error and returns nil. Wrong codes are throttled per address, like
// failed logins (deviceGuessRule), far too slowly to guess a code before
// it expires.
func (s *Server) enteredDeviceCode(w http.ResponseWriter, r *http.Request) (string, *storage.DeviceCode) {
	typed := r.PostFormValue("user_code")
	guesses := users.NewCounter("device addr", s.clientKey(r), deviceGuessRule)
	if wait, err := s.guessThrottle.Wait(r.Context(), guesses); err != nil {
		s.renderStorageError(w, r, err)
		return "", nil
	} else if wait > 0 {
		setRetryAfter(w, wait)
		s.renderDeviceEntry(w, r, http.StatusTooManyRequests, typed, "Too many wrong codes. Wait a minute, then try again.")
		return "", nil
	}
	code, ok := normalizeUserCode(typed)
	var dc *storage.DeviceCode
	var err error
	if ok {
		dc, err = s.store.GetDeviceCodeByUserCode(r.Context(), code)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			s.renderStorageError(w, r, err)
			return "", nil
		}
	}
	if dc == nil {
		if err := s.guessThrottle.Fail(r.Context(), guesses); err != nil {
			s.renderStorageError(w, r, err)
			return "", nil
		}
		s.renderDeviceEntry(w, r, http.StatusBadRequest, typed,
			"That code is not valid, or it has expired. Check the code your device shows and try again.")
		return "", nil
	}
	return code, dc
}

// deviceLogin checks the login form exactly as /login does, then asks for
// consent.
func (s *Server) deviceLogin(w http.ResponseWriter, r *http.Request, code string, dc *storage.DeviceCode) {
	user, ok := s.signIn(w, r, func(status int, username, msg string) {
		s.renderDeviceLogin(w, r, code, dc, status, username, msg)
	})
	if !ok {
		return
	}
	if _, ok := s.completeSignIn(w, r, user.Username, []string{amrPassword}, s.mfaPolicy(dc.Request.GetClient(), nil), deviceReturn(code)); !ok {
		return
	}
	s.renderDeviceConsent(w, r, code, dc, user)
}

// deviceDecide records the person's decision on the consent form.
func (s *Server) deviceDecide(w http.ResponseWriter, r *http.Request, code string, dc *storage.DeviceCode, user *storage.User, ls *storage.LoginSession) {
	ctx := r.Context()
	req, ok := dc.Request.(*fosite.Request)
	if !ok {
		s.renderStorageError(w, r, errors.New("device request of unexpected type"))
		return
	}
	var err error
	switch r.PostFormValue("decision") {
	case "allow":
		ar := &fosite.AuthorizeRequest{Request: *req}
		for _, scope := range ar.GetRequestedScopes() {
			ar.GrantScope(scope)
		}
		for _, aud := range ar.GetRequestedAudience() {
			ar.GrantAudience(aud)
		}
		// A session from an upstream sign-in marks the device's grant
		// too: its refreshes ask the upstream (upstream_refresh.go).
		sess := viaConnector(s.userSession(ar, user, ls), ls.Connector)
		if err = s.recordSessionClient(ctx, ls, req.GetClient()); err == nil {
			err = s.store.ApproveDeviceCode(ctx, code, ar.GetGrantedScopes(), ar.GetGrantedAudience(), sess)
		}
	case "deny":
		err = s.store.DenyDeviceCode(ctx, code)
	default:
		s.renderError(w, r, http.StatusBadRequest, "Choose Allow or Deny.", "")
		return
	}
	switch {
	case errors.Is(err, storage.ErrNotFound):
		s.renderDeviceEntry(w, r, http.StatusBadRequest, "",
			"That code has expired or was already used. Start again on your device.")
		return
	case err != nil:
		s.renderStorageError(w, r, err)
		return
	}
	name := clientName(req.GetClient())
	done := templates.ErrorData{Page: s.page(r, "Device connected"),
		Message: "You can close this page and return to your device: it continues on its own.",
		Hint:    name + " now has the access you allowed."}
	if r.PostFormValue("decision") == "deny" {
		done = templates.ErrorData{Page: s.page(r, "Access denied"),
			Message: name + " was not given access to your account.",
			Hint:    "You can close this page."}
	}
	s.render(w, r, http.StatusOK, func(b *bytes.Buffer) error { return s.pages.Error(b, done) })
}

func (s *Server) renderDeviceEntry(w http.ResponseWriter, r *http.Request, status int, typed, msg string) {
	s.render(w, r, status, func(b *bytes.Buffer) error {
		return s.pages.Device(b, templates.DeviceData{Page: s.page(r, ""), Action: pathDevice, UserCode: typed, Error: msg})
	})
}

func (s *Server) renderDeviceLogin(w http.ResponseWriter, r *http.Request, code string, dc *storage.DeviceCode, status int, username, msg string) {
	s.render(w, r, status, func(b *bytes.Buffer) error {
		return s.pages.Login(b, templates.LoginData{
			Page:       s.page(r, ""),
			Action:     pathDevice,
			ClientName: clientName(dc.Request.GetClient()),
			Username:   username,
			Error:      msg,
			Hidden:     map[string]string{"user_code": formatUserCode(code)},
		})
	})
}

func (s *Server) renderDeviceConsent(w http.ResponseWriter, r *http.Request, code string, dc *storage.DeviceCode, user *storage.User) {
	s.render(w, r, http.StatusOK, func(b *bytes.Buffer) error {
		return s.pages.Consent(b, templates.ConsentData{
			Page:       s.page(r, ""),
			Action:     pathDevice,
			ClientName: clientName(dc.Request.GetClient()),
			ClientID:   dc.Request.GetClient().GetID(),
			Username:   user.Username,
			Scopes:     scopeList(dc.Request.GetRequestedScopes()),
			Hidden:     map[string]string{"user_code": formatUserCode(code)},
		})
	})
}

// deviceReturn is the second-factor step of a sign-in on the device page:
// it comes back to the code entry, prefilled.
func deviceReturn(code string) mfaPending {
	return mfaPending{Return: pathDevice + "?user_code=" + url.QueryEscape(formatUserCode(code))}
}
