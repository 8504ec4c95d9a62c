package server

import (
	"net/http"
	"net/url"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/latchauth/latch/storage"
)

// A passkey as the second factor after a password. The person is known
// (the latch_mfa cookie names them), so the ceremony lists their passkeys
// (allowCredentials) instead of asking the authenticator who it is, and
// the answer must come from one of them. User verification is preferred,
// not required: the password was the knowledge factor, and holding the
// key is the second one.

const pathMFAPasskeyBegin = pathMFA + "/passkey/begin"

// handleMFAPasskeyBegin is POST /login/mfa/passkey/begin?challenge=: the
// options for a passkey as the second factor of the sign-in the browser
// carries.
func (s *Server) handleMFAPasskeyBegin(w http.ResponseWriter, r *http.Request) {
	p, ok := s.pending(r)
	if !ok || p.Done {
		writeJSONError(w, http.StatusBadRequest, "login_required", "This sign-in has expired or was already completed.")
		return
	}
	u, _, err := s.passkeyUserOf(r, p.Username)
	if err != nil {
		s.writeCeremonyStorageError(w, r, err)
		return
	}
	if len(u.creds) == 0 {
		writeJSONError(w, http.StatusBadRequest, "invalid_request", "This account has no passkey.")
		return
	}
	options, sd, err := s.webauthn.BeginLogin(u, webauthn.WithUserVerification(protocol.VerificationPreferred))
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, "server_error", "The passkey check could not start.")
		return
	}
	s.beginCeremony(w, r, ceremonyFactor, p.Username, options, sd)
}

// passkeySecondFactor verifies a posted passkey as username's second
// factor and returns what it proves (passkeyAMR). A ceremony begun for
// someone else, or an answer from a passkey that is not theirs, is
// errPasskeyRefused.
func (s *Server) passkeySecondFactor(r *http.Request, username string) ([]string, error) {
	c, sd, parsed, err := s.takeAssertion(r, ceremonyFactor)
	if err != nil {
		return nil, err
	}
	if c.Username != username {
		return nil, errPasskeyRefused
	}
	u, _, err := s.passkeyUserOf(r, username)
	if err != nil {
		return nil, err
	}
	cred, err := s.webauthn.ValidateLogin(u, *sd, parsed)
	if err != nil {
		return nil, errPasskeyRefused
	}
	if err := s.recordPasskeyUse(r, cred); err != nil {
		return nil, err
	}
	return passkeyAMR(cred, parsed), nil
}

// mfaPasskeyBegin is where the second-factor page's script begins a
// passkey check, "" when the person has no passkey to use here.
func (s *Server) mfaPasskeyBegin(p mfaPending, factors []string) string {
	if s.webauthn == nil || !hasFactor(factors, storage.FactorPasskey) {
		return ""
	}
	return pathMFAPasskeyBegin + "?challenge=" + url.QueryEscape(p.Challenge)
}
