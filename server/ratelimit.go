package server

import (
	"context"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/ory/fosite"
	"golang.org/x/time/rate"

	"github.com/latchauth/latch/storage"
)

// The per-client rate limit of the token endpoint (a client's rate_limit,
// in token requests per second; 0 is unlimited). Each client has a token
// bucket of its rate with a burst of one second's worth (at least 1).
//
// Only authenticated requests spend from a bucket, so nobody who merely
// knows a client id can use up its budget. An empty bucket is also checked
// before authentication, by the client id the request claims, so a client
// over its limit costs no secret check and no database work; that check
// spends nothing. The buckets live in this process: with several instances
// behind a load balancer, each enforces the limit on its own share.

// errRateLimited is the 429 of a client over its rate. RFC 6749 has no
// error code for it; too_many_requests is what Auth0 and others send.
func errRateLimited() *fosite.RFC6749Error {
	return &fosite.RFC6749Error{
		ErrorField:       "too_many_requests",
		DescriptionField: "The client has sent more token requests than its rate limit allows.",
		CodeField:        http.StatusTooManyRequests,
	}
}

// clientLimiters holds one bucket per rate-limited client.
type clientLimiters struct {
	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

// bucket returns the bucket of clientID at perSecond, made (or remade,
// when the client's rate changed) on first use; nil when unlimited.
func (l *clientLimiters) bucket(clientID string, perSecond float64) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if perSecond <= 0 {
		delete(l.buckets, clientID)
		return nil
	}
	b := l.buckets[clientID]
	if b == nil || float64(b.Limit()) != perSecond {
		if l.buckets == nil {
			l.buckets = map[string]*rate.Limiter{}
		}
		b = rate.NewLimiter(rate.Limit(perSecond), int(math.Max(1, math.Ceil(perSecond))))
		l.buckets[clientID] = b
	}
	return b
}

// peek returns the bucket of a client already seen, without making one.
func (l *clientLimiters) peek(clientID string) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buckets[clientID]
}

// retryAfter is how long until b has a token again, in whole seconds (at
// least 1), for the Retry-After header.
func retryAfter(b *rate.Limiter, now time.Time) string {
	missing := 1 - b.TokensAt(now)
	wait := 1.0
	if missing > 0 {
		wait = math.Max(1, math.Ceil(missing/float64(b.Limit())))
	}
	return strconv.Itoa(int(wait))
}

// overLimitBeforeAuth reports whether the client r claims to be has an
// empty bucket; when so it has answered 429.
func (s *Server) overLimitBeforeAuth(ctx context.Context, w http.ResponseWriter, r *http.Request) bool {
	id := r.PostForm.Get("client_id")
	if user, _, ok := r.BasicAuth(); ok {
		id, _ = url.QueryUnescape(user)
	}
	if id == "" {
		return false
	}
	b := s.limits.peek(id)
	if b == nil {
		return false
	}
	now := time.Now()
	if b.TokensAt(now) >= 1 {
		return false
	}
	s.writeRateLimited(ctx, w, r, b, now)
	return true
}

// overLimit spends one token of the authenticated client's bucket; when
// there is none it has answered 429.
func (s *Server) overLimit(ctx context.Context, w http.ResponseWriter, r *http.Request, client fosite.Client) bool {
	limited, ok := client.(storage.RateLimited)
	if !ok {
		return false
	}
	b := s.limits.bucket(client.GetID(), limited.GetRateLimit())
	if b == nil {
		return false
	}
	now := time.Now()
	if b.AllowN(now, 1) {
		return false
	}
	s.writeRateLimited(ctx, w, r, b, now)
	return true
}

func (s *Server) writeRateLimited(ctx context.Context, w http.ResponseWriter, r *http.Request, b *rate.Limiter, now time.Time) {
	w.Header().Set("Retry-After", retryAfter(b, now))
	s.writeOAuthError(ctx, w, r, errRateLimited())
}
