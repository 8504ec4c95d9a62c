package server

import (
	"context"
	"errors"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"

	"github.com/latchauth/latch/storage"
)

// Single-use things at the token endpoint. The store makes each use a
// conditional update that only one of several concurrent uses can win
// (storage/tokens.go); fosite reads before it writes, so a loser learns
// it lost only when its write changes nothing, and fosite answers that
// with a 500 (a code) or a "please retry" invalid_request (a refresh
// token). The handlers below turn the lost race into what a sequential
// second use gets: 400 invalid_grant, and the grant revoked, because a
// second use of a single-use credential means it leaked (RFC 6749
// §4.1.2, RFC 6819 §5.2.2.3, RFC 9700 §4.14.2).

// codeOnce is fosite's authorization code grant at the token endpoint,
// with the loser of a concurrent exchange of one code answered as a reuse.
type codeOnce struct {
	*oauth2.AuthorizeExplicitGrantHandler
}

func (h codeOnce) PopulateTokenEndpointResponse(ctx context.Context, ar fosite.AccessRequester, resp fosite.AccessResponder) error {
	err := h.AuthorizeExplicitGrantHandler.PopulateTokenEndpointResponse(ctx, ar, resp)
	switch {
	case errors.Is(err, fosite.ErrInvalidatedAuthorizeCode):
		// ar carries the code's request ID (HandleTokenEndpointRequest
		// set it), which is the ID of every token the winner stored.
		return reuseDetected(ctx, h.TokenRevocationStorage, ar.GetID(), fosite.ErrInvalidGrant.WithHint("The authorization code has already been used."))
	case errors.Is(err, fosite.ErrNotFound):
		return fosite.ErrInvalidGrant.WithHint("The authorization code is not valid.").WithWrap(err)
	}
	return err
}

// reuseDetected revokes every token of the grant requestID and answers
// refusal, or 503 when the revocation failed: the caller must not believe
// the grant ended when it did not.
func reuseDetected(ctx context.Context, store oauth2.TokenRevocationStorage, requestID string, refusal *fosite.RFC6749Error) error {
	// The refresh tokens first: once they are inactive nothing can mint
	// another access token for the grant.
	if err := store.RevokeRefreshToken(ctx, requestID); err != nil && !errors.Is(err, fosite.ErrNotFound) {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	if err := store.RevokeAccessToken(ctx, requestID); err != nil && !errors.Is(err, fosite.ErrNotFound) {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	return refusal.WithDebug("A single-use credential was used again; every token of its grant was revoked.")
}

// parOnce is the store fosite's authorization endpoint reads pushed
// requests from. fosite reads a request_uri's request and deletes it
// afterwards, so concurrent uses all read it before any delete; here the
// read also spends it, by a delete only one of them can make (the store
// answers ErrNotFound to the others), and fosite answers every other use
// invalid_request_uri, as for an unknown one (RFC 9126 §4: one use).
type parOnce struct {
	storage.Store
}

func (p parOnce) GetPARSession(ctx context.Context, requestURI string) (fosite.AuthorizeRequester, error) {
	ar, err := p.Store.GetPARSession(ctx, requestURI)
	if err != nil {
		return nil, err
	}
	if err := p.Store.DeletePARSession(ctx, requestURI); err != nil {
		return nil, err
	}
	return ar, nil
}

// DeletePARSession does nothing: GetPARSession spent the request.
func (parOnce) DeletePARSession(context.Context, string) error { return nil }

// refreshOnce is the refresh token grant with a refresh token spent once:
// the loser of a concurrent rotation, to which fosite answers "please
// retry" (a retry would only be refused as a reuse), gets what a later
// second use gets, invalid_grant with its grant revoked. With
// refresh_token_grace_period the store lets concurrent refreshes inside
// the period all win instead. A revoked refresh token is told apart from
// a used one.
type refreshOnce struct {
	refreshScopes
}

func (h refreshOnce) HandleTokenEndpointRequest(ctx context.Context, ar fosite.AccessRequester) error {
	err := h.refreshScopes.HandleTokenEndpointRequest(ctx, ar)
	if errors.Is(err, storage.ErrRevoked) {
		// fosite has run its reuse detection, which finds the grant
		// already ended, and says "already used".
		return errRefreshRevoked.WithWrap(err)
	}
	return err
}

func (h refreshOnce) PopulateTokenEndpointResponse(ctx context.Context, ar fosite.AccessRequester, resp fosite.AccessResponder) error {
	err := h.refreshScopes.PopulateTokenEndpointResponse(ctx, ar, resp)
	switch {
	case errors.Is(err, storage.ErrRevoked):
		return errRefreshRevoked.WithWrap(err)
	case errors.Is(err, fosite.ErrInactiveToken):
		// ar carries the grant's request ID (HandleTokenEndpointRequest
		// set it).
		return reuseDetected(ctx, h.TokenRevocationStorage, ar.GetID(), fosite.ErrInvalidGrant.WithHint("The refresh token was already used."))
	case errors.Is(err, fosite.ErrNotFound):
		return fosite.ErrInvalidGrant.WithHint("The refresh token is malformed or not valid.").WithWrap(err)
	}
	return err
}

var errRefreshRevoked = fosite.ErrInvalidGrant.WithHint("The refresh token was revoked.")
