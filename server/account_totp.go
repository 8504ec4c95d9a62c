package server

import (
	"bytes"
	"net/http"

	"github.com/latchauth/latch/storage"
	"github.com/latchauth/latch/templates"
)

// The authenticator app (TOTP) on the account page: enrol one, turn it
// off, get new recovery codes. Each needs the person to prove again who
// they are (reauthenticate): a session cookie alone, stolen or left on a
// shared computer, must not be enough to lock the owner out with a factor
// they do not have, to take their factor away, or to read new recovery
// codes.
const (
	pathAccountTOTP     = pathAccount + "/totp"
	pathAccountTOTPEdit = pathAccount + "/totp/edit"
)

// reauthenticate checks the proof posted with an account change: a
// current code of the person's authenticator app (or a recovery code,
// then spent) in current_code, or else their password in
// current_password; both under the login throttling. On failure it has
// answered through fail, as checkPassword does.
func (s *Server) reauthenticate(w http.ResponseWriter, r *http.Request, ls *storage.LoginSession, fail func(status int, msg string)) bool {
	if code := r.PostFormValue("current_code"); code != "" {
		_, err := s.users.VerifySecondFactor(r.Context(), ls.Username, code, s.clientKey(r), s.now())
		return s.factorAccepted(w, r, err, fail)
	}
	_, ok := s.checkPassword(w, r, ls.Username, r.PostFormValue("current_password"), "The current password is wrong.", fail)
	return ok
}

// handleAccountTOTP is GET and POST /account/totp: the enrolment of an
// authenticator app, as on the second-factor step of signing in (QR code
// drawn by the server, the secret in text, a new seed per opening), plus
// the person's password. The first right code turns it on and shows the
// ten recovery codes once.
func (s *Server) handleAccountTOTP(w http.ResponseWriter, r *http.Request) {
	ls, ok := s.accountSession(w, r)
	if !ok {
		return
	}
	factors, err := s.secondFactors(r.Context(), ls.Username)
	if err != nil {
		s.renderStorageError(w, r, err)
		return
	}
	if hasFactor(factors, storage.FactorTOTP) {
		http.Redirect(w, r, pathAccount, http.StatusSeeOther)
		return
	}
	render := func(status int, msg string) {
		d := templates.MFAData{Page: s.page(r, ""), Action: pathAccountTOTP, Error: msg, Reauth: true, Cancel: pathAccount}
		if s.totpEnrolment(w, r, ls.Username, &d) {
			s.render(w, r, status, func(b *bytes.Buffer) error { return s.pages.MFA(b, d) })
		}
	}
	if r.Method == http.MethodGet {
		render(http.StatusOK, "")
		return
	}
	if !s.reauthenticate(w, r, ls, render) {
		return
	}
	codes, err := s.users.ConfirmTOTP(r.Context(), ls.Username, r.PostFormValue("enrolment"), r.PostFormValue("code"), s.clientKey(r), s.now())
	if !s.factorAccepted(w, r, err, render) {
		return
	}
	s.log.InfoContext(r.Context(), "account: authenticator app added", "username", ls.Username)
	s.renderRecoveryCodes(w, r, codes, pathAccount+"?done=totp-added")
}

// handleAccountTOTPEdit is POST /account/totp/edit: new recovery codes
// (action=codes; the old ones stop working) or turning the authenticator
// app off (action=remove; its recovery codes go with it, passkeys stay).
func (s *Server) handleAccountTOTPEdit(w http.ResponseWriter, r *http.Request) {
	ls, ok := s.accountSession(w, r)
	if !ok {
		return
	}
	fail := func(status int, msg string) { s.renderAccount(w, r, ls, status, "", msg) }
	action := r.PostFormValue("action")
	if action != "codes" && action != "remove" {
		fail(http.StatusBadRequest, "Choose New recovery codes or Turn off.")
		return
	}
	factors, err := s.secondFactors(r.Context(), ls.Username)
	if err != nil {
		s.renderStorageError(w, r, err)
		return
	}
	if !hasFactor(factors, storage.FactorTOTP) {
		fail(http.StatusBadRequest, "You have no authenticator app set up.")
		return
	}
	if !s.reauthenticate(w, r, ls, fail) {
		return
	}
	if action == "remove" {
		err := s.store.DeleteTOTP(r.Context(), ls.Username)
		if err == nil {
			s.log.InfoContext(r.Context(), "account: authenticator app removed", "username", ls.Username)
		}
		s.accountOutcome(w, r, ls, err, "You have no authenticator app set up.", "totp-removed")
		return
	}
	codes, err := s.users.NewRecoveryCodes(r.Context(), ls.Username)
	if err != nil {
		s.renderStorageError(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "account: recovery codes replaced", "username", ls.Username)
	s.renderRecoveryCodes(w, r, codes, pathAccount+"?done=codes")
}

// renderRecoveryCodes shows new recovery codes, once (the page is not
// stored: Cache-Control no-store like every page), with a link on.
func (s *Server) renderRecoveryCodes(w http.ResponseWriter, r *http.Request, codes []string, next string) {
	s.render(w, r, http.StatusOK, func(b *bytes.Buffer) error {
		return s.pages.MFA(b, templates.MFAData{Page: s.page(r, "Recovery codes"), RecoveryCodes: codes, Continue: next})
	})
}
