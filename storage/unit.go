package storage

import (
	"context"
	"errors"
	"sync"

	"github.com/ory/fosite"
	"gorm.io/gorm"
)

// Request-scoped helpers for the server's hot endpoints: a unit of work
// that gives a request's writes one commit, and a memo of the clients a
// request has read.

type unitKey struct{}

// unit is the shared transaction of a Unit, begun by its first write.
type unit struct {
	s  *GormStore
	tx *gorm.DB
}

func (u *unit) begin(ctx context.Context) *gorm.DB {
	if u.tx == nil {
		u.tx = u.s.write.WithContext(ctx).Begin()
	}
	return u.tx
}

// Unit returns a context under which the store's writes share one
// transaction, and finish, which ends it: it commits, and waits until the
// commit is durable, when err is nil, and rolls back otherwise; it returns
// err, or the commit's error. The transaction begins with the first
// write, so reads before it use the read pool and hold no lock; reads
// after it see its writes. A revocation, which ends a grant's refresh
// token and then its access token, so pays for one commit and one fsync.
//
// A unit belongs to one goroutine, and fosite's transactions (BeginTX)
// cannot be opened under it.
func (s *GormStore) Unit(ctx context.Context) (context.Context, func(err error) error) {
	u := &unit{s: s}
	ctx = context.WithValue(ctx, unitKey{}, u)
	return ctx, func(err error) error {
		if u.tx == nil {
			return err
		}
		tx := u.tx
		u.tx = nil
		if err != nil {
			tx.Rollback()
			return err
		}
		if tx.Error != nil { // the begin failed
			return translate(tx.Error)
		}
		if err := tx.Commit().Error; err != nil {
			return translate(err)
		}
		return s.durable(s.committed())
	}
}

// unitTx is the begun transaction of ctx's unit, if any.
func unitTx(ctx context.Context) (*gorm.DB, bool) {
	if u, ok := ctx.Value(unitKey{}).(*unit); ok && u.tx != nil {
		return u.tx, true
	}
	return nil, false
}

var errUnitTx = errors.New("storage: BeginTX under a Unit")

type memoKey struct{}

// clientMemo holds the clients one request has read.
type clientMemo struct {
	mu      sync.Mutex
	clients map[string]fosite.Client
}

// WithClientMemo returns a context under which GetClient reads each
// client from the database once: fosite reads the client to authenticate
// it and again for every token it looks up. Use it for one request only,
// and not around a change of the client.
func WithClientMemo(ctx context.Context) context.Context {
	return context.WithValue(ctx, memoKey{}, &clientMemo{clients: map[string]fosite.Client{}})
}

func memoOf(ctx context.Context) *clientMemo {
	m, _ := ctx.Value(memoKey{}).(*clientMemo)
	return m
}
