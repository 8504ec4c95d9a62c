package storage

import (
	"context"
	"fmt"
	"time"
)

// What callers who never authenticate can make Latch keep: authorization
// requests waiting for a login (challenges), pushed authorization requests
// and device authorizations of public clients, and dynamically registered
// clients. Each such row records the caller's address (its origin), so the
// server can bound these rows per client and per address across every
// instance: the count is a query, not a counter in one process's memory.

// PendingKind names a table of rows that wait for someone to act.
type PendingKind string

const (
	PendingChallenge PendingKind = tableChallenge
	PendingPAR       PendingKind = tablePAR
	PendingDevice    PendingKind = tableDevice
)

// PendingStore counts what unauthenticated callers made the store keep.
type PendingStore interface {
	// CountPending returns how many unexpired rows of kind at now belong to
	// clientID, and how many came from origin. A device authorization
	// counts while it waits for a decision.
	CountPending(ctx context.Context, kind PendingKind, clientID, origin string, now time.Time) (byClient, byOrigin int64, err error)
	// CountRegisteredClients returns how many clients were registered
	// through RFC 7591, and how many of them origin registered since since.
	CountRegisteredClients(ctx context.Context, origin string, since time.Time) (total, byOrigin int64, err error)
}

var _ PendingStore = (*GormStore)(nil)

type originKey struct{}

// WithOrigin makes every client, challenge, pushed request and device
// authorization created under ctx record origin, the caller's address.
func WithOrigin(ctx context.Context, origin string) context.Context {
	return context.WithValue(ctx, originKey{}, origin)
}

func originOf(ctx context.Context) string {
	o, _ := ctx.Value(originKey{}).(string)
	return o
}

// originDDL is migration 5: an origin column on the clients table and on
// every request table (one row shape), indexed where it is counted.
func originDDL() []string {
	var sql []string
	for _, t := range append([]string{"clients", tableDevice}, requestTables...) {
		sql = append(sql, `ALTER TABLE `+t+` ADD COLUMN origin VARCHAR(64) NOT NULL DEFAULT ''`)
	}
	for _, t := range []string{"clients", tableChallenge, tablePAR, tableDevice} {
		sql = append(sql, `CREATE INDEX `+t+`_origin_idx ON `+t+` (origin)`)
	}
	return sql
}

func (s *GormStore) CountPending(ctx context.Context, kind PendingKind, clientID, origin string, now time.Time) (int64, int64, error) {
	live := "expires_at > ?"
	args := []any{now.UTC()}
	switch kind {
	case PendingChallenge, PendingPAR:
	case PendingDevice:
		live += " AND status = ? AND active = ?"
		args = append(args, string(DevicePending), true)
	default:
		return 0, 0, fmt.Errorf("storage: unknown pending kind %q", kind)
	}
	var byClient, byOrigin int64
	db := s.reader(ctx)
	if err := db.Table(string(kind)).Where("client_id = ? AND "+live, append([]any{clientID}, args...)...).Count(&byClient).Error; err != nil {
		return 0, 0, translate(err)
	}
	if err := db.Table(string(kind)).Where("origin = ? AND "+live, append([]any{origin}, args...)...).Count(&byOrigin).Error; err != nil {
		return 0, 0, translate(err)
	}
	return byClient, byOrigin, nil
}

func (s *GormStore) CountRegisteredClients(ctx context.Context, origin string, since time.Time) (int64, int64, error) {
	var total, byOrigin int64
	db := s.reader(ctx)
	if err := db.Table("clients").Where("registration_token_hash <> ''").Count(&total).Error; err != nil {
		return 0, 0, translate(err)
	}
	err := db.Table("clients").Where("registration_token_hash <> '' AND origin = ? AND created_at > ?", origin, since.UTC()).Count(&byOrigin).Error
	if err != nil {
		return 0, 0, translate(err)
	}
	return total, byOrigin, nil
}
