package server

import (
	"errors"
	"net/http"
	"strings"

	"github.com/ory/fosite"

	"github.com/latchauth/latch/storage"
)

// accessTokenFor authenticates a request to a resource endpoint Latch
// serves (/userinfo) by its access token, sent as RFC 6750's Bearer or as
// RFC 9449 §7's DPoP with a proof for path. It answers the request itself
// when the token or the proof fails, and returns false then.
//
// A DPoP-bound token sent as Bearer is refused (§7.2: otherwise a stolen
// bound token would be as good as a Bearer one), and so is a Bearer token
// sent as DPoP. A refusal to a DPoP request, or of a DPoP-bound token,
// carries the DPoP challenge (§7.1); others keep the Bearer one.
func (s *Server) accessTokenFor(w http.ResponseWriter, r *http.Request, path string) (fosite.AccessRequester, bool) {
	ctx := r.Context()
	token, dpop := dpopAuthorization(r)
	if !dpop {
		var problem string
		if token, problem = userinfoToken(r); problem != "" {
			s.bearerError(w, http.StatusBadRequest, "invalid_request", problem)
			return nil, false
		}
	}
	if token == "" {
		s.bearerError(w, http.StatusUnauthorized, "invalid_request", "No access token: send it as a Bearer or DPoP Authorization header.")
		return nil, false
	}
	var proof *dpopProof
	s.offerDPoPNonce(w, r)
	if dpop {
		var err error
		proof, err = s.dpopProofFrom(r, s.url(path), token)
		if err == nil && proof == nil {
			err = errInvalidDPoPProof("A DPoP access token needs a DPoP proof.")
		}
		if err != nil {
			rfc := oauthError(err)
			s.dpopError(w, http.StatusUnauthorized, rfc.ErrorField, rfc.GetDescription())
			return nil, false
		}
	}
	tu, ar, err := s.oauth.IntrospectToken(ctx, token, fosite.AccessToken, newGrantSession())
	if errors.Is(err, storage.ErrUnavailable) {
		s.writeOAuthError(ctx, w, r, err)
		return nil, false
	}
	if err != nil || tu != fosite.AccessToken {
		s.tokenError(w, dpop, "The access token is not active.")
		return nil, false
	}
	jkt := dpopJKT(ar.GetSession())
	switch {
	case jkt == "" && dpop:
		s.dpopError(w, http.StatusUnauthorized, "invalid_token", "The access token is not DPoP-bound: send it as a Bearer token.")
		return nil, false
	case jkt != "" && !dpop:
		s.dpopError(w, http.StatusUnauthorized, "invalid_token", "The access token is DPoP-bound: send it with the DPoP scheme and a proof.")
		return nil, false
	case jkt != "" && proof.jkt != jkt:
		s.dpopError(w, http.StatusUnauthorized, "invalid_dpop_proof", "The DPoP proof is not signed by the key the access token is bound to.")
		return nil, false
	}
	if proof != nil {
		if err := s.spendDPoPProof(r, proof); errors.Is(err, storage.ErrUnavailable) {
			s.writeOAuthError(ctx, w, r, err)
			return nil, false
		} else if err != nil {
			s.dpopError(w, http.StatusUnauthorized, "invalid_dpop_proof", oauthError(err).GetDescription())
			return nil, false
		}
	}
	return ar, true
}

// dpopAuthorization returns the token of an "Authorization: DPoP <token>"
// header, and whether the header has that scheme.
func dpopAuthorization(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "DPoP") {
		return "", false
	}
	return strings.TrimSpace(token), true
}

// tokenError refuses an inactive token with the scheme it was sent with.
func (s *Server) tokenError(w http.ResponseWriter, dpop bool, description string) {
	if dpop {
		s.dpopError(w, http.StatusUnauthorized, "invalid_token", description)
		return
	}
	s.bearerError(w, http.StatusUnauthorized, "invalid_token", description)
}

// dpopError answers as RFC 9449 §7.1 says: the DPoP challenge with the
// accepted algorithms and the error, and the error as JSON.
func (s *Server) dpopError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("WWW-Authenticate", `DPoP algs="`+strings.Join(dpopAlgs, " ")+`", error="`+code+`"`)
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}

// resourceError refuses a request whose token was accepted (a missing
// scope, a deleted user) with the challenge of the token's scheme.
func (s *Server) resourceError(w http.ResponseWriter, ar fosite.AccessRequester, status int, code, description string) {
	if dpopJKT(ar.GetSession()) != "" {
		s.dpopError(w, status, code, description)
		return
	}
	s.bearerError(w, status, code, description)
}
