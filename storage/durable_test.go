package storage

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestWALSyncerGroupsCommits: every wait returns only after a sync that
// began after its commit, and concurrent commits share syncs.
func TestWALSyncerGroupsCommits(t *testing.T) {
	w := newWALSyncer(t.TempDir() + "/x.db")
	var syncs atomic.Int64
	var coveredMu sync.Mutex
	covered := uint64(0) // the highest commit a finished sync covered
	w.sync = func() error {
		upTo := w.commits.Load() // what this sync covers, read as it starts
		syncs.Add(1)
		time.Sleep(200 * time.Microsecond)
		coveredMu.Lock()
		if upTo > covered {
			covered = upTo
		}
		coveredMu.Unlock()
		return nil
	}
	const workers, each = 32, 50
	var wg sync.WaitGroup
	var early atomic.Int64
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				n := w.commit()
				if err := w.wait(n); err != nil {
					t.Error(err)
					return
				}
				coveredMu.Lock()
				if covered < n {
					early.Add(1)
				}
				coveredMu.Unlock()
			}
		}()
	}
	wg.Wait()
	if early.Load() != 0 {
		t.Fatalf("%d waits returned before a sync covered their commit", early.Load())
	}
	if got := syncs.Load(); got >= workers*each/2 {
		t.Fatalf("%d syncs for %d commits: not grouped", got, workers*each)
	}
	t.Logf("%d commits, %d syncs", workers*each, syncs.Load())
}

// TestWALSyncerReportsFailure: the commits a failed sync should have
// covered get its error, as ErrUnavailable; later commits sync again.
func TestWALSyncerReportsFailure(t *testing.T) {
	s := &GormStore{wal: newWALSyncer(t.TempDir() + "/x.db")}
	diskFull := errors.New("no space left on device")
	s.wal.sync = func() error { return diskFull }
	n := s.committed()
	err := s.durable(n)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, diskFull) {
		t.Fatalf("durable = %v, want ErrUnavailable and the sync's error", err)
	}
	s.wal.sync = func() error { return nil }
	if err := s.durable(s.committed()); err != nil {
		t.Fatalf("after the disk recovered: %v", err)
	}
}

// TestWALSyncerFile: the real sync finds the WAL of a real database, and a
// missing WAL (checkpointed away) is nothing to sync.
func TestWALSyncerFile(t *testing.T) {
	dir := t.TempDir()
	w := newWALSyncer(dir + "/missing.db")
	if err := w.fsync(); err != nil {
		t.Fatalf("no WAL: %v", err)
	}
	st, err := Open(t.Context(), Options{Driver: "sqlite", DSN: "file:" + dir + "/a%20b.db"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st.wal.path != dir+"/a b.db-wal" {
		t.Fatalf("WAL path %q", st.wal.path)
	}
	var synced atomic.Int64
	st.wal.sync = func() error { synced.Add(1); return st.wal.fsync() }
	if _, err := st.SystemSecret(t.Context(), []byte("0123456789abcdef0123456789abcdef")); err != nil {
		t.Fatal(err)
	}
	if synced.Load() == 0 {
		t.Fatal("a write returned without syncing the WAL")
	}
	var mode int
	if err := st.writePool.Raw("PRAGMA synchronous").Scan(&mode).Error; err != nil || mode != 1 {
		t.Fatalf("write connection synchronous = %d (%v), want 1 (NORMAL)", mode, err)
	}
}
