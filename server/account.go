package server

import (
	"bytes"
	"errors"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/latchauth/latch/passhash"
	"github.com/latchauth/latch/storage"
	"github.com/latchauth/latch/templates"
)

// The account page: a signed-in person looks after their own account with
// the login page's session cookie. Every action is a form posted below
// /account (CSRF-protected like the other pages) that answers with a
// redirect back to the page (POST/redirect/GET), so it works without
// JavaScript and a reload never posts twice.
const (
	pathAccount         = "/account"
	pathAccountLogin    = pathAccount + "/login"
	pathAccountPassword = pathAccount + "/password"
	pathAccountSessions = pathAccount + "/sessions/end"
	pathAccountRevoke   = pathAccount + "/applications/revoke"
)

// Password rules of the account page. The maximum caps the cost of
// hashing what a signed-in person posts.
const (
	minPasswordLength = 8
	maxPasswordLength = 256
)

// accountNotices are the messages a redirect back to the page may ask for
// (?done=): a closed set, so the query cannot put words on the page.
var accountNotices = map[string]string{
	"password": "Password changed. Every other session was signed out.",
	"session":  "That session was signed out.",
	"revoked":  "Access revoked: the application's tokens no longer work, and it will ask again.",

	"totp-added":   "Authenticator app added: signing in now asks for one of its codes or a passkey.",
	"totp-removed": "Authenticator app turned off; its recovery codes no longer work.",
	"codes":        "New recovery codes made; the old ones no longer work.",

	"passkey-added":   "Passkey added. You can now sign in with it alone.",
	"passkey-renamed": "Passkey renamed.",
	"passkey-removed": "Passkey removed.",
}

// handleAccount is GET /account: the account page, or a sign-in form for
// a browser without a session.
func (s *Server) handleAccount(w http.ResponseWriter, r *http.Request) {
	ls, err := s.currentSession(r)
	if err != nil {
		s.renderStorageError(w, r, err)
		return
	}
	if ls == nil {
		s.renderAccountLogin(w, r, http.StatusOK, "", "")
		return
	}
	s.renderAccount(w, r, ls, http.StatusOK, accountNotices[r.URL.Query().Get("done")], "")
}

// handleAccountLogin is POST /account/login: signing in to the account
// page itself, outside any authorization request.
func (s *Server) handleAccountLogin(w http.ResponseWriter, r *http.Request) {
	user, amr, ok := s.anySignIn(w, r, func(status int, username, msg string) {
		s.renderAccountLogin(w, r, status, username, msg)
	})
	if !ok {
		return
	}
	// A person with a second factor gives it here too (/login/mfa), then
	// comes back to the page.
	if _, ok := s.completeSignIn(w, r, user.Username, amr, s.cfg.MFARequired, mfaPending{Return: pathAccount}); !ok {
		return
	}
	http.Redirect(w, r, pathAccount, http.StatusSeeOther)
}

func (s *Server) renderAccountLogin(w http.ResponseWriter, r *http.Request, status int, username, msg string) {
	s.render(w, r, status, func(b *bytes.Buffer) error {
		return s.pages.Login(b, templates.LoginData{Page: s.page(r, ""), Action: pathAccountLogin, Username: username, Error: msg,
			PasskeyBegin: s.passkeyBegin()})
	})
}

// accountSession is the session of a posted account form; without one the
// browser is sent to the page, which asks it to sign in.
func (s *Server) accountSession(w http.ResponseWriter, r *http.Request) (*storage.LoginSession, bool) {
	ls, err := s.currentSession(r)
	if err != nil {
		s.renderStorageError(w, r, err)
		return nil, false
	}
	if ls == nil {
		http.Redirect(w, r, pathAccount, http.StatusSeeOther)
		return nil, false
	}
	return ls, true
}

// handleAccountPassword is POST /account/password. The current password is
// checked under the login throttling, so the form is no way around it;
// the change ends every other session of the person.
func (s *Server) handleAccountPassword(w http.ResponseWriter, r *http.Request) {
	ls, ok := s.accountSession(w, r)
	if !ok {
		return
	}
	current, next := r.PostFormValue("current_password"), r.PostFormValue("new_password")
	fail := func(status int, msg string) { s.renderAccount(w, r, ls, status, "", msg) }
	switch {
	case utf8.RuneCountInString(next) < minPasswordLength:
		fail(http.StatusBadRequest, "The new password must have at least 8 characters.")
		return
	case len(next) > maxPasswordLength:
		fail(http.StatusBadRequest, "The new password must have at most 256 bytes.")
		return
	case next != r.PostFormValue("confirm_password"):
		fail(http.StatusBadRequest, "The new passwords do not match.")
		return
	}
	if _, ok := s.checkPassword(w, r, ls.Username, current, "The current password is wrong.", fail); !ok {
		return
	}
	hash, err := passhash.Hash(next)
	if err != nil {
		s.renderStorageError(w, r, err)
		return
	}
	if err := s.store.ChangePassword(r.Context(), ls.Username, hash, ls.ID); err != nil {
		s.renderStorageError(w, r, err)
		return
	}
	s.logoutsQueued()
	s.log.InfoContext(r.Context(), "account: password changed", "username", ls.Username)
	http.Redirect(w, r, pathAccount+"?done=password", http.StatusSeeOther)
}

// handleAccountEndSession is POST /account/sessions/end: sign out one of
// the person's sessions, this browser's included.
func (s *Server) handleAccountEndSession(w http.ResponseWriter, r *http.Request) {
	ls, ok := s.accountSession(w, r)
	if !ok {
		return
	}
	handle := r.PostFormValue("session")
	err := s.store.EndSessionView(r.Context(), ls.Username, handle)
	if err == nil {
		s.logoutsQueued()
	}
	if err == nil && handle == storage.SessionHandle(ls.ID) {
		http.SetCookie(w, s.cookie("", time.Unix(0, 0)))
		http.Redirect(w, r, pathAccount, http.StatusSeeOther)
		return
	}
	s.accountOutcome(w, r, ls, err, "That session has already ended.", "session")
}

// accountOutcome answers an account action that changed one thing of the
// person's: back to the page with the notice done, or the page again with
// gone when there was no such thing (of theirs), or the storage error.
func (s *Server) accountOutcome(w http.ResponseWriter, r *http.Request, ls *storage.LoginSession, err error, gone, done string) {
	switch {
	case errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrAlreadyExists):
		s.renderAccount(w, r, ls, http.StatusBadRequest, "", gone)
	case err != nil:
		s.renderStorageError(w, r, err)
	default:
		http.Redirect(w, r, pathAccount+"?done="+done, http.StatusSeeOther)
	}
}

// handleAccountRevoke is POST /account/applications/revoke: the remembered
// consent goes, and every token of the person issued to that client stops
// working at once (introspection answers inactive).
func (s *Server) handleAccountRevoke(w http.ResponseWriter, r *http.Request) {
	ls, ok := s.accountSession(w, r)
	if !ok {
		return
	}
	clientID := r.PostFormValue("client_id")
	n, err := s.store.RevokeGrant(r.Context(), ls.Username, clientID)
	if err == nil {
		s.log.InfoContext(r.Context(), "account: application revoked", "username", ls.Username, "client_id", clientID, "grants", n)
	}
	s.accountOutcome(w, r, ls, err, "That application has no access to revoke.", "revoked")
}
