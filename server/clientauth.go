package server

import (
	"net/http"
	"net/url"

	"github.com/ory/fosite"
)

// checkClientAuthPresent refuses a request that carries no usable client
// credentials with 401 invalid_client, as SPEC asks. fosite would answer
// 400 invalid_request for a missing or undecodable Basic header; the rest
// (unknown client, wrong secret, wrong method) fosite checks itself.
func checkClientAuthPresent(r *http.Request, form url.Values) error {
	if r.Header.Get("Authorization") != "" {
		id, secret, ok := r.BasicAuth()
		if !ok {
			return fosite.ErrInvalidClient.WithHint("The Authorization header is not valid HTTP Basic authentication.")
		}
		if _, err := url.QueryUnescape(id); err != nil {
			return fosite.ErrInvalidClient.WithHint("The client id in the Authorization header is not form-encoded.")
		}
		if _, err := url.QueryUnescape(secret); err != nil {
			return fosite.ErrInvalidClient.WithHint("The client secret in the Authorization header is not form-encoded.")
		}
		return nil
	}
	if form.Get("client_id") == "" && form.Get("client_assertion") == "" {
		return fosite.ErrInvalidClient.WithHint("Client authentication is missing: use HTTP Basic, client_id and client_secret in the body, or a client assertion.")
	}
	return nil
}

// readClientForm parses the form of a request to an endpoint that
// authenticates clients and checks that credentials are there at all; on
// failure it has written the error and returns false.
func (s *Server) readClientForm(w http.ResponseWriter, r *http.Request) bool {
	if err := r.ParseForm(); err != nil {
		s.writeOAuthError(r.Context(), w, r, fosite.ErrInvalidRequest.WithHint("The request body is not a valid form.").WithWrap(err))
		return false
	}
	if err := checkClientAuthPresent(r, r.PostForm); err != nil {
		s.writeOAuthError(r.Context(), w, r, err)
		return false
	}
	return true
}
