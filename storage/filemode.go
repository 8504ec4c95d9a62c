package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
)

// privateMode is the mode of every file that holds the database: it holds
// password and secret hashes, token signatures and, without
// secrets.system, the signing keys in clear.
const privateMode fs.FileMode = 0o600

// makePrivate creates the SQLite file of dsn with privateMode before
// SQLite opens it (SQLite would create it 0644 less the umask, readable
// by every local user). SQLite gives the -wal and -shm files it creates the
// mode of the database file, so they follow. A file that already exists
// with permissions for group or others (created by an older Latch) is
// narrowed to privateMode, with its -wal and -shm, and the change logged.
func makePrivate(dsn string, log *slog.Logger) error {
	if strings.Contains(dsn, "mode=ro") {
		return nil // read-only: SQLite creates nothing
	}
	path := sqliteFilePath(dsn)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, privateMode)
	if err == nil {
		return f.Close()
	}
	if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create %s: %w", path, err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm()&^privateMode == 0 {
			continue
		}
		if err := os.Chmod(p, privateMode); err != nil {
			log.Warn("the database file is readable by other users and could not be restricted", "file", p, "mode", fi.Mode().Perm().String(), "err", err)
			continue
		}
		log.Warn("restricted the database file to its owner", "file", p, "was", fi.Mode().Perm().String(), "now", privateMode.String())
	}
	return nil
}

// createPrivate creates path, which must not exist, empty and with
// privateMode, for a backup to be written into: SQLite's VACUUM INTO keeps
// the mode of an empty file it is given.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, privateMode)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s already exists", path)
		}
		return err
	}
	return f.Close()
}
