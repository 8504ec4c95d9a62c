package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// Backup writes a consistent copy of a SQLite database to path, which must
// not exist, while the database is in use. It is SQLite's VACUUM INTO on
// the read pool: one read transaction, which in WAL mode neither blocks
// writers nor waits for them, and sees every transaction committed before
// it began. The copy is compacted and is an ordinary database file that
// `latch serve` can open as it is. PostgreSQL has pg_dump for this.
func (s *GormStore) Backup(ctx context.Context, path string) error {
	if s.dialect != "sqlite" {
		return errors.New("storage: backup copies SQLite databases; back PostgreSQL up with pg_dump")
	}
	if s.readPool == s.writePool {
		return errors.New("storage: an in-memory database has nothing to back up")
	}
	// Created here, owner-only, not by SQLite: a backup holds all the
	// database does.
	if err := createPrivate(path); err != nil {
		return fmt.Errorf("storage: backup: %w", err)
	}
	if err := s.readPool.WithContext(ctx).Exec("VACUUM INTO ?", path).Error; err != nil {
		_ = os.Remove(path)
		// SQLite's own words ("unable to open database file") name the
		// cause; translate would call the source database unavailable.
		return fmt.Errorf("storage: backup to %s: %v", path, err)
	}
	return nil
}
