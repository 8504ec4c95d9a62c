package server

import (
	"bytes"
	"context"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/storage"
	"github.com/latchauth/latch/templates"
	"github.com/latchauth/latch/users"
)

// The second-factor step of signing in. After the password, a person whose
// account has a second factor, or whom policy asks for one (mfa.required,
// the client's require_mfa, acr_values=urn:latch:acr:mfa), is sent to
// /login/mfa before a login session exists: one without a factor enrols
// a TOTP there first. What was verified becomes the session's amr (RFC
// 8176) and the ID token's amr and acr.
//
// Between the password and the second factor the browser holds only a
// signed, short-lived cookie naming the user and what they proved so far;
// it signs nobody in, and a code it lets one try is rate-limited like a
// password.

const (
	pathMFA   = "/login/mfa"
	mfaCookie = "latch_mfa"
	// mfaPendingLifespan is how long a person has for the second factor
	// after the password.
	mfaPendingLifespan = 10 * time.Minute

	// acrMFA is the authentication context class of a sign-in with a
	// second factor; acr_values asking for it asks for one.
	acrMFA = "urn:latch:acr:mfa"
	// acrPassword is the class of a sign-in with a password alone.
	acrPassword = "urn:latch:acr:pwd"
	// acrFederated is the class of a sign-in at an upstream identity
	// provider alone: what the upstream checked is its own affair.
	acrFederated = "urn:latch:acr:fed"

	amrPassword    = "pwd" // RFC 8176 §2
	amrOTP         = "otp"
	amrMFA         = "mfa"
	amrHardwareKey = "hwk" // a passkey bound to its authenticator
	amrSoftwareKey = "swk" // a synced passkey
)

// mfaPending is what the browser carries between the password and the
// second factor, in a cookie signed and encrypted like the session's.
type mfaPending struct {
	Username string
	AMR      []string // verified so far
	// Challenge is the authorization request to go on with; Return, when
	// there is none, the page to go back to (the device page).
	Challenge string
	Return    string
	// Connector is the upstream the person signed in through, "" for
	// none: the session records it.
	Connector string
	// Done: the factor was just enrolled and the session started; the
	// recovery codes page's Continue link finishes the sign-in.
	Done    bool
	Expires int64
}

// mfaPolicy reports whether policy asks for a second factor for a sign-in
// to client with the authorization request parameters form (nil: none).
func (s *Server) mfaPolicy(client fosite.Client, form url.Values) bool {
	if s.cfg.MFARequired {
		return true
	}
	if c, ok := client.(*clients.Client); ok && c.RequireMFA {
		return true
	}
	return slices.Contains(strings.Fields(form.Get("acr_values")), acrMFA)
}

// secondFactors lists the kinds of second factor username has confirmed
// (storage.FactorTOTP, storage.FactorPasskey). It is the one place that
// says what counts as a factor: a passkey counts only while this issuer
// can use passkeys (an issuer moved to an IP address cannot), so nobody
// is asked for a factor they cannot give.
func (s *Server) secondFactors(ctx context.Context, username string) ([]string, error) {
	all, err := s.store.SecondFactors(ctx, []string{username})
	if err != nil {
		return nil, err
	}
	factors := all[username]
	if s.webauthn == nil {
		factors = slices.DeleteFunc(factors, func(f string) bool { return f == storage.FactorPasskey })
	}
	return factors, nil
}

func hasFactor(factors []string, kind string) bool { return slices.Contains(factors, kind) }

// needSecondFactor reports whether someone who proved amr as username must
// still give a second factor: they have one (a person with a factor is
// always asked), or required says so, and amr has none yet.
func (s *Server) needSecondFactor(ctx context.Context, username string, amr []string, required bool) (bool, error) {
	if slices.Contains(amr, amrMFA) {
		return false, nil
	}
	if required {
		return true, nil
	}
	factors, err := s.secondFactors(ctx, username)
	return len(factors) > 0, err
}

// completeSignIn starts the session of username, who proved amr, unless a
// second factor is still needed: then it sends the browser to /login/mfa
// carrying next, and returns false. It has answered whenever it returns
// false.
func (s *Server) completeSignIn(w http.ResponseWriter, r *http.Request, username string, amr []string, required bool, next mfaPending) (*storage.LoginSession, bool) {
	need, err := s.needSecondFactor(r.Context(), username, amr, required)
	if err != nil {
		s.renderStorageError(w, r, err)
		return nil, false
	}
	if need {
		next.Username, next.AMR = username, amr
		s.askSecondFactor(w, r, next)
		return nil, false
	}
	ls, err := s.startSession(w, r, username, amr, next.Connector)
	if err != nil {
		s.renderStorageError(w, r, err)
		return nil, false
	}
	return ls, true
}

// askSecondFactor hands p to the browser and sends it to /login/mfa.
func (s *Server) askSecondFactor(w http.ResponseWriter, r *http.Request, p mfaPending) {
	if err := s.setPending(w, p); err != nil {
		s.renderStorageError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, pathMFA+"?challenge="+url.QueryEscape(p.Challenge), http.StatusFound)
}

func (s *Server) setPending(w http.ResponseWriter, p mfaPending) error {
	expires := s.now().Add(mfaPendingLifespan)
	p.Expires = expires.Unix()
	value, err := s.cookies.Encode(mfaCookie, p)
	if err != nil {
		return err
	}
	c := s.cookie(value, expires)
	c.Name = mfaCookie
	http.SetCookie(w, c)
	return nil
}

func (s *Server) clearPending(w http.ResponseWriter) {
	c := s.cookie("", time.Unix(0, 0))
	c.Name = mfaCookie
	http.SetCookie(w, c)
}

// pending returns the browser's unexpired second-factor step for the
// challenge of the request, or false.
func (s *Server) pending(r *http.Request) (mfaPending, bool) {
	var p mfaPending
	c, err := r.Cookie(mfaCookie)
	if err != nil || s.cookies.Decode(mfaCookie, c.Value, &p) != nil {
		return mfaPending{}, false
	}
	if s.now().Unix() > p.Expires || p.Challenge != r.FormValue("challenge") {
		return mfaPending{}, false
	}
	return p, true
}

// handleMFA is GET and POST /login/mfa: the second factor, or its
// enrolment, of a sign-in in progress.
func (s *Server) handleMFA(w http.ResponseWriter, r *http.Request) {
	p, ok := s.pending(r)
	if !ok {
		s.renderError(w, r, http.StatusBadRequest, "This sign-in has expired or was already completed.",
			"Go back to the application and start again.")
		return
	}
	if p.Done {
		ls, err := s.currentSession(r)
		if err != nil {
			s.renderStorageError(w, r, err)
			return
		}
		s.afterSecondFactor(w, r, p, ls)
		return
	}
	factors, err := s.secondFactors(r.Context(), p.Username)
	if err != nil {
		s.renderStorageError(w, r, err)
		return
	}
	if r.Method == http.MethodGet {
		s.renderMFA(w, r, p, factors, http.StatusOK, "")
		return
	}
	proved, codes, err := s.secondFactorAnswer(r, p, factors)
	if !s.factorAccepted(w, r, err, func(status int, msg string) { s.renderMFA(w, r, p, factors, status, msg) }) {
		return
	}
	ls, err := s.replaceSession(w, r, p.Username, union(p.AMR, append(proved, amrMFA)...), p.Connector)
	if err != nil {
		s.renderStorageError(w, r, err)
		return
	}
	if codes == nil {
		s.afterSecondFactor(w, r, p, ls)
		return
	}
	p.Done = true
	if err := s.setPending(w, p); err != nil {
		s.renderStorageError(w, r, err)
		return
	}
	s.renderRecoveryCodes(w, r, codes, pathMFA+"?challenge="+url.QueryEscape(p.Challenge))
}

// secondFactorAnswer checks what the second-factor form posted for p: a
// passkey (the page's script posts its answer), the first code of a TOTP
// enrolment (then it returns the new recovery codes too), or a TOTP or
// recovery code. It returns what was proved (RFC 8176 amr).
func (s *Server) secondFactorAnswer(r *http.Request, p mfaPending, factors []string) (amr, codes []string, err error) {
	switch {
	case r.PostFormValue("passkey_ceremony") != "":
		amr, err = s.passkeySecondFactor(r, p.Username)
		return amr, nil, err
	case len(factors) == 0:
		codes, err = s.users.ConfirmTOTP(r.Context(), p.Username, r.PostFormValue("enrolment"), r.PostFormValue("code"), s.clientKey(r), s.now())
	default:
		_, err = s.users.VerifySecondFactor(r.Context(), p.Username, r.PostFormValue("code"), s.clientKey(r), s.now())
	}
	return []string{amrOTP}, codes, err
}

// factorAccepted reports whether err accepts a second factor (or a
// re-authentication on the account page); otherwise it has answered:
// rerender shows the form again with why (wrong, used, throttled), a
// database failure gets the storage error page.
func (s *Server) factorAccepted(w http.ResponseWriter, r *http.Request, err error, rerender func(status int, msg string)) bool {
	var limited *users.RateLimitedError
	switch {
	case err == nil:
		return true
	case errors.As(err, &limited):
		setRetryAfter(w, limited.RetryAfter)
		rerender(http.StatusTooManyRequests, waitMessage(limited.RetryAfter))
	case errors.Is(err, users.ErrWrongCode):
		// RFC 9110 §15.5.2, as on the login form: the form is the way in.
		w.Header().Set("WWW-Authenticate", `Form realm="latch"`)
		rerender(http.StatusUnauthorized, "That code is wrong or was already used.")
	case errors.Is(err, errPasskeyRefused):
		w.Header().Set("WWW-Authenticate", `Form realm="latch"`)
		rerender(http.StatusUnauthorized, "That passkey was not accepted. Try again.")
	default:
		s.renderStorageError(w, r, err)
	}
	return false
}

// replaceSession starts the session of a completed sign-in and ends the
// browser's earlier one (a step up from a password-only session).
func (s *Server) replaceSession(w http.ResponseWriter, r *http.Request, username string, amr []string, connector string) (*storage.LoginSession, error) {
	old, err := s.currentSession(r)
	if err != nil {
		return nil, err
	}
	ls, err := s.startSession(w, r, username, amr, connector)
	if err != nil {
		return nil, err
	}
	if old != nil {
		if err := s.store.DeleteLoginSession(r.Context(), old.ID); err != nil {
			return nil, err
		}
	}
	return ls, nil
}

// afterSecondFactor goes on with what the sign-in was for, signed in
// as ls.
func (s *Server) afterSecondFactor(w http.ResponseWriter, r *http.Request, p mfaPending, ls *storage.LoginSession) {
	s.clearPending(w)
	if p.Challenge == "" {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, p.Return, http.StatusFound)
		return
	}
	challenge, ar := s.loadChallenge(w, r)
	if ar == nil {
		return
	}
	if ls == nil || ls.Username != p.Username {
		s.redirectToPage(w, r, ar, challenge, pathLogin)
		return
	}
	s.proceed(w, r, ar, challenge, ls, true)
}

// renderMFA shows the second-factor form of the factors the person has:
// a code (TOTP or recovery code) and a passkey; with none, the enrolment
// of a TOTP (totpEnrolment).
func (s *Server) renderMFA(w http.ResponseWriter, r *http.Request, p mfaPending, factors []string, status int, msg string) {
	d := templates.MFAData{Page: s.page(r, ""), Action: pathMFA, Username: p.Username, Error: msg,
		Hidden: map[string]string{"challenge": p.Challenge},
		Code:   hasFactor(factors, storage.FactorTOTP), PasskeyBegin: s.mfaPasskeyBegin(p, factors)}
	if len(factors) == 0 && !s.totpEnrolment(w, r, p.Username, &d) {
		return
	}
	s.render(w, r, status, func(b *bytes.Buffer) error { return s.pages.MFA(b, d) })
}

// totpEnrolment fills d with a TOTP enrolment for username: a new seed
// each time the page is opened, so a seed shown in another browser
// (someone else with the password) is never offered here; after a
// mistyped code, the same seed again if it is still the one the form
// named (the app has scanned it already). On a storage failure it has
// answered and returns false.
func (s *Server) totpEnrolment(w http.ResponseWriter, r *http.Request, username string, d *templates.MFAData) bool {
	issuer := "Latch"
	if u, err := url.Parse(s.cfg.Issuer); err == nil && u.Hostname() != "" {
		issuer = u.Hostname()
	}
	var e *users.TOTPEnrolment
	var err error
	if shown := r.PostFormValue("enrolment"); shown != "" {
		e, err = s.users.PendingTOTP(r.Context(), issuer, username)
		if errors.Is(err, storage.ErrNotFound) || (err == nil && e.Fingerprint != shown) {
			e, err = nil, nil
		}
	}
	if e == nil && err == nil {
		e, err = s.users.NewTOTP(r.Context(), issuer, username)
	}
	if err != nil {
		s.renderStorageError(w, r, err)
		return false
	}
	d.Title, d.QRCode, d.Secret, d.Code, d.PasskeyBegin = "Set up a second factor", template.URL(e.QRCode), e.Secret, true, ""
	if d.Hidden == nil {
		d.Hidden = map[string]string{}
	}
	d.Hidden["enrolment"] = e.Fingerprint
	return true
}

// acrOf is the authentication context class of a session that proved amr.
func acrOf(amr []string) string {
	switch {
	case slices.Contains(amr, amrMFA):
		return acrMFA
	case slices.Contains(amr, amrFederated):
		return acrFederated
	}
	return acrPassword
}

// union is a with every value of more it lacks, in order.
func union(a []string, more ...string) []string {
	out := slices.Clone(a)
	for _, v := range more {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}
