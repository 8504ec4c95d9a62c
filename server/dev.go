package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	fositestorage "github.com/ory/fosite/storage"
	"github.com/ory/fosite/token/jwt"

	"github.com/latchauth/latch/storage"
)

// The test-fixture helpers: what client-library tests need and a real flow
// does not offer. The latchtest package calls them in process; in dev mode
// (Config.DevMode, `latch serve --dev` only) routes.go also serves them
// under /dev/ for test suites in other languages. They mint with the
// server's own strategies and store what a real flow stores, so their
// tokens introspect, refresh and revoke like any other.

// TokenRequest says what IssueTokens mints.
type TokenRequest struct {
	ClientID string
	// Subject is the user (or any subject) the tokens are for. Empty: the
	// client itself, as with client_credentials.
	Subject string
	// Scopes must be registered for the client; Refresh adds
	// offline_access and IDToken adds openid, as a real flow needs them.
	Scopes   []string
	Audience []string
	// Claims are extra ID token claims, laid over the user's profile
	// claims. The protocol claims (sub, iss, aud, exp, ...) are the
	// server's.
	Claims map[string]any
	// Nonce goes into the ID token, as if the authorization request had
	// carried it.
	Nonce string
	// Refresh asks for a refresh token (the client needs the
	// refresh_token grant), IDToken for an ID token (needs a Subject).
	Refresh bool
	IDToken bool
	// Lifespan of the access token; 0 is the server's.
	Lifespan time.Duration
}

// IssuedTokens is what IssueTokens minted, in the token endpoint's shape.
type IssuedTokens struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	Scope        string `json:"scope,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
}

// protocolClaims are set by the server in every ID token; TokenRequest
// may not pretend to set them.
var protocolClaims = []string{"sub", "iss", "aud", "exp", "iat", "nbf", "jti", "nonce", "auth_time", "at_hash", "c_hash", "azp", "rat", "sid"}

// IssueTokens mints tokens as the token endpoint would after a grant of
// tr: it checks what the endpoint checks (a known client, registered
// scopes and audience, the refresh_token grant for a refresh token), then
// does what fosite's authorization code handlers do on redemption. Its
// errors are *fosite.RFC6749Error.
func (s *Server) IssueTokens(ctx context.Context, tr TokenRequest) (*IssuedTokens, error) {
	g := s.device
	fc := g.config
	c, err := s.store.GetClient(ctx, tr.ClientID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fosite.ErrInvalidClient.WithHintf("No client has the id '%s'.", tr.ClientID)
	} else if err != nil {
		return nil, oauthError(err)
	}
	scopes := fosite.Arguments(fosite.RemoveEmpty(tr.Scopes))
	if tr.Refresh && !scopes.Has("offline_access") {
		scopes = append(scopes, "offline_access")
	}
	if tr.IDToken && !scopes.Has("openid") {
		scopes = append(scopes, "openid")
	}
	switch {
	case tr.Lifespan < 0:
		return nil, fosite.ErrInvalidRequest.WithHint("The lifespan must not be negative; expire a token to test expiry.")
	case tr.IDToken && tr.Subject == "":
		return nil, fosite.ErrInvalidRequest.WithHint("An ID token needs a subject.")
	case tr.Refresh && !c.GetGrantTypes().Has("refresh_token"):
		return nil, fosite.ErrUnauthorizedClient.WithHint("The client is not allowed to use the grant 'refresh_token'.")
	}
	for _, scope := range scopes {
		if !fc.GetScopeStrategy(ctx)(c.GetScopes(), scope) {
			return nil, fosite.ErrInvalidScope.WithHintf("The client is not allowed to request scope '%s'.", scope)
		}
	}
	if err := fc.GetAudienceStrategy(ctx)(c.GetAudience(), tr.Audience); err != nil {
		return nil, oauthError(err)
	}
	for _, k := range protocolClaims {
		if _, ok := tr.Claims[k]; ok {
			return nil, fosite.ErrInvalidRequest.WithHintf("The claim '%s' is the server's to set.", k)
		}
	}

	grant := "authorization_code"
	if tr.Subject == "" {
		grant = "client_credentials"
	}
	now := time.Now().UTC()
	sess, err := s.fixtureSession(ctx, tr, scopes, now)
	if err != nil {
		return nil, err
	}
	ar := fosite.NewAccessRequest(sess)
	ar.SetID(newGrantID())
	ar.Client = c
	ar.GrantTypes = fosite.Arguments{grant}
	ar.Form = url.Values{"grant_type": {grant}}
	if tr.Nonce != "" {
		ar.Form.Set("nonce", tr.Nonce)
	}
	ar.SetRequestedScopes(scopes)
	ar.SetRequestedAudience(tr.Audience)
	for _, scope := range scopes {
		ar.GrantScope(scope)
	}
	for _, aud := range tr.Audience {
		ar.GrantAudience(aud)
	}
	lifespan := tr.Lifespan
	if lifespan == 0 {
		lifespan = fosite.GetEffectiveLifespan(c, fosite.GrantType(grant), fosite.AccessToken, fc.GetAccessTokenLifespan(ctx))
	}
	sess.SetExpiresAt(fosite.AccessToken, now.Add(lifespan).Round(time.Second))
	if rt := fosite.GetEffectiveLifespan(c, fosite.GrantType(grant), fosite.RefreshToken, fc.GetRefreshTokenLifespan(ctx)); tr.Refresh && rt > -1 {
		sess.SetExpiresAt(fosite.RefreshToken, now.Add(rt).Round(time.Second))
	}

	resp := fosite.NewAccessResponse()
	if err := s.mint(ctx, g, ar, resp, tr.Refresh, tr.IDToken); err != nil {
		return nil, oauthError(err)
	}
	out := &IssuedTokens{
		AccessToken: resp.GetAccessToken(),
		TokenType:   resp.GetTokenType(),
		ExpiresIn:   int64(time.Until(sess.GetExpiresAt(fosite.AccessToken)).Round(time.Second) / time.Second),
		Scope:       strings.Join(ar.GetGrantedScopes(), " "),
	}
	out.RefreshToken, _ = resp.GetExtra("refresh_token").(string)
	out.IDToken, _ = resp.GetExtra("id_token").(string)
	return out, nil
}

// fixtureSession is the session a grant of tr carries: a known user's is
// built as the authorization endpoint builds it (userSession).
func (s *Server) fixtureSession(ctx context.Context, tr TokenRequest, scopes fosite.Arguments, now time.Time) (*openid.DefaultSession, error) {
	if tr.Subject == "" {
		sess := newSession()
		sess.Subject = tr.ClientID
		return sess, nil
	}
	var sess *openid.DefaultSession
	user, err := s.store.GetUser(ctx, tr.Subject)
	switch {
	case err == nil:
		ar := &fosite.AuthorizeRequest{Request: fosite.Request{RequestedAt: now, GrantedScope: scopes}}
		sess = s.userSession(ar, user, &storage.LoginSession{Username: user.Username, AuthTime: now.Truncate(time.Second)})
	case errors.Is(err, storage.ErrNotFound):
		sess = newSession()
		sess.Subject = tr.Subject
		sess.Claims = &jwt.IDTokenClaims{Subject: tr.Subject, Issuer: s.cfg.Issuer, AuthTime: now.Truncate(time.Second), RequestedAt: now, Extra: map[string]any{}}
		sess.Headers = &jwt.Headers{}
	default:
		return nil, oauthError(err)
	}
	for k, v := range tr.Claims {
		sess.Claims.Extra[k] = v
	}
	return sess, nil
}

// mint is fosite's PopulateTokenEndpointResponse of the authorization code
// grant (and deviceGrant's): generate, store in one transaction, answer.
func (s *Server) mint(ctx context.Context, g *deviceGrant, ar *fosite.AccessRequest, resp *fosite.AccessResponse, refresh, idToken bool) (err error) {
	access, accessSignature, err := g.tokens.GenerateAccessToken(ctx, ar)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	var refreshToken, refreshSignature string
	if refresh {
		if refreshToken, refreshSignature, err = g.tokens.GenerateRefreshToken(ctx, ar); err != nil {
			return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
		}
	}
	ctx, err = fositestorage.MaybeBeginTx(ctx, s.store)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			if rbErr := fositestorage.MaybeRollbackTx(ctx, s.store); rbErr != nil {
				err = errors.Join(err, rbErr)
			}
		}
	}()
	if err = s.store.CreateAccessTokenSession(ctx, accessSignature, ar.Sanitize(nil)); err != nil {
		return err
	}
	if refreshSignature != "" {
		if err = s.store.CreateRefreshTokenSession(ctx, refreshSignature, accessSignature, ar.Sanitize(nil)); err != nil {
			return err
		}
	}
	resp.SetAccessToken(access)
	resp.SetTokenType("bearer")
	resp.SetScopes(ar.GetGrantedScopes())
	if refreshToken != "" {
		resp.SetExtra("refresh_token", refreshToken)
	}
	if idToken {
		if err = g.issueIDToken(ctx, ar, resp); err != nil {
			return err
		}
	}
	return fositestorage.MaybeCommitTx(ctx, s.store)
}

// ExpireToken makes an access token, refresh token, authorization code or
// device code expire now; an unknown one is fosite.ErrNotFound.
func (s *Server) ExpireToken(ctx context.Context, token string) error {
	g := s.device
	// A JWT access token is stored under the hash of its signature, every
	// other token and code under its HMAC signature: AccessTokenSignature
	// computes both.
	signature := g.tokens.AccessTokenSignature(ctx, strings.TrimSpace(token))
	if signature == "" {
		return fosite.ErrNotFound
	}
	return s.store.ExpireNow(ctx, signature)
}

// The /dev/ endpoints (dev mode only): JSON in, JSON out.

// devTokenRequest is the body of POST /dev/tokens.
type devTokenRequest struct {
	ClientID     string         `json:"client_id"`
	Subject      string         `json:"subject"`
	Scope        string         `json:"scope"`
	Audience     []string       `json:"audience"`
	Claims       map[string]any `json:"claims"`
	Nonce        string         `json:"nonce"`
	RefreshToken bool           `json:"refresh_token"`
	IDToken      bool           `json:"id_token"`
	ExpiresIn    int64          `json:"expires_in"`
}

func (s *Server) handleDevTokens(w http.ResponseWriter, r *http.Request) {
	var in devTokenRequest
	if !s.readDevJSON(w, r, &in) {
		return
	}
	out, err := s.IssueTokens(r.Context(), TokenRequest{
		ClientID: in.ClientID, Subject: in.Subject, Scopes: strings.Fields(in.Scope), Audience: in.Audience,
		Claims: in.Claims, Nonce: in.Nonce, Refresh: in.RefreshToken, IDToken: in.IDToken,
		Lifespan: time.Duration(in.ExpiresIn) * time.Second,
	})
	if err != nil {
		s.writeOAuthError(r.Context(), w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleDevExpire(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Token string `json:"token"`
	}
	if !s.readDevJSON(w, r, &in) {
		return
	}
	if in.Token == "" {
		s.writeOAuthError(r.Context(), w, r, fosite.ErrInvalidRequest.WithHint("The 'token' field is missing."))
		return
	}
	if err := s.ExpireToken(r.Context(), in.Token); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			err = fosite.ErrNotFound.WithHint("No token, code or device code has that value.")
		}
		s.writeOAuthError(r.Context(), w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleDevFail(w http.ResponseWriter, r *http.Request) {
	var in Failure
	if !s.readDevJSON(w, r, &in) {
		return
	}
	if err := s.cfg.Faults.Add(in); err != nil {
		s.writeOAuthError(r.Context(), w, r, fosite.ErrInvalidRequest.WithHint(err.Error()))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// readDevJSON decodes a /dev/ request body strictly, so that a misspelt
// field is an error rather than silently ignored.
func (s *Server) readDevJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		s.writeOAuthError(r.Context(), w, r, fosite.ErrInvalidRequest.WithHintf("The body is not the expected JSON object: %s.", err))
		return false
	}
	return true
}
