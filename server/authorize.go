package server

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/storage"
	"github.com/latchauth/latch/users"
)

// challengeLifespan is how long a person has to sign in and decide.
const challengeLifespan = 30 * time.Minute

// handleAuthorize is GET and POST /oauth2/auth. fosite parses and checks
// the request once; if a person must sign in or consent, the request is
// kept as a challenge and the browser goes to /login or /consent, which
// finish it from there.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	pushed := onlyPushedParameters(r)
	if !pushed && r.Form.Get("request_uri") != "" {
		s.writeAuthorizeError(w, r, nil, fosite.ErrRequestURINotSupported.WithHint("Only the request_uri of a pushed authorization request (RFC 9126) is accepted; Latch fetches no request objects by reference."))
		return
	}
	// A request object's redirect_uri is not trusted before its signature
	// is, so its errors are shown on a page (nil request).
	signed, err := s.unpackRequestObject(ctx, r, r.Form.Get("client_id"), nil)
	if err != nil {
		s.writeAuthorizeError(w, r, nil, err)
		return
	}
	ar, err := s.oauth.NewAuthorizeRequest(ctx, r)
	if err != nil {
		s.writeAuthorizeError(w, r, ar, err)
		return
	}
	if !s.redirectExact(ar) {
		s.writeAuthorizeError(w, r, ar, fosite.ErrInvalidRequest.WithHint("The 'redirect_uri' parameter does not match any of the client's registered redirect URIs."))
		return
	}
	if err := checkParameterSizes(ar.GetRequestForm()); err != nil {
		s.writeAuthorizeError(w, r, ar, err)
		return
	}
	// Everything a later step would refuse is refused now, before a login
	// or consent page is shown (preflight.go).
	if err := s.checkAuthorizeRequest(ctx, ar); err != nil {
		s.writeAuthorizeError(w, r, ar, err)
		return
	}
	// A pushed request was held to the same rule when it was pushed.
	if err := requireSignedRequest(ar.GetClient(), signed != nil || pushed); err != nil {
		s.writeAuthorizeError(w, r, ar, err)
		return
	}
	if signed != nil {
		if err := s.spendRequestObject(ctx, signed); err != nil {
			s.writeAuthorizeError(w, r, ar, err)
			return
		}
	}
	session, err := s.currentSession(r)
	if err != nil {
		s.renderStorageError(w, r, err)
		return
	}
	s.proceed(w, r, ar, "", session, false)
}

// onlyPushedParameters drops every parameter but client_id and request_uri
// from a request that names a pushed request: RFC 9126 §4 (with RFC 9101
// §5) says only the pushed parameters count, while fosite lays them over
// the query and keeps whatever else the query says (prompt=none, say).
// It reports whether the request names one. A request_uri that is not a
// pushed request's is left for fosite to refuse (Latch fetches no URLs).
func onlyPushedParameters(r *http.Request) bool {
	if err := r.ParseForm(); err != nil || !strings.HasPrefix(r.Form.Get("request_uri"), parRequestURIPrefix) {
		return false
	}
	keep := url.Values{"client_id": r.Form["client_id"], "request_uri": r.Form["request_uri"]}
	r.Form, r.PostForm = keep, url.Values{}
	r.URL.RawQuery = keep.Encode()
	return true
}

// redirectExact reports whether ar's redirect URI is one the client
// registered, character for character, and one the client rules accept
// today. fosite also accepts a loopback URI on any port (RFC 8252 §7.3);
// SPEC asks for exact matching. The rules are checked again because a
// client stored before they were (or by hand in the database) may hold a
// javascript: or plain-http URI: neither a code nor an error goes there.
func (s *Server) redirectExact(ar fosite.AuthorizeRequester) bool {
	if ar == nil || !ar.IsRedirectURIValid() {
		return false
	}
	registered := ar.GetClient().GetRedirectURIs()
	raw := ar.GetRequestForm().Get("redirect_uri")
	switch {
	case raw == "" && len(registered) == 1:
		raw = registered[0]
	case raw == "" || !slices.Contains(registered, raw):
		return false
	}
	return s.clientRules().CheckRedirectURI(raw) == nil
}

// writeAuthorizeError sends err to the client's redirect URI when that URI
// is known to be the client's, and otherwise shows a page: an unknown
// client or a foreign redirect URI must never be redirected to.
func (s *Server) writeAuthorizeError(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, err error) {
	rfc := oauthError(err)
	if !s.redirectExact(ar) {
		s.log.DebugContext(r.Context(), "authorization request refused", "error", rfc.ErrorField, "hint", rfc.HintField)
		if rfc.CodeField >= 500 {
			s.renderStorageError(w, r, err)
			return
		}
		s.renderAuthorizeError(w, r, ar, rfc)
		return
	}
	s.redirectAuthorizeError(w, r, ar, rfc)
}

// formPostHeaders secures the page fosite writes for response_mode
// form_post (templates/form_post.html), which carries the code to the
// client: nothing may frame it, it runs only its own submitting script
// (by hash), loads only our stylesheet, and its form may post only to the
// client's redirect URI.
func (s *Server) formPostHeaders(w http.ResponseWriter, ar fosite.AuthorizeRequester) {
	if ar.GetResponseMode() != fosite.ResponseModeFormPost || ar.GetRedirectURI() == nil {
		return
	}
	u := ar.GetRedirectURI()
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src "+s.pages.FormPostScriptSource()+"; style-src 'self'; img-src 'self' data:; form-action "+u.Scheme+"://"+u.Host+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

// proceed decides what the authorization request ar needs next: a login,
// a consent, an error for prompt=none, or nothing more. freshLogin is true
// right after the person signed in for this very request.
func (s *Server) proceed(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, challenge string, ls *storage.LoginSession, freshLogin bool) {
	ctx := r.Context()
	form := ar.GetRequestForm()
	var user *storage.User
	if ls != nil {
		u, err := s.store.GetUser(ctx, ls.Username)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			ls = nil // the user was deleted: the session means nothing
		case err != nil:
			s.renderStorageError(w, r, err)
			return
		default:
			user = u
		}
	}
	needLogin := ls == nil || (!freshLogin && (hasPrompt(form, "login") || maxAgeExceeded(form, ls, s.now())))
	if needLogin {
		if hasPrompt(form, "none") {
			s.writeAuthorizeError(w, r, ar, fosite.ErrLoginRequired.WithHint("prompt=none was given, but nobody is signed in."))
			return
		}
		s.redirectToPage(w, r, ar, challenge, pathLogin)
		return
	}
	if need, err := s.needSecondFactor(ctx, user.Username, ls.AMR, s.mfaPolicy(ar.GetClient(), form)); err != nil {
		s.renderStorageError(w, r, err)
		return
	} else if need {
		if hasPrompt(form, "none") {
			s.writeAuthorizeError(w, r, ar, fosite.ErrInteractionRequired.WithHint("prompt=none was given, but a second factor is needed."))
			return
		}
		if challenge, err = s.keepChallenge(w, r, ar, challenge); err != nil {
			s.renderPendingError(w, r, err)
			return
		}
		s.askSecondFactor(w, r, mfaPending{Username: user.Username, AMR: ls.AMR, Challenge: challenge, Connector: ls.Connector})
		return
	}
	client, _ := ar.GetClient().(*clients.Client)
	needConsent := client == nil || !client.SkipConsent
	if needConsent && !hasPrompt(form, "consent") {
		remembered, err := s.store.GetConsent(ctx, user.Username, ar.GetClient().GetID())
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			s.renderStorageError(w, r, err)
			return
		}
		needConsent = !fosite.Arguments(remembered).Has(ar.GetRequestedScopes()...)
	}
	if needConsent {
		if hasPrompt(form, "none") {
			s.writeAuthorizeError(w, r, ar, fosite.ErrConsentRequired.WithHint("prompt=none was given, but the person has not consented."))
			return
		}
		s.redirectToPage(w, r, ar, challenge, pathConsent)
		return
	}
	s.finish(w, r, ar, challenge, user, ls)
}

func maxAgeExceeded(form url.Values, ls *storage.LoginSession, now time.Time) bool {
	raw := form.Get("max_age")
	if raw == "" {
		return false
	}
	maxAge, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || maxAge < 0 {
		return false
	}
	return now.Sub(ls.AuthTime) > time.Duration(maxAge)*time.Second
}

// redirectToPage keeps ar as a challenge (once), bound to this browser
// (binding.go), and sends the browser to the login or consent page for it.
func (s *Server) redirectToPage(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, challenge, page string) {
	challenge, err := s.keepChallenge(w, r, ar, challenge)
	if err != nil {
		s.renderPendingError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, page+"?challenge="+url.QueryEscape(challenge), http.StatusFound)
}

// keepChallenge stores ar as a new challenge bound to this browser
// (binding.go) and returns its ID, unless it already is one (challenge is
// not empty).
func (s *Server) keepChallenge(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, challenge string) (string, error) {
	if challenge != "" {
		return challenge, nil
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	challenge = base64.RawURLEncoding.EncodeToString(raw)
	origin := s.clientKey(r)
	if err := s.pendingBound(r.Context(), w, storage.PendingChallenge, ar.GetClient().GetID(), origin); err != nil {
		return "", err
	}
	binding, err := s.ensureBinding(w, r)
	if err != nil {
		return "", err
	}
	ctx := storage.WithOrigin(r.Context(), origin)
	if err := s.store.CreateAuthorizeChallenge(ctx, challengeKey(challenge, binding), ar, s.now().Add(challengeLifespan)); err != nil {
		return "", err
	}
	return challenge, nil
}

// finish grants what was asked and hands the response to fosite, which
// issues the code (and stores the PKCE and OpenID Connect sessions).
func (s *Server) finish(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, challenge string, user *storage.User, ls *storage.LoginSession) {
	ctx := r.Context()
	// Claim the challenge before issuing anything: a double-clicked Allow
	// must not issue two codes.
	if challenge != "" && !s.claimChallenge(w, r, challenge) {
		return
	}
	for _, scope := range ar.GetRequestedScopes() {
		ar.GrantScope(scope)
	}
	for _, aud := range ar.GetRequestedAudience() {
		ar.GrantAudience(aud)
	}
	if err := s.recordSessionClient(ctx, ls, ar.GetClient()); err != nil {
		s.renderStorageError(w, r, err)
		return
	}
	resp, err := s.oauth.NewAuthorizeResponse(ctx, ar, viaConnector(codeSession(ar, s.userSession(ar, user, ls)), ls.Connector))
	if err != nil {
		s.writeAuthorizeError(w, r, ar, err)
		return
	}
	s.writeAuthorizeResponse(w, r, ar, resp)
}

// claimChallenge spends challenge for the decision being made. The store
// deletes it for exactly one of concurrent decisions; every other gets
// the error page, and claimChallenge reports false once it has answered.
func (s *Server) claimChallenge(w http.ResponseWriter, r *http.Request, challenge string) bool {
	return s.challengeFound(w, r, s.store.DeleteAuthorizeChallenge(r.Context(), boundChallenge(r, challenge)))
}

// userSession is the session a grant of user carries: the subject, and the
// ID token claims for the granted scopes.
func (s *Server) userSession(ar fosite.AuthorizeRequester, user *storage.User, ls *storage.LoginSession) *openid.DefaultSession {
	sess := newSession()
	sess.Subject = user.Username
	sess.Username = user.Username
	sess.Claims = &jwt.IDTokenClaims{
		Subject:     user.Username,
		Issuer:      s.cfg.Issuer,
		AuthTime:    ls.AuthTime,
		RequestedAt: ar.GetRequestedAt(),
		Extra:       users.ClaimsFor(user, ar.GetGrantedScopes()),
	}
	// sid (Back-Channel Logout 1.0 §2.1) names the login session without
	// revealing its cookie: a digest of the stored handle, itself a digest.
	// Tokens minted without a session (dev.go) have none.
	if ls.ID != "" {
		sess.Claims.Extra["sid"] = sessionSID(storage.SessionHandle(ls.ID))
	}
	if len(ls.AMR) > 0 {
		sess.Claims.AuthenticationMethodsReferences = ls.AMR
		sess.Claims.AuthenticationContextClassReference = acrOf(ls.AMR)
	}
	sess.Headers = &jwt.Headers{}
	return sess
}
