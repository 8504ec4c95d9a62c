package server

import (
	"net/http"

	"github.com/ory/fosite"
)

// RFC 9207: every authorization response, success or error and in every
// response mode (query, fragment, form_post), carries iss, the issuer
// identifier. A client talking to several authorization servers compares
// it with the issuer it sent the request to and so cannot be tricked into
// sending one server's code to another (the mix-up attack, RFC 9207 §1).
// Discovery says so with authorization_response_iss_parameter_supported.

// writeAuthorizeResponse sends a successful authorization response with
// iss added.
func (s *Server) writeAuthorizeResponse(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, resp fosite.AuthorizeResponder) {
	resp.AddParameter("iss", s.cfg.Issuer)
	s.formPostHeaders(w, ar)
	s.oauth.WriteAuthorizeResponse(r.Context(), w, ar, resp)
}

// redirectAuthorizeError sends rfc to the client's (already verified)
// redirect URI as an authorization error response with iss. fosite's own
// WriteAuthorizeError has no way to add a parameter, so the error is sent
// through the success writer, which encodes the parameters the same way
// for each response mode (RFC 6749 §4.1.2.1, OAuth 2.0 Form Post Response
// Mode §2).
func (s *Server) redirectAuthorizeError(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, rfc *fosite.RFC6749Error) {
	resp := fosite.NewAuthorizeResponse()
	for k, v := range rfc.WithExposeDebug(false).ToValues() {
		resp.AddParameter(k, v[0])
	}
	if state := ar.GetState(); state != "" {
		resp.AddParameter("state", state)
	}
	s.writeAuthorizeResponse(w, r, ar, resp)
}
