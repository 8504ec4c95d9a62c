package connector

import (
	"errors"
	"io"
	"net/http"
	"time"
)

// UpstreamError is an error the upstream sent back to the callback (RFC
// 6749 §4.1.2.1: access_denied when the person said no, and so on).
type UpstreamError struct {
	Code        string
	Description string
}

func (e *UpstreamError) Error() string {
	return "connector: the upstream answered " + e.Code + ": " + e.Description
}

// ErrMisdirected is an answer that does not belong to the attempt: a
// wrong nonce, another issuer (RFC 9207 iss), a userinfo or refreshed ID
// token of another person. The person is told the answer does not belong
// to their sign-in; the log says which check failed.
var ErrMisdirected = errors.New("connector: the upstream's answer does not belong to this sign-in")

// maxUpstreamBody caps what Latch reads of any upstream answer (discovery,
// keys, tokens, user info): a hostile or broken upstream cannot make it
// buffer more.
const maxUpstreamBody = 1 << 20

// NewHTTPClient is the client every connector calls its upstream with: a
// timeout on the whole exchange, and bodies cut at maxUpstreamBody.
func NewHTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: capBodies{http.DefaultTransport}}
}

type capBodies struct{ next http.RoundTripper }

func (c capBodies) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.LimitReader(resp.Body, maxUpstreamBody), resp.Body}
	return resp, nil
}
