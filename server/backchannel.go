package server

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"sync"
	"time"

	"github.com/ory/fosite"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/storage"
)

// OpenID Connect Back-Channel Logout 1.0. A client with a
// backchannel_logout_uri that gets a code or token in a login session is
// recorded against it (recordSessionClient); whatever ends the session
// queues, in the same transaction, one delivery per such client
// (storage/backchannel.go); a worker beside the janitor (LogoutDeliveries)
// claims due deliveries, signs a logout token for each and POSTs it
// (backchannel_send.go). Nothing of this runs in the request that ended
// the session: a slow or dead client never holds a logout page up.

// Outcomes of a delivery attempt: the closed label set of
// latch_backchannel_logout_deliveries_total.
const (
	outcomeDelivered = "delivered" // the client answered 200 or 204
	outcomeRetry     = "retry"     // the attempt failed; another follows
	outcomeFailed    = "failed"    // the client refused the token (a 3xx or 4xx): not retried
	outcomeDropped   = "dropped"   // given up after the last attempt, or never sent (queue full, client gone or without URI, too late)
)

var logoutOutcomes = []string{outcomeDelivered, outcomeRetry, outcomeFailed, outcomeDropped}

const (
	// logoutMaxAttempts bounds the attempts of one delivery; with the
	// default RetryBase they span 10 minutes (40 s, 80 s, 160 s, 320 s).
	logoutMaxAttempts = 5
	// logoutClaimBatch is how many deliveries one pass claims (and sends
	// at once); logoutMaxBatches bounds the batches of one pass.
	logoutClaimBatch = 16
	logoutMaxBatches = 64
)

// BackchannelOptions tune the delivery of logout tokens; tests shorten
// them. Zero fields take the defaults.
type BackchannelOptions struct {
	// Poll is how often the worker looks for due deliveries (default
	// 2 s). An end of session on this instance wakes it at once; Poll is
	// for those of other instances and the CLI, and for retries.
	Poll time.Duration
	// RetryBase is the wait after a first failed attempt, doubled after
	// each further one (default 40 s).
	RetryBase time.Duration
	// Timeout bounds one attempt, from connecting to the answer's status
	// (default 5 s).
	Timeout time.Duration
}

func (o *BackchannelOptions) fillDefaults() {
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	if o.RetryBase <= 0 {
		o.RetryBase = 40 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
}

// lease is how long a claimed delivery stays with its claimer: longer
// than an attempt can take, so that only a claimer that died loses it.
func (o *BackchannelOptions) lease() time.Duration { return 2*o.Timeout + 10*time.Second }

// backoff is the wait after the attempts-th failed attempt.
func (o *BackchannelOptions) backoff(attempts int) time.Duration {
	return o.RetryBase << min(max(attempts-1, 0), 16)
}

// sessionSID is the sid of the login session stored under handle (ID
// tokens and logout tokens, §2.1 and §2.4): a digest of the handle,
// itself a digest of the cookie's session ID, so that neither the
// cookie nor the handle operators see can be read from a token. It is
// unkeyed, so it stays the same across a rotation of secrets.system.
func sessionSID(handle string) string {
	sum := sha256.Sum256([]byte("latch sid\x00" + handle))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// recordSessionClient records that client is getting a code or token in
// ls, when the client wants logout tokens (it has a back-channel URI): a
// client without one costs the authorization no write.
func (s *Server) recordSessionClient(ctx context.Context, ls *storage.LoginSession, client fosite.Client) error {
	c, ok := client.(*clients.Client)
	q, queues := s.store.(storage.BackchannelLogouts)
	if !ok || !queues || ls == nil || c.BackchannelLogoutURI == "" {
		return nil
	}
	return q.RecordSessionClient(ctx, ls, c.ID)
}

// logoutsQueued wakes the worker after this instance ended sessions, so
// their clients hear of it now rather than at the next poll.
func (s *Server) logoutsQueued() {
	select {
	case s.logouts.wake <- struct{}{}:
	default:
	}
}

// LogoutDeliveries sends queued logout tokens until ctx ends: `latch
// serve` runs it beside the janitor. Every instance may run it; a
// delivery is claimed by one at a time.
func (s *Server) LogoutDeliveries(ctx context.Context) {
	q, ok := s.store.(storage.BackchannelLogouts)
	if !ok {
		return
	}
	t := time.NewTicker(s.cfg.Backchannel.Poll)
	defer t.Stop()
	for {
		s.deliverLogouts(ctx, q)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.logouts.wake:
		}
	}
}

// deliverLogouts runs one pass: it claims what is due, a batch at a time,
// and sends each batch's tokens at once.
func (s *Server) deliverLogouts(ctx context.Context, q storage.BackchannelLogouts) {
	// The store counts what it could not queue; the metric catches up.
	if n := q.LogoutDeliveriesDropped(); n > 0 {
		if seen := s.logouts.droppedSeen.Swap(n); n > seen {
			s.metrics.logoutDeliveries.WithLabelValues(outcomeDropped).Add(float64(n - seen))
		}
	}
	for range logoutMaxBatches {
		batch, err := q.ClaimLogoutDeliveries(ctx, s.now(), logoutClaimBatch, s.cfg.Backchannel.lease())
		if err != nil && !errors.Is(err, context.Canceled) {
			s.log.Warn("back-channel logout: claiming deliveries failed", "error", err)
		}
		var wg sync.WaitGroup
		for _, d := range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.deliverLogout(ctx, q, d)
			}()
		}
		wg.Wait()
		if err != nil || len(batch) < logoutClaimBatch || ctx.Err() != nil {
			return
		}
	}
}

// deliverLogout makes one attempt at d and records its outcome: the row
// goes when it is settled, or waits for the next attempt.
func (s *Server) deliverLogout(ctx context.Context, q storage.BackchannelLogouts, d storage.LogoutDelivery) {
	outcome, status, err := s.sendLogout(ctx, d)
	if ctx.Err() != nil {
		return // shutting down: the claim lapses and the attempt is made again
	}
	if outcome == outcomeRetry && d.Attempts >= logoutMaxAttempts {
		outcome = outcomeDropped
	}
	s.metrics.logoutDeliveries.WithLabelValues(outcome).Inc()
	attrs := []any{"client_id", d.ClientID, "attempt", d.Attempts, "outcome", outcome}
	if status != 0 {
		attrs = append(attrs, "status", status)
	}
	if err != nil {
		attrs = append(attrs, "error", err)
	}
	if outcome == outcomeDelivered {
		s.log.Info("back-channel logout delivered", attrs...)
	} else {
		s.log.Warn("back-channel logout not delivered", attrs...)
	}
	var ferr error
	if outcome == outcomeRetry {
		ferr = q.RetryLogoutDelivery(ctx, d, s.now().Add(s.cfg.Backchannel.backoff(d.Attempts)))
	} else {
		ferr = q.DeleteLogoutDelivery(ctx, d)
	}
	if ferr != nil {
		// The claim lapses and the delivery is tried again then.
		s.log.Warn("back-channel logout: recording the outcome failed", "client_id", d.ClientID, "error", ferr)
	}
}
