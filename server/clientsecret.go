package server

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ory/fosite"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/storage"
)

// secretRefused is the answer to a failed secret (or none) client
// authentication, err being fosite's.
//
//   - A wrong secret is checked once more only when the stored row has
//     another secret hash than the (cached) client fosite checked: a
//     secret just rotated on another instance. Otherwise the refusal
//     stands after one hash run, and no cache entry is dropped, so wrong
//     secrets cost other callers nothing.
//   - A client over its wrong-secret budget keeps its *ThrottledError
//     (429 with Retry-After, see writeOAuthError).
//   - Every other refusal is a bare invalid_client: fosite's hints tell
//     an unauthenticated caller whether a client id exists and which
//     authentication method it is registered for.
func secretRefused(ctx context.Context, f *fosite.Fosite, store fosite.Storage, r *http.Request, form url.Values, err error) (fosite.Client, error) {
	var throttled *clients.ThrottledError
	switch {
	case errors.Is(err, storage.ErrUnavailable), errors.As(err, &throttled):
		return nil, err
	case errors.Is(err, clients.ErrMismatch):
		reloader, ok := store.(storage.ClientReloader)
		id := claimedClientID(r, form)
		if !ok || id == "" {
			break
		}
		changed, rerr := reloader.ReloadClient(ctx, id)
		if rerr != nil {
			return nil, rerr
		}
		if changed {
			client, err2 := f.DefaultClientAuthenticationStrategy(ctx, r, form)
			if err2 == nil {
				return client, nil
			}
			err = err2
			if errors.Is(err, storage.ErrUnavailable) || errors.As(err, &throttled) {
				return nil, err
			}
		}
	}
	var rfc *fosite.RFC6749Error
	if errors.As(err, &rfc) && rfc.ErrorField != fosite.ErrInvalidClient.ErrorField {
		return nil, err // invalid_request for a malformed request, say
	}
	return nil, fosite.ErrInvalidClient.WithWrap(err).WithDebug(err.Error())
}

// revealsAuthMethod reports whether a fosite hint about a client
// assertion names the method the client is registered for, which an
// unauthenticated caller must not learn.
func revealsAuthMethod(hint string) bool {
	return strings.Contains(hint, "only supports client authentication method") ||
		strings.Contains(hint, "does not support client authentication")
}

// errSecretsThrottled is the 429 of a client whose secret has had too many
// wrong guesses: like the rate limit's too_many_requests, with Retry-After.
func errSecretsThrottled() *fosite.RFC6749Error {
	return &fosite.RFC6749Error{
		ErrorField:       "too_many_requests",
		DescriptionField: "Too many failed client authentications for this client; retry after the time in Retry-After.",
		CodeField:        http.StatusTooManyRequests,
	}
}

// retryAfterSeconds is t.RetryAfter in whole seconds, at least 1, for Retry-After.
func retryAfterSeconds(t *clients.ThrottledError) string {
	secs := int(t.RetryAfter.Seconds() + 0.999)
	return strconv.Itoa(max(1, secs))
}
