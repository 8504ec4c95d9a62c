package server

import (
	"context"
	"time"

	"github.com/latchauth/latch/storage"
)

// The janitor: the background clean-up of expired tokens, codes, sessions
// and used JWT IDs (storage.Store.DeleteExpiredInBatches). It deletes in
// small transactions so the requests writing beside it wait at most one
// batch, and counts what it deleted in the server's metrics.

// Janitor runs CleanUp every interval until ctx ends; interval <= 0 turns
// it off. `latch serve` runs it in the background.
func (s *Server) Janitor(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// A failed pass is logged and counted by CleanUp; the next
			// tick tries again.
			_, _ = s.CleanUp(ctx)
		}
	}
}

// CleanUp runs one pass of the janitor now and returns how many rows it
// deleted. What it deleted before an error stays deleted and counted.
func (s *Server) CleanUp(ctx context.Context) (int64, error) {
	start := s.now()
	n, err := s.store.DeleteExpiredInBatches(ctx, start, storage.DefaultCleanupBatch, func(table string, n int64) {
		s.metrics.janitorDeleted.WithLabelValues(table).Add(float64(n))
	})
	took := time.Since(start)
	if err != nil {
		s.metrics.janitorRuns.WithLabelValues("error").Inc()
		s.log.Warn("janitor: clean-up failed", "error", err, "rows", n, "duration", took)
		return n, err
	}
	s.metrics.janitorRuns.WithLabelValues("ok").Inc()
	s.metrics.janitorLastSuccess.SetToCurrentTime()
	s.log.Info("janitor: deleted expired rows", "rows", n, "duration", took)
	return n, nil
}
