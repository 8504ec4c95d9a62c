package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/gorilla/mux"
	"github.com/ory/fosite"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/storage"
)

// oauthError turns err into the RFC 6749 error to send. A failure of the
// database anywhere in the chain (fosite wraps a failed client lookup as
// invalid_client, a failed token lookup as server_error) becomes 503
// temporarily_unavailable: the client must retry, not conclude.
func oauthError(err error) *fosite.RFC6749Error {
	if errors.Is(err, storage.ErrUnavailable) {
		return fosite.ErrTemporarilyUnavailable.WithWrap(err).WithDebug(err.Error())
	}
	return fosite.ErrorToRFC6749Error(err)
}

// writeOAuthError writes the JSON error of an endpoint that takes client
// authentication (token, introspection, revocation) through fosite's own
// writer, adding WWW-Authenticate for 401s as RFC 6749 §5.2 asks.
func (s *Server) writeOAuthError(ctx context.Context, w http.ResponseWriter, r *http.Request, err error) {
	rfc := oauthError(err)
	var throttled *clients.ThrottledError
	if errors.As(err, &throttled) && !errors.Is(err, storage.ErrUnavailable) {
		w.Header().Set("Retry-After", retryAfterSeconds(throttled))
		rfc = errSecretsThrottled()
	}
	if rfc.CodeField == http.StatusUnauthorized {
		// auth-params are comma-separated (RFC 7235 §4.1, RFC 6750 §3).
		challenge := `Basic realm="latch"`
		if strings.HasPrefix(strings.ToLower(r.Header.Get("Authorization")), "bearer ") {
			challenge = `Bearer realm="latch", error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
	}
	if rfc.CodeField == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		// The database is unavailable: worth a retry soon (RFC 9110
		// §10.2.3), and the client should not conclude anything.
		w.Header().Set("Retry-After", "1")
	}
	if rfc.CodeField >= 500 {
		s.log.ErrorContext(ctx, "request failed", "path", r.URL.Path, "error", rfc.ErrorField, "debug", rfc.GetDescription()+" "+rfc.DebugField)
	} else {
		s.log.DebugContext(ctx, "request refused", "path", r.URL.Path, "error", rfc.ErrorField, "hint", rfc.HintField)
	}
	s.oauth.WriteAccessError(ctx, w, nil, rfc)
}

// writeJSON writes v with status and no caching.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeJSONError writes an error object ({"error", "error_description"})
// of a JSON endpoint that is not fosite's.
func writeJSONError(w http.ResponseWriter, status int, code, description string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}

func (s *Server) handleNotFound(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found", "error_description": "No such endpoint."})
}

func (s *Server) handleMethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	// A 405 must list the methods the resource allows (RFC 9110 §15.5.6).
	var allowed []string
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = method
		var match mux.RouteMatch
		if s.router.Match(probe, &match) && match.MatchErr == nil {
			allowed = append(allowed, method)
		}
	}
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	writeJSON(w, http.StatusMethodNotAllowed, map[string]string{
		"error": "invalid_request", "error_description": "HTTP method " + r.Method + " is not allowed here.",
	})
}
