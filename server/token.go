package server

import (
	"context"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/ory/fosite"

	"github.com/latchauth/latch/storage"
)

// handleToken is POST /oauth2/token: fosite's three steps, plus what fosite
// leaves to the server — the subject and the scopes granted to a
// client_credentials request.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	// Each client is read once per request: fosite reads it to
	// authenticate and again with every code or token it looks up.
	ctx := withRefreshScope(storage.WithClientMemo(r.Context()))
	ctx = context.WithValue(ctx, callerKey{}, s.clientKey(r))
	if !s.readClientForm(w, r) {
		return
	}
	if s.overLimitBeforeAuth(ctx, w, r) {
		return
	}
	grantType := r.PostForm.Get("grant_type")
	if !s.grantSupported(ctx, grantType) {
		s.writeOAuthError(ctx, w, r, fosite.ErrUnsupportedGrantType.WithHint("No grant of this server has that 'grant_type'."))
		return
	}
	// A malformed proof is refused before anything is looked up.
	s.offerDPoPNonce(w, r)
	proof, err := s.dpopProofFrom(r, s.url(pathToken), "")
	if err != nil {
		s.writeOAuthError(ctx, w, r, err)
		return
	}
	session := newGrantSession()
	ar, err := s.oauth.NewAccessRequest(ctx, r, session)
	if err != nil {
		s.writeOAuthError(ctx, w, r, err)
		return
	}
	// After authentication and the grant's checks, before anything is
	// issued: a refused request leaves its code or refresh token usable.
	if s.overLimit(ctx, w, r, ar.GetClient()) {
		return
	}
	if err := s.bindDPoP(r, ar, proof); err != nil {
		s.writeOAuthError(ctx, w, r, err)
		return
	}
	if ar.GetGrantTypes().ExactOne("client_credentials") {
		ar.SetID(newGrantID())
		// The client acts for itself (as in Hydra and Keycloak): it is the
		// subject, and it gets the scopes and audience it asked for, which
		// fosite has already checked against its registration.
		ar.GetSession().(*grantSession).Subject = ar.GetClient().GetID()
		for _, scope := range ar.GetRequestedScopes() {
			ar.GrantScope(scope)
		}
		for _, aud := range ar.GetRequestedAudience() {
			ar.GrantAudience(aud)
		}
	}
	resp, err := s.oauth.NewAccessResponse(ctx, ar)
	if err != nil {
		s.writeOAuthError(ctx, w, r, err)
		return
	}
	if proof != nil && strings.EqualFold(resp.GetTokenType(), "bearer") {
		// Not an N_A token of a token exchange: no access token, no binding.
		resp.SetTokenType(tokenTypeDPoP)
	}
	s.oauth.WriteAccessResponse(ctx, w, ar, resp)
	s.countIssued(grantType)
}

// grantSupported reports whether a token endpoint handler takes grantType.
// fosite answers invalid_request to a grant no handler takes; RFC 6749
// §5.2 calls that unsupported_grant_type. An empty grant_type is left to
// fosite (invalid_request: a missing parameter).
func (s *Server) grantSupported(ctx context.Context, grantType string) bool {
	if strings.TrimSpace(grantType) == "" {
		return true
	}
	probe := fosite.NewAccessRequest(nil)
	probe.GrantTypes = fosite.RemoveEmpty(strings.Split(grantType, " "))
	for _, h := range s.oauth.Config.GetTokenEndpointHandlers(ctx) {
		if h.CanHandleTokenEndpointRequest(ctx, probe) {
			return true
		}
	}
	return false
}

// newGrantID is the ID of a new grant: a time-ordered UUIDv7 instead of
// fosite's random one, so that the request_id index grows at its end,
// where a batch of inserts shares pages, instead of touching one random
// page per token (a random ID cost a quarter of each insert). It is still
// unique: 74 of its bits are random.
func newGrantID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}
