package storage

import (
	"context"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Failure counters: what login throttling (users.Throttle) must share
// across instances (SPEC's scale-out rule). Every instance counts into the
// same rows, so a limit holds for the whole deployment, not per process.
//
// A row is keyed by a fixed-length digest the caller computes (an HMAC of
// the username or address), so what a caller can make us store is bounded
// per key, and no username or address is kept in clear. A row expires at
// its own expires_at, which each failure pushes forward; the janitor
// deletes expired rows (cleanupTables), and an expired row counts as zero
// until then.

// ThrottleCount is the unexpired failure count of one key.
type ThrottleCount struct {
	Failures    int
	LastFailure time.Time
}

// ThrottleFailure is one key a failure counts against, and when the key
// is forgotten if no further failure comes.
type ThrottleFailure struct {
	Key       string
	ExpiresAt time.Time
}

// ThrottleStore keeps failure counters.
type ThrottleStore interface {
	// ThrottleCounts returns the counters of keys that have not expired at
	// now; a key without one is absent from the map.
	ThrottleCounts(ctx context.Context, keys []string, now time.Time) (map[string]ThrottleCount, error)
	// CountFailure adds one failure at now to every key, atomically per
	// key: a key whose counter expired starts again at one.
	CountFailure(ctx context.Context, now time.Time, keys ...ThrottleFailure) error
	// ForgetFailures deletes the counters of keys.
	ForgetFailures(ctx context.Context, keys ...string) error
}

var _ ThrottleStore = (*GormStore)(nil)

const tableThrottle = "throttle_counters"

type throttleRow struct {
	Key           string `gorm:"column:counter_key;primaryKey"`
	Failures      int
	LastFailureAt time.Time
	ExpiresAt     time.Time
}

func (throttleRow) TableName() string { return tableThrottle }

func (s *GormStore) ThrottleCounts(ctx context.Context, keys []string, now time.Time) (map[string]ThrottleCount, error) {
	var rows []throttleRow
	if err := s.reader(ctx).Where("counter_key IN ? AND expires_at > ?", keys, now.UTC()).Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	out := make(map[string]ThrottleCount, len(rows))
	for _, r := range rows {
		out[r.Key] = ThrottleCount{Failures: r.Failures, LastFailure: r.LastFailureAt}
	}
	return out, nil
}

// CountFailure is one INSERT ... ON CONFLICT DO UPDATE (SQLite and
// PostgreSQL spell it alike), so two instances counting the same key at
// once both count: the increment happens in the database, never as a read
// followed by a write.
func (s *GormStore) CountFailure(ctx context.Context, now time.Time, keys ...ThrottleFailure) error {
	if len(keys) == 0 {
		return nil
	}
	now = now.UTC()
	values := make([]string, len(keys))
	args := make([]any, 0, 3*len(keys))
	for i, k := range keys {
		values[i] = "(?, 1, ?, ?)"
		args = append(args, k.Key, now, k.ExpiresAt.UTC())
	}
	stmt := `INSERT INTO ` + tableThrottle + ` (counter_key, failures, last_failure_at, expires_at) VALUES ` +
		strings.Join(values, ", ") + ` ON CONFLICT (counter_key) DO UPDATE SET
			failures = CASE WHEN ` + tableThrottle + `.expires_at <= excluded.last_failure_at
				THEN 1 ELSE ` + tableThrottle + `.failures + 1 END,
			last_failure_at = excluded.last_failure_at,
			expires_at = excluded.expires_at`
	return s.write(ctx, false, func(tx *gorm.DB) error { return translate(tx.Exec(stmt, args...).Error) })
}

func (s *GormStore) ForgetFailures(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	return s.write(ctx, false, func(tx *gorm.DB) error {
		return translate(tx.Where("counter_key IN ?", keys).Delete(&throttleRow{}).Error)
	})
}
