package storage

import (
	"errors"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
)

// Group commit for SQLite.
//
// With synchronous=FULL SQLite fsyncs the WAL inside every commit, while
// the one write connection is held: at about 0.2 ms per fsync the writers
// of the whole server queue behind the disk one at a time, whatever their
// number. The write connection therefore runs with synchronous=NORMAL,
// where a commit appends its frames to the WAL without syncing, and each
// writer, after its commit and after handing the connection on, waits for
// an fsync of the WAL that began after its commit. One fsync covers every
// commit made before it started, so 32 concurrent writers share a handful
// of fsyncs instead of queueing for 32. No write method returns, and so no
// request is answered, before its commit is on disk: the guarantee of
// synchronous=FULL, at a fraction of the cost.
//
// Checkpoints keep their own syncs in NORMAL mode (the WAL before, the
// database file after), so what is moved out of the WAL stays durable; a
// WAL that a checkpoint has emptied and removed has nothing left to sync.

// walSyncer makes commits durable in groups: commit numbers the commits,
// wait blocks until an fsync that started after commit n has finished.
type walSyncer struct {
	path    string // the -wal file
	sync    func() error
	commits atomic.Uint64

	mu      sync.Mutex
	done    *sync.Cond
	synced  uint64 // every commit up to this one is on disk
	syncing bool
	failed  uint64 // commits up to this one saw err
	err     error
}

func newWALSyncer(dbPath string) *walSyncer {
	w := &walSyncer{path: dbPath + "-wal"}
	w.sync = w.fsync
	w.done = sync.NewCond(&w.mu)
	return w
}

// commit records a finished commit and returns its number.
func (w *walSyncer) commit() uint64 { return w.commits.Add(1) }

// wait returns once commit n is on disk, syncing the WAL itself when no
// sync is under way (it then covers every commit made so far), or the
// error of the sync that should have covered it.
func (w *walSyncer) wait(n uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.synced < n {
		if w.failed >= n && w.err != nil {
			return w.err
		}
		if w.syncing {
			w.done.Wait()
			continue
		}
		w.syncing = true
		upTo := w.commits.Load()
		w.mu.Unlock()
		err := w.sync()
		w.mu.Lock()
		w.syncing = false
		if err != nil {
			w.failed, w.err = upTo, err
		} else if upTo > w.synced {
			w.synced = upTo
		}
		w.done.Broadcast()
	}
	return nil
}

// fsync syncs the WAL by name, not through a descriptor kept open: SQLite
// may remove and recreate the file, and on Linux an fsync through any
// descriptor of the file flushes it.
func (w *walSyncer) fsync() error {
	f, err := os.Open(w.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // checkpointed and removed: the database file was synced
	}
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// durable waits until the commits this store made so far are on disk. It
// is a no-op without a WAL syncer (PostgreSQL, which syncs and groups its
// own commits, and in-memory SQLite).
func (s *GormStore) durable(n uint64) error {
	if s.wal == nil {
		return nil
	}
	if err := s.wal.wait(n); err != nil {
		return errors.Join(ErrUnavailable, err)
	}
	return nil
}

// committed numbers a commit just made (0 without a WAL syncer).
func (s *GormStore) committed() uint64 {
	if s.wal == nil {
		return 0
	}
	return s.wal.commit()
}
