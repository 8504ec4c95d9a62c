package reliability_test

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFaultsDiskFullTmpfs: the database lives on a 2 MiB tmpfs that a
// filler file then fills to the last byte, so SQLite's next write to the
// WAL fails with SQLITE_FULL; deleting the filler frees the space. It
// needs mount(2), which a container without CAP_SYS_ADMIN refuses: then
// it skips.
func TestFaultsDiskFullTmpfs(t *testing.T) {
	mnt := filepath.Join(t.TempDir(), "tmpfs")
	require.NoError(t, os.Mkdir(mnt, 0o755))
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=2m"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v): the page-limit variant covers the full disk", err)
	}
	// Registered before the server and the snapshot connection are, so
	// it runs after they have closed their files.
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	path := filepath.Join(mnt, "latch.db")
	n := startNode(t, path, nil)
	w := writeConn(t, n)
	filler := filepath.Join(mnt, "filler")
	runFault(t, n, path, true, func() {
		// An empty WAL must grow for the next commit, whatever its size
		// was: the first write after the disk is full fails.
		var busy, logFrames, checkpointed int
		require.NoError(t, w.QueryRow("PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &checkpointed))
		require.Zero(t, busy, "the checkpoint was blocked")
		fillDisk(t, filler)
	}, func() {
		require.NoError(t, os.Remove(filler))
	})
}

// fillDisk writes path until the file system has no byte left.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	for _, size := range []int{1 << 16, 4096, 512, 1} {
		buf := make([]byte, size)
		for {
			if _, err := f.Write(buf); err != nil {
				require.True(t, errors.Is(err, syscall.ENOSPC), "fill the disk: %v", err)
				break
			}
		}
	}
}
