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
