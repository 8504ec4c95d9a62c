package storage

import (
	"context"
	"time"
)

// Checkpoints off the write path.
//
// SQLite copies the WAL back into the database file (a checkpoint) in
// whichever commit finds the WAL over wal_autocheckpoint pages: that
// commit then writes and syncs the pages while every writer waits for the
// one write connection. A file store therefore also checkpoints from a
// read connection every checkpointInterval, in PASSIVE mode, which never
// blocks the writer and is not blocked by it. The writer's own automatic
// checkpoint stays, at checkpointBackstop pages; it finds most frames
// already copied and has little left to do. (Measured: with the backstop
// at 8000 pages the WAL still reached it under load and p99 latency
// doubled; at 1000, throughput fell by a tenth.) Checkpoints keep their
// own syncs (the WAL before, the database file after), so nothing durable
// becomes less so.

const (
	checkpointInterval = 100 * time.Millisecond
	checkpointBackstop = 2000 // pages: 8 MiB of WAL
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
			// (Rows, not Row: GORM answers a failed preparation with an
			// empty sql.Row, whose Scan panics.)
			if err := s.checkpoint(ctx); err != nil {
				s.log.Debug("background checkpoint", "error", err)
			}
			cancel()
		}
	}
}

// checkpoint runs one PASSIVE checkpoint and reads its row to the end.
func (s *GormStore) checkpoint(ctx context.Context) error {
	rows, err := s.readPool.WithContext(ctx).Raw("PRAGMA wal_checkpoint(PASSIVE)").Rows()
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var busy, frames, copied int
		if err := rows.Scan(&busy, &frames, &copied); err != nil {
			return err
		}
	}
	return rows.Err()
}
