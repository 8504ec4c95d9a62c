package server

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	fositestorage "github.com/ory/fosite/storage"
	"github.com/ory/fosite/token/hmac"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/storage"
)

// The device authorization grant (RFC 8628). fosite v0.49 has no handler
// for it, so it is built on fosite's extension points: the device
// authorization endpoint below stores a pending request; the /device page
// (device_page.go) records the person's decision; deviceGrant, a
// fosite.TokenEndpointHandler, answers the device's polls, so fosite writes
// the token response and every error.

const (
	pathDeviceAuth = "/oauth2/device/auth"
	pathDevice     = "/device"

	// deviceInterval is the default polling interval a device is told to
	// keep (RFC 8628 §3.2's; Config.DevicePollInterval); slowDownStep is
	// how much it grows on each slow_down (§3.5).
	deviceInterval = 5 * time.Second
	slowDownStep   = 5 * time.Second

	// deviceCodePrefix marks device codes as fosite marks its tokens
	// (ory_at_, ory_rt_, ory_ac_), so secret scanners can tell them apart.
	deviceCodePrefix = "ory_dc_"

	// userCodeAlphabet has no vowels (no words spelled by accident) and no
	// look-alikes (RFC 8628 §6.1); 20^8 codes is about 34 bits.
	userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"
	userCodeLength   = 8
)

// The RFC 8628 §3.5 errors are not fosite's; they are RFC 6749 §5.2 errors
// (400) that fosite writes like its own. fosite's access_denied is 403, an
// authorization endpoint's; at the token endpoint it is 400.
var (
	errAuthorizationPending = &fosite.RFC6749Error{ErrorField: "authorization_pending", CodeField: http.StatusBadRequest,
		DescriptionField: "The authorization request is still pending: the person has not entered the user code and decided yet."}
	errSlowDown = &fosite.RFC6749Error{ErrorField: "slow_down", CodeField: http.StatusBadRequest,
		DescriptionField: "The authorization request is still pending, and the device polls too often: the interval grows by 5 seconds."}
	errDeviceAccessDenied = &fosite.RFC6749Error{ErrorField: "access_denied", CodeField: http.StatusBadRequest,
		DescriptionField: "The person denied the authorization request."}
	errExpiredToken = &fosite.RFC6749Error{ErrorField: "expired_token", CodeField: http.StatusBadRequest,
		DescriptionField: "The device code has expired: start a new device authorization."}
)

// deviceCodes makes and checks device codes with fosite's HMAC strategy
// under the system secret, like every other opaque token: the store keeps
// only the signature.
type deviceCodes struct {
	hmac *hmac.HMACStrategy
}

func newDeviceCodes(fc hmac.HMACStrategyConfigurator) deviceCodes {
	return deviceCodes{hmac: &hmac.HMACStrategy{Config: fc}}
}

func (d deviceCodes) generate(ctx context.Context) (code, signature string, err error) {
	token, signature, err := d.hmac.Generate(ctx)
	if err != nil {
		return "", "", err
	}
	return deviceCodePrefix + token, signature, nil
}

// signature checks code's HMAC and returns its signature, the store key.
func (d deviceCodes) signature(ctx context.Context, code string) (string, error) {
	token, ok := strings.CutPrefix(code, deviceCodePrefix)
	if !ok {
		return "", fosite.ErrInvalidTokenFormat
	}
	if err := d.hmac.Validate(ctx, token); err != nil {
		return "", err
	}
	return d.hmac.Signature(token), nil
}

// newUserCode draws userCodeLength characters of userCodeAlphabet
// uniformly (rejection sampling: 240 is the largest multiple of 20 below
// 256).
func newUserCode() (string, error) {
	out := make([]byte, 0, userCodeLength)
	buf := make([]byte, 16)
	for len(out) < userCodeLength {
		if _, err := rand.Read(buf); err != nil {
			return "", err
		}
		for _, b := range buf {
			if b < 240 && len(out) < userCodeLength {
				out = append(out, userCodeAlphabet[int(b)%len(userCodeAlphabet)])
			}
		}
	}
	return string(out), nil
}

// normalizeUserCode is what a person typed, as the store knows it: upper
// case, without dashes and spaces. ok is false unless that is a code of the
// right length and alphabet.
func normalizeUserCode(typed string) (code string, ok bool) {
	code = strings.Map(func(r rune) rune {
		if r == '-' || unicode.IsSpace(r) {
			return -1
		}
		return r
	}, strings.ToUpper(typed))
	if len(code) != userCodeLength {
		return code, false
	}
	for _, r := range code {
		if !strings.ContainsRune(userCodeAlphabet, r) {
			return code, false
		}
	}
	return code, true
}

// formatUserCode shows a normalized code as XXXX-XXXX.
func formatUserCode(code string) string {
	return code[:userCodeLength/2] + "-" + code[userCodeLength/2:]
}

// handleDeviceAuthorization is POST /oauth2/device/auth (RFC 8628 §3.1):
// the client authenticates as at the token endpoint (a public client by
// client_id alone), must list the device grant, and may ask only for its
// registered scopes and audience.
func (s *Server) handleDeviceAuthorization(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if !s.readClientForm(w, r) {
		return
	}
	client, err := s.oauth.AuthenticateClient(ctx, r, r.PostForm)
	if err != nil {
		s.writeOAuthError(ctx, w, r, err)
		return
	}
	if !client.GetGrantTypes().Has(clients.GrantDeviceCode) {
		s.writeOAuthError(ctx, w, r, fosite.ErrUnauthorizedClient.WithHintf("The client is not allowed to use the grant '%s'.", clients.GrantDeviceCode))
		return
	}
	if err := checkParameterSizes(r.PostForm); err != nil {
		s.writeOAuthError(ctx, w, r, err)
		return
	}
	scopes := fosite.RemoveEmpty(strings.Split(r.PostForm.Get("scope"), " "))
	for _, scope := range scopes {
		if !s.oauth.Config.GetScopeStrategy(ctx)(client.GetScopes(), scope) {
			s.writeOAuthError(ctx, w, r, fosite.ErrInvalidScope.WithHintf("The client is not allowed to request scope '%s'.", scope))
			return
		}
	}
	audience := fosite.GetAudiences(r.PostForm)
	if err := s.oauth.Config.GetAudienceStrategy(ctx)(client.GetAudience(), audience); err != nil {
		s.writeOAuthError(ctx, w, r, err)
		return
	}

	now := s.now().UTC()
	req := fosite.NewRequest()
	req.RequestedAt = now
	req.Client = client
	req.RequestedScope = scopes
	req.RequestedAudience = audience
	req.Form = r.PostForm
	req.Session = newSession()
	code, signature, err := newDeviceCodes(s.oauth.Config).generate(ctx)
	if err != nil {
		s.writeOAuthError(ctx, w, r, fosite.ErrServerError.WithWrap(err).WithDebug(err.Error()))
		return
	}
	dc := &storage.DeviceCode{
		Signature: signature,
		Request:   req,
		Interval:  s.cfg.DevicePollInterval,
		ExpiresAt: now.Add(s.cfg.DeviceCodeLifespan),
	}
	origin := s.clientKey(r)
	if err := s.pendingBound(ctx, w, storage.PendingDevice, client.GetID(), origin); err != nil {
		s.writeOAuthError(ctx, w, r, err)
		return
	}
	// A user code already stored is drawn again; with 20^8 codes a second
	// collision in a row means something else is wrong.
	for attempt := 0; ; attempt++ {
		if dc.UserCode, err = newUserCode(); err == nil {
			err = s.store.CreateDeviceCode(storage.WithOrigin(ctx, origin), dc)
		}
		if !errors.Is(err, storage.ErrAlreadyExists) || attempt == 2 {
			break
		}
	}
	if err != nil {
		s.writeOAuthError(ctx, w, r, fosite.ErrServerError.WithWrap(err).WithDebug(err.Error()))
		return
	}
	userCode := formatUserCode(dc.UserCode)
	writeJSON(w, http.StatusOK, map[string]any{
		"device_code":               code,
		"user_code":                 userCode,
		"verification_uri":          s.url(pathDevice),
		"verification_uri_complete": s.url(pathDevice) + "?user_code=" + userCode,
		"expires_in":                int64(s.cfg.DeviceCodeLifespan / time.Second),
		"interval":                  int64(s.cfg.DevicePollInterval / time.Second),
	})
}

// deviceGrant is the token endpoint's grant_type
// urn:ietf:params:oauth:grant-type:device_code (RFC 8628 §3.4, §3.5),
// built like fosite's authorization code handlers: HandleTokenEndpointRequest
// checks the device code and takes over the approved request's ID,
// session, scopes and audience; PopulateTokenEndpointResponse issues the
// tokens (a refresh token with offline_access, an ID token with openid)
// and spends the device code in one transaction.
type deviceGrant struct {
	codes  deviceCodes
	store  storage.Store
	tokens oauth2.CoreStrategy
	ids    *openid.IDTokenHandleHelper
	config *fosite.Config
	now    func() time.Time
}

var _ fosite.TokenEndpointHandler = (*deviceGrant)(nil)

func newDeviceGrant(cfg Config, fc *fosite.Config, tokens oauth2.CoreStrategy, ids *openid.IDTokenHandleHelper) *deviceGrant {
	return &deviceGrant{codes: newDeviceCodes(fc), store: cfg.Store, tokens: tokens, ids: ids, config: fc, now: cfg.Now}
}

func (h *deviceGrant) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool { return false }

func (h *deviceGrant) CanHandleTokenEndpointRequest(_ context.Context, ar fosite.AccessRequester) bool {
	return ar.GetGrantTypes().ExactOne(clients.GrantDeviceCode)
}

func (h *deviceGrant) HandleTokenEndpointRequest(ctx context.Context, ar fosite.AccessRequester) error {
	if !h.CanHandleTokenEndpointRequest(ctx, ar) {
		return fosite.ErrUnknownRequest
	}
	client := ar.GetClient()
	if !client.GetGrantTypes().Has(clients.GrantDeviceCode) {
		return fosite.ErrUnauthorizedClient.WithHintf("The client is not allowed to use the grant '%s'.", clients.GrantDeviceCode)
	}
	code := ar.GetRequestForm().Get("device_code")
	if code == "" {
		return fosite.ErrInvalidRequest.WithHint("The 'device_code' parameter is missing.")
	}
	signature, err := h.codes.signature(ctx, code)
	if err != nil {
		return fosite.ErrInvalidGrant.WithHint("The device code is not valid.")
	}
	now := h.now().UTC()
	dc, tooFast, err := h.store.PollDeviceCode(ctx, signature, now, slowDownStep, ar.GetSession())
	if errors.Is(err, storage.ErrNotFound) {
		return fosite.ErrInvalidGrant.WithHint("The device code is unknown, or expired long ago.")
	} else if err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	if dc.Request.GetClient().GetID() != client.GetID() {
		return fosite.ErrInvalidGrant.WithHint("The device code was issued to another client.")
	}
	switch {
	case dc.Status == storage.DeviceDenied:
		return errDeviceAccessDenied
	case !dc.Active:
		return fosite.ErrInvalidGrant.WithHint("The device code was already used, or its grant was revoked.")
	case !now.Before(dc.ExpiresAt):
		return errExpiredToken
	case dc.Status == storage.DevicePending && tooFast:
		return errSlowDown.WithHintf("Wait at least %d seconds between polls.", int(dc.Interval/time.Second))
	case dc.Status == storage.DevicePending:
		return errAuthorizationPending
	}

	// Approved: the token request becomes the device request, as a code
	// exchange becomes its authorization request. The session was decoded
	// into ar's by PollDeviceCode.
	ar.SetID(dc.Request.GetID())
	ar.SetSession(dc.Request.GetSession())
	ar.SetRequestedScopes(dc.Request.GetRequestedScopes())
	ar.SetRequestedAudience(dc.Request.GetRequestedAudience())
	for _, scope := range dc.Request.GetGrantedScopes() {
		ar.GrantScope(scope)
	}
	for _, aud := range dc.Request.GetGrantedAudience() {
		ar.GrantAudience(aud)
	}
	issued := time.Now().UTC()
	ar.GetSession().SetExpiresAt(fosite.AccessToken, issued.Add(h.config.GetAccessTokenLifespan(ctx)).Round(time.Second))
	if rt := h.config.GetRefreshTokenLifespan(ctx); rt > -1 {
		ar.GetSession().SetExpiresAt(fosite.RefreshToken, issued.Add(rt).Round(time.Second))
	}
	return nil
}

// canRefresh is fosite's rule for the code grant: a refresh token needs a
// granted refresh scope (offline_access) and a client with the grant.
func (h *deviceGrant) canRefresh(ctx context.Context, ar fosite.AccessRequester) bool {
	scopes := h.config.GetRefreshTokenScopes(ctx)
	if len(scopes) > 0 && !ar.GetGrantedScopes().HasOneOf(scopes...) {
		return false
	}
	return ar.GetClient().GetGrantTypes().Has(clients.GrantRefreshToken)
}

func (h *deviceGrant) PopulateTokenEndpointResponse(ctx context.Context, ar fosite.AccessRequester, resp fosite.AccessResponder) (err error) {
	if !h.CanHandleTokenEndpointRequest(ctx, ar) {
		return fosite.ErrUnknownRequest
	}
	signature, err := h.codes.signature(ctx, ar.GetRequestForm().Get("device_code"))
	if err != nil {
		return fosite.ErrInvalidGrant.WithHint("The device code is not valid.")
	}
	access, accessSignature, err := h.tokens.GenerateAccessToken(ctx, ar)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	var refresh, refreshSignature string
	if h.canRefresh(ctx, ar) {
		if refresh, refreshSignature, err = h.tokens.GenerateRefreshToken(ctx, ar); err != nil {
			return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
		}
	}

	ctx, err = fositestorage.MaybeBeginTx(ctx, h.store)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	defer func() {
		if err != nil {
			if rbErr := fositestorage.MaybeRollbackTx(ctx, h.store); rbErr != nil {
				err = fosite.ErrServerError.WithWrap(err).WithDebugf("error: %s; rollback error: %s", err, rbErr)
			}
		}
	}()
	// Spending the code first makes two concurrent polls of one approved
	// code a race that exactly one wins.
	if err = h.store.InvalidateDeviceCode(ctx, signature); errors.Is(err, storage.ErrNotFound) {
		return fosite.ErrInvalidGrant.WithHint("The device code was already used, or its grant was revoked.")
	} else if err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	if err = h.store.CreateAccessTokenSession(ctx, accessSignature, ar.Sanitize(nil)); err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	if refreshSignature != "" {
		if err = h.store.CreateRefreshTokenSession(ctx, refreshSignature, accessSignature, ar.Sanitize(nil)); err != nil {
			return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
		}
	}

	resp.SetAccessToken(access)
	resp.SetTokenType("bearer")
	resp.SetExpiresIn(time.Until(ar.GetSession().GetExpiresAt(fosite.AccessToken)))
	resp.SetScopes(ar.GetGrantedScopes())
	if refresh != "" {
		resp.SetExtra("refresh_token", refresh)
	}
	// The ID token is signed after the rows are written (its claims must
	// not end up in the stored session) but before the commit, so a
	// signing failure leaves the device code unspent.
	if ar.GetGrantedScopes().Has("openid") {
		if err = h.issueIDToken(ctx, ar, resp); err != nil {
			return err
		}
	}
	if err = fositestorage.MaybeCommitTx(ctx, h.store); err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	return nil
}

// issueIDToken is what fosite's OpenID Connect code handler does at the
// token endpoint.
func (h *deviceGrant) issueIDToken(ctx context.Context, ar fosite.AccessRequester, resp fosite.AccessResponder) error {
	sess, ok := ar.GetSession().(openid.Session)
	if !ok || sess.IDTokenClaims().Subject == "" {
		return fosite.ErrServerError.WithDebug("The approved device request has no OpenID Connect session with a subject.")
	}
	sess.IDTokenClaims().AccessTokenHash = h.ids.GetAccessTokenHash(ctx, ar, resp)
	if err := h.ids.IssueExplicitIDToken(ctx, h.config.GetIDTokenLifespan(ctx), ar, resp); err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	return nil
}
