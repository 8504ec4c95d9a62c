package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/gorilla/mux"
	"github.com/ory/fosite"
	"golang.org/x/oauth2"

	"github.com/latchauth/latch/connector"
	"github.com/latchauth/latch/storage"
	"github.com/latchauth/latch/users"
)

// Signing in through an upstream identity provider. GET /login/ID starts
// it for the authorization request waiting under ?challenge=: a redirect
// connector sends the browser upstream with a fresh state, nonce and PKCE
// verifier, kept server-side as a single-use ceremony bound to the
// browser (binding.go) and counted per address; a password connector
// (LDAP) shows its own password form, whose POST checks it under the
// login throttling. GET /login/ID/callback takes the upstream's answer:
// the ceremony is spent first (a replayed callback finds none), then the
// connector checks the answer, and the person goes on as after a
// password: MFA where required, consent.

// upstreamAttempt is what the ceremony of one upstream sign-in keeps.
type upstreamAttempt struct {
	Connector string `json:"connector"`
	Challenge string `json:"challenge"`
	Nonce     string `json:"nonce"`
	Verifier  string `json:"verifier"`
}

// maxStateBytes caps the state a callback may carry: ours are 43 bytes.
const maxStateBytes = 128

func randomToken() (string, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(raw), nil
}

// loadUpstream is the connector named by the route, or it shows the
// error page and returns nil.
func (s *Server) loadUpstream(w http.ResponseWriter, r *http.Request) *upstream {
	up, err := s.findUpstream(r.Context(), mux.Vars(r)["connector"])
	if err != nil {
		s.renderStorageError(w, r, err)
		return nil
	}
	if up == nil {
		s.renderError(w, r, http.StatusNotFound, "This way of signing in is not offered here.",
			"Go back to the application and choose another way to sign in.")
		return nil
	}
	return up
}

// handleUpstreamLogin is GET /login/ID (and POST for a password
// connector's form).
func (s *Server) handleUpstreamLogin(w http.ResponseWriter, r *http.Request) {
	challenge, ar := s.loadChallenge(w, r)
	if ar == nil {
		return
	}
	up := s.loadUpstream(w, r)
	if up == nil {
		return
	}
	if up.password != nil {
		s.upstreamPasswordForm(w, r, up, challenge, ar)
		return
	}
	if r.Method != http.MethodGet {
		s.renderError(w, r, http.StatusMethodNotAllowed, "This way of signing in has no form.", "Go back to the application and start again.")
		return
	}
	s.startUpstream(w, r, up, challenge)
}

// startUpstream keeps a new attempt and sends the browser upstream.
func (s *Server) startUpstream(w http.ResponseWriter, r *http.Request, up *upstream, challenge string) {
	ctx := r.Context()
	state, err1 := randomToken()
	nonce, err2 := randomToken()
	if err := errors.Join(err1, err2); err != nil {
		s.renderStorageError(w, r, err)
		return
	}
	a := upstreamAttempt{Connector: up.cfg.ID, Challenge: challenge, Nonce: nonce, Verifier: oauth2.GenerateVerifier()}
	data, err := json.Marshal(a)
	if err != nil {
		s.renderStorageError(w, r, err)
		return
	}
	// The challenge was found for this browser, so it has a binding.
	err = s.store.CreateCeremony(ctx, &storage.Ceremony{ID: challengeKey(state, browserBinding(r)), Kind: ceremonyUpstream,
		AddressKey: s.clientKey(r), Data: data, ExpiresAt: s.now().Add(upstreamAttemptLifespan)}, s.cfg.PendingPerAddress)
	if errors.Is(err, storage.ErrTooMany) {
		w.Header().Set("Retry-After", strconv.Itoa(pendingRetryAfter))
		s.renderPendingError(w, r, errTooManyPending("sign-ins"))
		return
	} else if err != nil {
		s.renderStorageError(w, r, err)
		return
	}
	to, err := up.redirect.LoginURL(state, nonce, a.Verifier)
	if err != nil {
		s.renderUpstreamError(w, r, up, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, to, http.StatusFound)
}

// handleUpstreamCallback is GET /login/ID/callback: the upstream's answer.
func (s *Server) handleUpstreamCallback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	state, binding := r.URL.Query().Get("state"), browserBinding(r)
	if state == "" || len(state) > maxStateBytes || binding == "" {
		s.renderChallengeGone(w, r)
		return
	}
	// Spent before anything else: of two uses of one answer (a reload, a
	// replay) only the first goes on.
	c, err := s.store.TakeCeremony(ctx, challengeKey(state, binding), ceremonyUpstream)
	if !s.challengeFound(w, r, err) {
		return
	}
	var a upstreamAttempt
	if err := json.Unmarshal(c.Data, &a); err != nil || a.Connector != mux.Vars(r)["connector"] {
		s.renderChallengeGone(w, r)
		return
	}
	up := s.loadUpstream(w, r)
	if up == nil {
		return
	}
	ar, err := s.store.GetAuthorizeChallenge(ctx, challengeKey(a.Challenge, binding))
	if !s.challengeFound(w, r, err) {
		return
	}
	id, err := up.redirect.HandleCallback(ctx, r, a.Nonce, a.Verifier)
	if err != nil {
		s.renderUpstreamError(w, r, up, err)
		return
	}
	s.upstreamSignedIn(w, r, up, id, amrFederated, a.Challenge, ar)
}

// upstreamPasswordForm is a password connector's form: GET shows it, POST
// checks the password at the upstream under the login throttling (the
// counters keyed by connector and username, apart from local users').
func (s *Server) upstreamPasswordForm(w http.ResponseWriter, r *http.Request, up *upstream, challenge string, ar fosite.AuthorizeRequester) {
	rerender := func(status int, username, msg string) {
		d := s.loginData(r, challenge, ar)
		d.Action, d.Via, d.Username, d.Error = upstreamStart(up.cfg.ID, challenge), up.cfg.Name, username, msg
		d.Connectors, d.NoPasswordForm, d.PasskeyBegin, d.Dev = nil, false, "", false
		s.renderLoginData(w, r, ar, status, d)
	}
	if r.Method == http.MethodGet {
		rerender(http.StatusOK, "", "")
		return
	}
	username, password := r.PostFormValue("username"), r.PostFormValue("password")
	var id connector.Identity
	err := s.users.Check(r.Context(), up.cfg.ID+"\x00"+username, s.clientKey(r), func(ctx context.Context) (bool, error) {
		if username == "" || password == "" {
			return false, nil
		}
		s.passwordChecks <- struct{}{}
		defer func() { <-s.passwordChecks }()
		got, ok, err := up.password.Login(ctx, username, password)
		id = got
		return ok, err
	})
	var limited *users.RateLimitedError
	switch {
	case errors.As(err, &limited):
		s.metrics.loginFails.Inc()
		setRetryAfter(w, limited.RetryAfter)
		rerender(http.StatusTooManyRequests, username, waitMessage(limited.RetryAfter))
	case errors.Is(err, users.ErrInvalidCredentials):
		s.metrics.loginFails.Inc()
		w.Header().Set("WWW-Authenticate", `Form realm="latch"`)
		rerender(http.StatusUnauthorized, username, "Wrong username or password.")
	case errors.Is(err, storage.ErrUnavailable):
		s.renderStorageError(w, r, err)
	case err != nil:
		s.renderUpstreamError(w, r, up, err)
	default:
		s.upstreamSignedIn(w, r, up, id, amrPassword, challenge, ar)
	}
}

// renderUpstreamError is the page of a failed upstream leg: a sentence
// for the person, the details in the log.
func (s *Server) renderUpstreamError(w http.ResponseWriter, r *http.Request, up *upstream, err error) {
	s.log.WarnContext(r.Context(), "upstream sign-in failed", "connector", up.cfg.ID, "error", err)
	name := up.cfg.Name
	var denied *connector.ErrDenied
	var upstreamErr *connector.UpstreamError
	var linkErr *linkError
	switch {
	case errors.As(err, &denied):
		s.renderError(w, r, http.StatusForbidden, "You cannot sign in here with your "+name+" account: "+denied.Reason+".",
			"Ask the people who run this service for access, or sign in another way.")
	case errors.As(err, &linkErr):
		s.renderError(w, r, http.StatusForbidden, linkErr.message(name), linkErr.hint())
	case errors.As(err, &upstreamErr) && upstreamErr.Code == "access_denied":
		s.renderError(w, r, http.StatusForbidden, "Signing in with "+name+" was cancelled or refused.",
			"Go back to the application and start again if you want to sign in.")
	case errors.As(err, &upstreamErr):
		s.renderError(w, r, http.StatusBadGateway, name+" could not sign you in.",
			"Go back to the application and try again. If it happens again, tell the people who run this service.")
	case errors.Is(err, connector.ErrMisdirected):
		s.renderError(w, r, http.StatusBadRequest, "The answer from "+name+" does not belong to this sign-in.",
			"Go back to the application and start again, in this browser.")
	default:
		s.renderError(w, r, http.StatusBadGateway, "Signing in with "+name+" did not succeed.",
			"Go back to the application and try again. If it happens again, tell the people who run this service.")
	}
}

// hintedUpstream is where the login page sends a request that names a
// connector (connector=ID, or Keycloak's idp_hint=ID) straight away; ""
// when it names none, or one that is not configured (the page is shown).
func (s *Server) hintedUpstream(r *http.Request, challenge string, ar fosite.AuthorizeRequester) string {
	form := ar.GetRequestForm()
	id := form.Get("connector")
	if id == "" {
		id = form.Get("idp_hint")
	}
	if id == "" {
		return ""
	}
	up, err := s.findUpstream(r.Context(), id)
	if err != nil || up == nil {
		return ""
	}
	return upstreamStart(up.cfg.ID, challenge)
}
