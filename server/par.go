package server

import (
	"net/http"
	"net/url"

	"github.com/ory/fosite"

	"github.com/latchauth/latch/storage"
)

// handlePAR is POST /oauth2/par (RFC 9126): fosite's three steps. The
// client authenticates; the answer is 201 with request_uri and expires_in;
// the authorization endpoint accepts the request_uri once. A DPoP proof
// binds the code to its key (bindPARToDPoP).
func (s *Server) handlePAR(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if !s.readClientForm(w, r) {
		return
	}
	// As at the token endpoint: a malformed proof, or one without the
	// current nonce, is refused before anything is looked up.
	s.offerDPoPNonce(w, r)
	proof, err := s.dpopProofFrom(r, s.url(pathPAR), "")
	if err != nil {
		s.writeOAuthError(ctx, w, r, err)
		return
	}
	signed, err := s.unpackRequestObject(ctx, r, parClientID(r), clientAuthParameters)
	if err != nil {
		s.writeOAuthError(ctx, w, r, err)
		return
	}
	ar, err := s.oauth.NewPushedAuthorizeRequest(ctx, r)
	if err == nil && signed != nil && ar.GetClient().GetID() != signed.clientID {
		err = fosite.ErrInvalidRequestObject.WithHint("The request object was signed for another client than the one that authenticated.")
	}
	if err == nil {
		err = requireSignedRequest(ar.GetClient(), signed != nil)
	}
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
	if err == nil && signed != nil {
		err = s.spendRequestObject(ctx, signed)
	}
	if err == nil {
		err = s.bindPARToDPoP(r, ar, proof)
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

// bindPARToDPoP binds a pushed request's code to the key of its DPoP
// proof, as if the proof's thumbprint had been sent as dpop_jkt (RFC 9449
// §10.1); with both, they must agree. The proof's jti is spent only now,
// once the client has authenticated and the request passed every check,
// so that only an authenticated client can make us store one.
func (s *Server) bindPARToDPoP(r *http.Request, ar fosite.AuthorizeRequester, proof *dpopProof) error {
	if proof == nil {
		return nil
	}
	form := ar.GetRequestForm()
	if jkt := form.Get(dpopJKTForm); jkt != "" && jkt != proof.jkt {
		return errInvalidDPoPProof("The 'dpop_jkt' parameter is not the thumbprint of the DPoP proof's key.")
	}
	if err := s.spendDPoPProof(r, proof); err != nil {
		return err
	}
	form.Set(dpopJKTForm, proof.jkt)
	return nil
}

// clientAuthParameters are the PAR body's client authentication (RFC 6749
// §2.3.1, RFC 7521 §4.2), which stay beside a request object's parameters.
var clientAuthParameters = []string{"client_id", "client_secret", "client_assertion", "client_assertion_type"}

// parClientID is the client a PAR request says it is (client_id in the
// body, or the HTTP Basic user name), whose keys must have signed its
// request object. fosite authenticates the client afterwards, and
// handlePAR checks the two are the same.
func parClientID(r *http.Request) string {
	if id := r.PostForm.Get("client_id"); id != "" {
		return id
	}
	if user, _, ok := r.BasicAuth(); ok {
		if id, err := url.QueryUnescape(user); err == nil {
			return id
		}
	}
	return ""
}
