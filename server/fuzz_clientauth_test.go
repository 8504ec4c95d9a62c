package server

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/ory/fosite"
)

// FuzzClientAuthHeader gives checkClientAuthPresent arbitrary Authorization
// headers and form bodies: it must never panic, and its answer is nil or an
// RFC 6749 invalid_client / invalid_request error.
func FuzzClientAuthHeader(f *testing.F) {
	f.Add("", "client_id=a&client_secret=b")
	f.Add("", "client_assertion=x")
	f.Add("", "")
	f.Add("Basic YTpi", "")
	f.Add("Basic YSViOmM=", "") // "a%b:c": id not form-encoded
	f.Add("Basic YTpiJXp6", "") // "a:b%zz": secret not form-encoded
	f.Add("Basic !!!", "client_id=a")
	f.Add("Basic ", "")
	f.Add("basic YTpi", "")
	f.Add("Bearer token", "client_id=a")
	f.Add("Basic YWJj", "") // "abc": no colon
	f.Fuzz(func(t *testing.T, authz, body string) {
		req := httptest.NewRequest(http.MethodPost, "/oauth2/token", nil)
		if authz != "" {
			req.Header["Authorization"] = []string{authz}
		}
		form, err := url.ParseQuery(body)
		if err != nil {
			form = url.Values{}
		}
		err = checkClientAuthPresent(req, form)
		if err == nil {
			return
		}
		var rfc *fosite.RFC6749Error
		if !errors.As(err, &rfc) {
			t.Fatalf("error %T is not a fosite RFC6749Error: %v", err, err)
		}
		if rfc.ErrorField != fosite.ErrInvalidClient.ErrorField && rfc.ErrorField != fosite.ErrInvalidRequest.ErrorField {
			t.Fatalf("error %q, want invalid_client or invalid_request", rfc.ErrorField)
		}
	})
}
