package storage

import (
	"context"
	"time"
)

// Checkpoints off the write path.
//
// SQLite copies the WAL back into the database file (a checkpoint) in
// whichever commit finds the WAL over wal_autocheckpoint pages: that
// commit then writes and syncs a thousand pages while every writer waits
// for the one write connection. A file store instead checkpoints from a
// read connection every checkpointInterval, in PASSIVE mode, which never
// blocks the writer and is not blocked by it; the write connection keeps
// an automatic checkpoint only as a backstop, at checkpointBackstop
// pages, should the background one fall behind. Checkpoints keep their
// own syncs (the WAL before, the database file after), so nothing
// durable becomes less so.

const (
	checkpointInterval = 250 * time.Millisecond
	checkpointBackstop = 8000 // pages: 32 MiB of WAL
)

// checkpointer runs PASSIVE checkpoints until stop closes, then signals
// done.
func (s *GormStore) checkpointer(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			// The pragma answers a row, which must be read to the end:
			// a statement left unfinished keeps its connection's read
			// transaction, and its old snapshot, open.
			var busy, frames, copied int
			err := s.read.WithContext(ctx).Raw("PRAGMA wal_checkpoint(PASSIVE)").Row().Scan(&busy, &frames, &copied)
			if err != nil {
				s.log.Debug("background checkpoint", "error", err)
			}
			cancel()
		}
	}
}
