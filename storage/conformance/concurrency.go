package conformance

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ory/fosite/handler/openid"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/storage"
)

// concurrencyTests run many writers at once. Each is bounded in rounds and
// in time, so a slow backend runs fewer rounds rather than a longer test.
func concurrencyTests() []subtest {
	return []subtest{
		{"ConcurrentWriters", testConcurrentWriters},
		{"ConcurrentRefreshTransactions", testConcurrentRefreshTransactions},
		{"ConcurrentRotationOneWinner", testConcurrentRotationOneWinner},
	}
}

const (
	workers         = 32
	roundsPerWorker = 50
	concurrencyFor  = 5 * time.Second
)

// errorLog collects the errors of many goroutines; require must not be
// called off the test's goroutine.
type errorLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errorLog) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, fmt.Errorf(format, args...))
}

// report fails t with the first errors and says whether SQLite's lock was
// among them: the store must queue writers, never hand "database is
// locked" to a caller.
func (l *errorLog) report(t *testing.T) {
	t.Helper()
	if len(l.errs) == 0 {
		return
	}
	locked := 0
	for _, err := range l.errs {
		msg := strings.ToLower(err.Error())
		if strings.Contains(msg, "locked") || strings.Contains(msg, "busy") {
			locked++
		}
	}
	shown := l.errs[:min(10, len(l.errs))]
	t.Fatalf("%d errors under concurrency (%d of them database locked/busy); first %d:\n%v",
		len(l.errs), locked, len(shown), errors.Join(shown...))
}

// runWorkers runs work(w, round) on workers goroutines until each has done
// roundsPerWorker rounds or concurrencyFor has passed; it returns how many
// rounds each worker completed.
func runWorkers(work func(w, round int) bool) []int {
	deadline := time.Now().Add(concurrencyFor)
	done := make([]int, workers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for round := 0; round < roundsPerWorker && time.Now().Before(deadline); round++ {
				if !work(w, round) {
					return
				}
				done[w]++
			}
		}()
	}
	close(start)
	wg.Wait()
	return done
}

func testConcurrentWriters(t *testing.T, s storage.Store) {
	c := createClient(t, s, "app")
	var log errorLog
	done := runWorkers(func(w, round int) bool {
		id := fmt.Sprintf("w%02d-%03d", w, round)
		req := newRequest(c, id, fmt.Sprintf("user-%02d", w), now().Add(time.Hour))
		if err := s.CreateAccessTokenSession(ctx(t), "at-"+id, req); err != nil {
			log.add("CreateAccessTokenSession %s: %w", id, err)
			return false
		}
		if err := s.CreateRefreshTokenSession(ctx(t), "rt-"+id, "at-"+id, req); err != nil {
			log.add("CreateRefreshTokenSession %s: %w", id, err)
			return false
		}
		if _, err := s.GetAccessTokenSession(ctx(t), "at-"+id, openid.NewDefaultSession()); err != nil {
			log.add("GetAccessTokenSession %s: %w", id, err)
		}
		if _, err := s.GetRefreshTokenSession(ctx(t), "rt-"+id, openid.NewDefaultSession()); err != nil {
			log.add("GetRefreshTokenSession %s: %w", id, err)
		}
		if round%2 == 0 {
			if err := s.RevokeRefreshToken(ctx(t), id); err != nil {
				log.add("RevokeRefreshToken %s: %w", id, err)
			}
			if err := s.RevokeAccessToken(ctx(t), id); err != nil {
				log.add("RevokeAccessToken %s: %w", id, err)
			}
		}
		return true
	})
	log.report(t)

	total := 0
	for w, rounds := range done {
		total += rounds
		for round := range rounds {
			id := fmt.Sprintf("w%02d-%03d", w, round)
			if round%2 == 0 {
				requireInactive(t, s, "rt-"+id, id)
				requireAccess(t, s, "at-"+id, false)
			} else {
				requireActive(t, s, "rt-"+id, id)
				requireAccess(t, s, "at-"+id, true)
			}
		}
	}
	t.Logf("%d workers completed %d rounds", workers, total)
}

// testConcurrentRefreshTransactions runs fosite's refresh flow on many
// grants at once: read the refresh token, then in one transaction rotate
// it and store the new pair. A transaction that reads before it writes is
// where SQLite answers SQLITE_BUSY at once, whatever the busy timeout.
func testConcurrentRefreshTransactions(t *testing.T, s storage.Store) {
	c := createClient(t, s, "app")
	grant := func(w int) string { return fmt.Sprintf("grant-%02d", w) }
	sig := func(w, round int) string { return fmt.Sprintf("%02d-%03d", w, round) }
	for w := range workers {
		issue(t, s, c, grant(w), fmt.Sprintf("user-%02d", w), "at-"+sig(w, 0), "rt-"+sig(w, 0))
	}

	var log errorLog
	done := runWorkers(func(w, round int) bool {
		if err := refreshOnce(t, s, c, grant(w), sig(w, round), sig(w, round+1)); err != nil {
			log.add("refresh %s round %d: %w", grant(w), round, err)
			return false
		}
		return true
	})
	log.report(t)

	for w, rounds := range done {
		for round := 0; round < rounds; round++ {
			requireInactive(t, s, "rt-"+sig(w, round), grant(w))
			requireAccess(t, s, "at-"+sig(w, round), false)
		}
		requireActive(t, s, "rt-"+sig(w, rounds), grant(w))
		requireAccess(t, s, "at-"+sig(w, rounds), true)
	}
}

// refreshOnce is what fosite's refresh token handler asks of the store.
func refreshOnce(t *testing.T, s storage.Store, c *clients.Client, requestID, oldSig, newSig string) (err error) {
	orig, err := s.GetRefreshTokenSession(ctx(t), "rt-"+oldSig, openid.NewDefaultSession())
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	txCtx, err := s.BeginTX(ctx(t))
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			if rbErr := s.Rollback(txCtx); rbErr != nil {
				err = fmt.Errorf("%w (rollback: %v)", err, rbErr)
			}
		}
	}()
	if err := s.RotateRefreshToken(txCtx, requestID, "rt-"+oldSig); err != nil {
		return fmt.Errorf("rotate: %w", err)
	}
	req := newRequest(c, requestID, orig.GetSession().GetSubject(), now().Add(time.Hour))
	if err := s.CreateAccessTokenSession(txCtx, "at-"+newSig, req); err != nil {
		return fmt.Errorf("create access: %w", err)
	}
	if err := s.CreateRefreshTokenSession(txCtx, "rt-"+newSig, "at-"+newSig, req); err != nil {
		return fmt.Errorf("create refresh: %w", err)
	}
	if err := s.Commit(txCtx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// testConcurrentRotationOneWinner: eight refreshes race with one refresh
// token, each as fosite runs it (rotate and store the new pair in one
// transaction). Exactly one may win; the rest fail without leaving a pair.
func testConcurrentRotationOneWinner(t *testing.T, s storage.Store) {
	c := createClient(t, s, "app")
	issue(t, s, c, "grant", "alice", "at-0", "rt-0")

	const racers = 8
	errs := make([]error, racers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = refreshOnce(t, s, c, "grant", "0", fmt.Sprintf("new-%d", i))
		}()
	}
	close(start)
	wg.Wait()

	winners := 0
	for i, err := range errs {
		if err == nil {
			winners++
			requireActive(t, s, fmt.Sprintf("rt-new-%d", i), "grant")
			requireAccess(t, s, fmt.Sprintf("at-new-%d", i), true)
			continue
		}
		// A racer that reads after the winner committed already sees the
		// token inactive; one that read before loses at the rotation.
		requireRotationLost(t, err)
		_, getErr := s.GetRefreshTokenSession(ctx(t), fmt.Sprintf("rt-new-%d", i), openid.NewDefaultSession())
		requireNotFound(t, getErr, "the refresh token of a refresh that lost the race")
	}
	if winners != 1 {
		t.Fatalf("%d of %d refreshes with one refresh token succeeded, want exactly 1; errors: %v", winners, racers, errs)
	}
	requireInactive(t, s, "rt-0", "grant")
	requireAccess(t, s, "at-0", false)
}
