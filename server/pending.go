package server

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"unicode"

	"github.com/ory/fosite"

	"github.com/latchauth/latch/storage"
)

// What a caller who never authenticates may make Latch keep: an
// authorization request waiting for a login (kept 30 minutes), a pushed
// authorization request (90 seconds) or a device authorization (the
// device code lifespan) of a public client. Three bounds hold each: every
// parameter has a size cap and so has their sum (checkParameterSizes);
// the store keeps only the parameters a flow reads back (storage's
// storedFormKeys); and the rows still waiting are bounded per client and
// per caller address, counted in the database so that every instance
// enforces the same bound (pendingBound).

const (
	// maxParameterBytes caps one parameter (all its values together).
	maxParameterBytes = 2 << 10
	// maxParametersBytes caps every name and value of a request together.
	maxParametersBytes = 16 << 10

	// defaultPendingPerClient and defaultPendingPerAddress bound the rows
	// of one kind waiting at once. A client's bound is high: its users
	// start sign-ins from everywhere. An address's is lower but leaves
	// room for an office behind one NAT address.
	defaultPendingPerClient  = 10000
	defaultPendingPerAddress = 100

	// pendingRetryAfter is the Retry-After of a refusal: waiting rows
	// expire continuously, so a minute later there is usually room.
	pendingRetryAfter = 60
)

// largeParameters may be longer than maxParameterBytes: a signed request
// object (RFC 9101), an ID token given as a hint, a claims request.
var largeParameters = map[string]int{"request": 8 << 10, "id_token_hint": 8 << 10, "claims": 4 << 10}

// checkParameterSizes refuses a request with a parameter over its cap, or
// with more than maxParametersBytes of parameters in all: invalid_request,
// naming the parameter when its name is short and printable.
func checkParameterSizes(form url.Values) error {
	total := 0
	for name, values := range form {
		size := 0
		for _, v := range values {
			size += len(v)
		}
		limit, ok := largeParameters[name]
		if !ok {
			limit = maxParameterBytes
		}
		if size > limit || len(name) > maxParameterBytes {
			return fosite.ErrInvalidRequest.WithHintf("The parameter %s is longer than %d bytes.", parameterName(name), limit)
		}
		total += len(name) + size
	}
	if total > maxParametersBytes {
		return fosite.ErrInvalidRequest.WithHintf("The request's parameters are longer than %d bytes in all.", maxParametersBytes)
	}
	return nil
}

// parameterName quotes name for an error message, or describes it when it
// is too long or holds something not worth echoing.
func parameterName(name string) string {
	if len(name) > 64 {
		return "with a name that long"
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return "with that name"
		}
	}
	return "'" + name + "'"
}

// errTooManyPending is the 429 of a client or an address with too many
// requests waiting; too_many_requests as the token endpoint's rate limit.
func errTooManyPending(what string) *fosite.RFC6749Error {
	return &fosite.RFC6749Error{ErrorField: "too_many_requests", CodeField: http.StatusTooManyRequests,
		DescriptionField: fmt.Sprintf("Too many %s are waiting to be completed; try again later.", what)}
}

// pendingBound refuses, with a 429 and Retry-After set on w, a new row of
// kind for clientID from origin when either already has its bound of
// unexpired rows waiting. Rows created at the same moment by concurrent
// requests are not counted against each other, so a bound may be passed
// by as many.
func (s *Server) pendingBound(ctx context.Context, w http.ResponseWriter, kind storage.PendingKind, clientID, origin string) error {
	byClient, byOrigin, err := s.store.CountPending(ctx, kind, clientID, origin, s.now())
	if err != nil {
		return err
	}
	if byClient >= int64(s.cfg.PendingPerClient) || byOrigin >= int64(s.cfg.PendingPerAddress) {
		s.log.WarnContext(ctx, "too many pending requests", "kind", string(kind), "client_id", clientID, "origin", origin,
			"by_client", byClient, "by_origin", byOrigin)
		w.Header().Set("Retry-After", strconv.Itoa(pendingRetryAfter))
		return errTooManyPending(pendingWhat[kind])
	}
	return nil
}

// renderPendingError shows pendingBound's refusal to a person as a page.
func (s *Server) renderPendingError(w http.ResponseWriter, r *http.Request, err error) {
	if rfc := oauthError(err); rfc.CodeField == http.StatusTooManyRequests {
		s.renderError(w, r, rfc.CodeField, "Too many sign-ins are waiting to be completed right now.", "Try again in a minute.")
		return
	}
	s.renderStorageError(w, r, err)
}

var pendingWhat = map[storage.PendingKind]string{
	storage.PendingChallenge: "sign-in requests",
	storage.PendingPAR:       "pushed authorization requests",
	storage.PendingDevice:    "device authorizations",
}
