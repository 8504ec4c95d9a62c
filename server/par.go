package server

import (
	"net/http"

	"github.com/ory/fosite"

	"github.com/latchauth/latch/storage"
)

// handlePAR is POST /oauth2/par (RFC 9126): fosite's three steps. The
// client authenticates; the answer is 201 with request_uri and expires_in;
// the authorization endpoint accepts the request_uri once.
func (s *Server) handlePAR(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if !s.readClientForm(w, r) {
		return
	}
	ar, err := s.oauth.NewPushedAuthorizeRequest(ctx, r)
	if err == nil && !s.redirectExact(ar) {
		err = fosite.ErrInvalidRequest.WithHint("The 'redirect_uri' parameter does not match any of the client's registered redirect URIs.")
	}
	if err == nil {
		err = checkParameterSizes(ar.GetRequestForm())
	}
	if err == nil {
		err = s.checkAuthorizeRequest(ctx, ar)
	}
	origin := s.clientKey(r)
	if err == nil {
		err = s.pendingBound(ctx, w, storage.PendingPAR, ar.GetClient().GetID(), origin)
	}
	if err != nil {
		s.writeOAuthError(ctx, w, r, err)
		return
	}
	resp, err := s.oauth.NewPushedAuthorizeResponse(storage.WithOrigin(ctx, origin), ar, newSession())
	if err != nil {
		s.writeOAuthError(ctx, w, r, err)
		return
	}
	s.oauth.WritePushedAuthorizeResponse(ctx, w, ar, resp)
}
