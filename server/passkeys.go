package server

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/latchauth/latch/storage"
)

// Passkeys (WebAuthn, with go-webauthn): resident keys, so that a passkey
// alone signs a person in without a username. A ceremony's challenge is
// kept server-side in the database (any instance may answer the finish),
// single-use (TakeCeremony) and short-lived; an address may have only a
// few ceremonies in flight, so "begin" cannot fill the database.
const (
	pathPasskeyLoginBegin   = "/login/passkey/begin"
	pathAccountPasskeyBegin = pathAccount + "/passkeys/begin"
	pathAccountPasskeyAdd   = pathAccount + "/passkeys/add"
	pathAccountPasskeyEdit  = pathAccount + "/passkeys/edit"

	ceremonyLifespan   = 5 * time.Minute
	ceremoniesPerAddr  = 20
	maxPasskeyName     = 64
	maxCredentialBytes = 64 << 10

	ceremonyRegister = "register"
	ceremonyLogin    = "login"
	ceremonyFactor   = "mfa" // a passkey as the second factor (mfa_passkey.go)
)

// newWebAuthn is the relying party of issuer: its id is the issuer's host
// (WebAuthn binds credentials to it), its one origin the issuer's. An
// issuer on an IP address (http://127.0.0.1:8080) cannot have passkeys:
// WebAuthn relying party ids are domains. It answers nil, and the pages
// offer no passkeys.
func newWebAuthn(issuer *url.URL) (*webauthn.WebAuthn, error) {
	if _, err := netip.ParseAddr(issuer.Hostname()); err == nil {
		return nil, nil
	}
	return webauthn.New(&webauthn.Config{
		RPID:          issuer.Hostname(),
		RPDisplayName: "Latch",
		RPOrigins:     []string{issuer.Scheme + "://" + issuer.Host},
	})
}

// passkeyUser is a user as go-webauthn sees one. The user handle is an
// HMAC of the username: stable, opaque (WebAuthn §14.6.1 asks that it not
// identify the person), and checked against the stored credential's owner.
type passkeyUser struct {
	handle []byte
	name   string
	creds  []webauthn.Credential
}

func (u *passkeyUser) WebAuthnID() []byte                         { return u.handle }
func (u *passkeyUser) WebAuthnName() string                       { return u.name }
func (u *passkeyUser) WebAuthnDisplayName() string                { return u.name }
func (u *passkeyUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

func (s *Server) userHandle(username string) []byte {
	m := hmac.New(sha256.New, derive(s.cfg.SystemSecret, "latch webauthn user handle"))
	m.Write([]byte(username))
	return m.Sum(nil)
}

// passkeyUserOf loads username's passkeys for go-webauthn.
func (s *Server) passkeyUserOf(r *http.Request, username string) (*passkeyUser, []storage.Passkey, error) {
	keys, err := s.store.ListPasskeys(r.Context(), username)
	if err != nil {
		return nil, nil, err
	}
	u := &passkeyUser{handle: s.userHandle(username), name: username}
	for _, k := range keys {
		var c webauthn.Credential
		if err := json.Unmarshal(k.Credential, &c); err != nil {
			return nil, nil, errors.Join(storage.ErrUnavailable, err)
		}
		u.creds = append(u.creds, c)
	}
	return u, keys, nil
}

// beginCeremony stores the session data of a ceremony and answers the
// browser the options for navigator.credentials.
func (s *Server) beginCeremony(w http.ResponseWriter, r *http.Request, kind, username string, options any, sd *webauthn.SessionData) {
	data, err := json.Marshal(sd)
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, "server_error", "The ceremony could not be encoded.")
		return
	}
	id := randomID()
	err = s.store.CreateCeremony(r.Context(), &storage.Ceremony{ID: id, Kind: kind, Username: username,
		AddressKey: s.clientKey(r), Data: data, ExpiresAt: s.now().Add(ceremonyLifespan)}, ceremoniesPerAddr)
	switch {
	case errors.Is(err, storage.ErrTooMany):
		w.Header().Set("Retry-After", "60")
		writeJSONError(w, http.StatusTooManyRequests, "slow_down", "Too many passkey sign-ins in progress from this address.")
		return
	case err != nil:
		s.writeCeremonyStorageError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"ceremony": id, "options": options})
}

// writeCeremonyStorageError answers the script that begins a ceremony
// when the database fails: it must not think the passkey was refused.
func (s *Server) writeCeremonyStorageError(w http.ResponseWriter, r *http.Request, err error) {
	s.log.ErrorContext(r.Context(), "storage failure", "path", r.URL.Path, "error", err)
	writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "The database is unavailable.")
}

// takeCeremony returns the session data of the posted ceremony, used up.
func (s *Server) takeCeremony(r *http.Request, kind string) (*storage.Ceremony, *webauthn.SessionData, error) {
	c, err := s.store.TakeCeremony(r.Context(), r.PostFormValue("passkey_ceremony"), kind)
	if err != nil {
		return nil, nil, err
	}
	var sd webauthn.SessionData
	if err := json.Unmarshal(c.Data, &sd); err != nil {
		return nil, nil, errors.Join(storage.ErrUnavailable, err)
	}
	return c, &sd, nil
}

// postedCredential is the authenticator's answer the script posted, capped.
func postedCredential(r *http.Request) []byte {
	v := r.PostFormValue("passkey_credential")
	if len(v) > maxCredentialBytes {
		return nil
	}
	return []byte(v)
}

// handlePasskeyLoginBegin is POST /login/passkey/begin: options for a
// discoverable-credential sign-in, no username asked.
func (s *Server) handlePasskeyLoginBegin(w http.ResponseWriter, r *http.Request) {
	options, sd, err := s.webauthn.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, "server_error", "The passkey sign-in could not start.")
		return
	}
	s.beginCeremony(w, r, ceremonyLogin, "", options, sd)
}

// errPasskeyRefused is a passkey answer that does not verify.
var errPasskeyRefused = errors.New("passkey refused")

// passkeyAuthenticate verifies a posted passkey sign-in and returns the
// user it signs in and what it proves (RFC 8176 amr, passkeyAMR).
func (s *Server) passkeyAuthenticate(r *http.Request) (*storage.User, []string, error) {
	_, sd, parsed, err := s.takeAssertion(r, ceremonyLogin)
	if err != nil {
		return nil, nil, err
	}
	var owner *storage.Passkey
	var lookupErr error
	handler := func(rawID, userHandle []byte) (webauthn.User, error) {
		owner, lookupErr = s.store.GetPasskey(r.Context(), base64.RawURLEncoding.EncodeToString(rawID))
		if lookupErr != nil {
			return nil, lookupErr
		}
		if !hmac.Equal(userHandle, s.userHandle(owner.Username)) {
			return nil, errPasskeyRefused
		}
		u, _, err := s.passkeyUserOf(r, owner.Username)
		lookupErr = err
		return u, err
	}
	_, cred, err := s.webauthn.ValidatePasskeyLogin(handler, *sd, parsed)
	if lookupErr != nil && !errors.Is(lookupErr, storage.ErrNotFound) {
		return nil, nil, lookupErr
	}
	if err != nil {
		return nil, nil, errPasskeyRefused
	}
	if err := s.recordPasskeyUse(r, cred); err != nil {
		return nil, nil, err
	}
	user, err := s.store.GetUser(r.Context(), owner.Username)
	if err != nil {
		return nil, nil, err
	}
	return user, passkeyAMR(cred, parsed), nil
}

// takeAssertion takes the posted ceremony of kind, used up, and parses the
// posted assertion; a ceremony that is gone or an answer that does not
// parse is errPasskeyRefused.
func (s *Server) takeAssertion(r *http.Request, kind string) (*storage.Ceremony, *webauthn.SessionData, *protocol.ParsedCredentialAssertionData, error) {
	if s.webauthn == nil {
		return nil, nil, nil, errPasskeyRefused
	}
	c, sd, err := s.takeCeremony(r, kind)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil, nil, errPasskeyRefused
	} else if err != nil {
		return nil, nil, nil, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(postedCredential(r))
	if err != nil {
		return nil, nil, nil, errPasskeyRefused
	}
	return c, sd, parsed, nil
}

// recordPasskeyUse stores a passkey's record after a verified assertion:
// its new sign counter and flags, and when it was used.
func (s *Server) recordPasskeyUse(r *http.Request, cred *webauthn.Credential) error {
	record, err := json.Marshal(cred)
	if err != nil {
		return err
	}
	return s.store.UsePasskey(r.Context(), base64.RawURLEncoding.EncodeToString(cred.ID), record, s.now())
}

// passkeyAMR is what a verified passkey assertion proves (RFC 8176): swk
// for a backup-eligible (synced) credential, whose key may live in
// software on several devices, hwk for one bound to its authenticator;
// and mfa when the authenticator verified the user (the UV flag: a PIN or
// a biometric on top of holding the key), so that a passkey alone counts
// as two factors, as WebAuthn §6.2.3 (multi-factor capable) intends.
func passkeyAMR(cred *webauthn.Credential, parsed *protocol.ParsedCredentialAssertionData) []string {
	amr := []string{amrHardwareKey}
	if cred.Flags.BackupEligible {
		amr[0] = amrSoftwareKey
	}
	if parsed.Response.AuthenticatorData.Flags.HasUserVerified() {
		amr = append(amr, amrMFA)
	}
	return amr
}

// passkeySignIn is signIn for a posted passkey: on success the user and
// the amr it proves (passkeyAMR), for completeSignIn.
func (s *Server) passkeySignIn(w http.ResponseWriter, r *http.Request, rerender func(status int, username, msg string)) (*storage.User, []string, bool) {
	user, amr, err := s.passkeyAuthenticate(r)
	switch {
	case errors.Is(err, errPasskeyRefused):
		w.Header().Set("WWW-Authenticate", `Form realm="latch"`)
		rerender(http.StatusUnauthorized, "", "That passkey did not sign you in. Try again, or use your password.")
		return nil, nil, false
	case err != nil:
		s.renderStorageError(w, r, err)
		return nil, nil, false
	}
	return user, amr, true
}

// handleAccountPasskeyBegin is POST /account/passkeys/begin: options to
// create a resident passkey for the signed-in person; passkeys they have
// already are excluded, so one authenticator is not registered twice.
func (s *Server) handleAccountPasskeyBegin(w http.ResponseWriter, r *http.Request) {
	ls, err := s.currentSession(r)
	if err != nil || ls == nil {
		writeJSONError(w, http.StatusBadRequest, "login_required", "Sign in first.")
		return
	}
	if ls.Connector != "" {
		// A passkey would sign the person in without their upstream
		// identity provider, which could no longer refuse them.
		writeJSONError(w, http.StatusBadRequest, "invalid_request",
			"You signed in through another identity provider; a passkey here would bypass it. Sign in with your password to add one.")
		return
	}
	u, _, err := s.passkeyUserOf(r, ls.Username)
	if err != nil {
		s.writeCeremonyStorageError(w, r, err)
		return
	}
	var exclude []protocol.CredentialDescriptor
	for i := range u.creds {
		exclude = append(exclude, u.creds[i].Descriptor())
	}
	options, sd, err := s.webauthn.BeginRegistration(u,
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired),
		webauthn.WithExclusions(exclude))
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, "server_error", "The passkey registration could not start.")
		return
	}
	s.beginCeremony(w, r, ceremonyRegister, ls.Username, options, sd)
}

// handleAccountPasskeyAdd is POST /account/passkeys/add: the script posts
// the new credential as a form, with the name the person gave it and
// their password (reauthenticate: a passkey signs in alone, so a session
// cookie alone must not be enough to add one).
func (s *Server) handleAccountPasskeyAdd(w http.ResponseWriter, r *http.Request) {
	ls, ok := s.accountSession(w, r)
	if !ok {
		return
	}
	if !s.reauthenticate(w, r, ls, func(status int, msg string) { s.renderAccount(w, r, ls, status, "", msg) }) {
		return
	}
	fail := func() {
		s.renderAccount(w, r, ls, http.StatusBadRequest, "", "The passkey was not added. Try again.")
	}
	c, sd, err := s.takeCeremony(r, ceremonyRegister)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && c.Username != ls.Username) {
		fail()
		return
	} else if err != nil {
		s.renderStorageError(w, r, err)
		return
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(postedCredential(r))
	if err != nil {
		fail()
		return
	}
	u, _, err := s.passkeyUserOf(r, ls.Username)
	if err != nil {
		s.renderStorageError(w, r, err)
		return
	}
	cred, err := s.webauthn.CreateCredential(u, *sd, parsed)
	if err != nil {
		fail()
		return
	}
	record, err := json.Marshal(cred)
	if err != nil {
		s.renderStorageError(w, r, err)
		return
	}
	err = s.store.CreatePasskey(r.Context(), &storage.Passkey{ID: base64.RawURLEncoding.EncodeToString(cred.ID),
		Username: ls.Username, Name: passkeyName(r.PostFormValue("name")), Credential: record})
	s.accountOutcome(w, r, ls, err, "That passkey is registered already.", "passkey-added")
}

// handleAccountPasskeyEdit is POST /account/passkeys/edit: rename
// (action=rename, name) or remove (action=remove) one of the person's
// passkeys.
func (s *Server) handleAccountPasskeyEdit(w http.ResponseWriter, r *http.Request) {
	ls, ok := s.accountSession(w, r)
	if !ok {
		return
	}
	id := r.PostFormValue("passkey")
	var err error
	done := "passkey-renamed"
	switch r.PostFormValue("action") {
	case "rename":
		err = s.store.RenamePasskey(r.Context(), ls.Username, id, passkeyName(r.PostFormValue("name")))
	case "remove":
		err, done = s.store.DeletePasskey(r.Context(), ls.Username, id), "passkey-removed"
	default:
		s.renderAccount(w, r, ls, http.StatusBadRequest, "", "Choose Rename or Remove.")
		return
	}
	s.accountOutcome(w, r, ls, err, "That passkey is not yours or is gone.", done)
}

// needPasskeys answers 404 in place of next when this issuer cannot have
// passkeys (its host is an IP address).
func (s *Server) needPasskeys(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.webauthn == nil {
			writeJSONError(w, http.StatusNotFound, "not_found", "Passkeys need an issuer on a domain name, not an IP address.")
			return
		}
		next(w, r)
	})
}

// passkeyBegin is where the login page's script begins a passkey sign-in,
// "" when this issuer has no passkeys.
func (s *Server) passkeyBegin() string {
	if s.webauthn == nil {
		return ""
	}
	return pathPasskeyLoginBegin
}

// passkeySynced reports whether a stored passkey is backup-eligible.
func passkeySynced(k storage.Passkey) bool {
	var c webauthn.Credential
	return json.Unmarshal(k.Credential, &c) == nil && c.Flags.BackupEligible
}

// passkeyName is the name a person gave a passkey, trimmed and capped.
func passkeyName(name string) string {
	name = strings.TrimSpace(name)
	if name == "" {
		return "Passkey"
	}
	return capRunes(name, maxPasskeyName)
}

func capRunes(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n])
	}
	return s
}

func randomID() string {
	raw := make([]byte, 32)
	_, _ = rand.Read(raw) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(raw)
}
