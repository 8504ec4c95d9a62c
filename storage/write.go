package storage

import (
	"context"
	"errors"

	"github.com/ory/fosite"
	"gorm.io/gorm"
)

// The write path: every write of the store goes through tx or write, and
// every read through reader (or query). The decision table is in doc.go.

// txKey carries the open transaction (*gorm.DB) of BeginTX, or of tx while
// its fn runs; unitKey carries a Unit's held writes (*unit).
type (
	txKey   struct{}
	unitKey struct{}
)

// txOf returns the transaction ctx carries, if any.
func txOf(ctx context.Context) (*gorm.DB, bool) {
	tx, ok := ctx.Value(txKey{}).(*gorm.DB)
	return tx, ok
}

// reader is the handle every read goes through: the transaction of ctx if
// there is one (so a transaction sees its own writes and never waits for
// the write connection it already holds), the read pool otherwise.
func (s *GormStore) reader(ctx context.Context) *gorm.DB {
	if tx, ok := txOf(ctx); ok {
		return tx
	}
	return s.readPool.WithContext(ctx)
}

// tx runs fn, a read-modify-write or any write whose caller needs its
// outcome (rows matched, a conditional update lost), atomically: inside
// the transaction of ctx when there is one (its commit makes fn durable),
// otherwise in a transaction of its own that tx commits and waits to be
// durable before it returns. fn gets a context carrying the transaction, so
// store methods it calls join it. A failed begin or commit is a database
// failure (translated); fn's own errors pass through as they are
// (fosite.ErrInactiveToken must stay what it is), and roll back.
//
// A Unit does not hold tx back: its caller needs the outcome now.
func (s *GormStore) tx(ctx context.Context, fn func(ctx context.Context, tx *gorm.DB) error) error {
	if tx, ok := txOf(ctx); ok {
		return fn(ctx, tx)
	}
	tx := s.writePool.WithContext(ctx).Begin()
	if tx.Error != nil {
		return translate(tx.Error)
	}
	defer func() {
		if v := recover(); v != nil {
			tx.Rollback()
			panic(v)
		}
	}()
	if err := fn(context.WithValue(ctx, txKey{}, tx), tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit().Error; err != nil {
		return translate(err)
	}
	return s.durable(s.committed())
}

// write runs fn, one blind write: a single statement whose caller needs
// nothing back but its error (storing a token, revoking a grant, deleting
// by key). In order of precedence it runs
//
//   - in the transaction of ctx (BeginTX, or a tx around the caller);
//   - held in ctx's Unit, to run with the unit's other writes when it
//     finishes;
//   - batched with the other writes of the moment on SQLite, which
//     answers once the batch's commit is durable;
//   - otherwise (PostgreSQL, which groups commits itself) as a statement
//     of its own, committed when it returns.
//
// mayFailAlone says fn can fail while the database works (an insert that
// breaks a key or a foreign key): in a unit with other writes it then runs
// under a savepoint, so that its failure undoes the unit's other writes.
func (s *GormStore) write(ctx context.Context, mayFailAlone bool, fn func(tx *gorm.DB) error) error {
	if tx, ok := txOf(ctx); ok {
		return fn(tx)
	}
	if u, ok := ctx.Value(unitKey{}).(*unit); ok {
		u.pending = append(u.pending, fn)
		u.mayFailAlone = u.mayFailAlone || mayFailAlone
		return nil
	}
	if s.batch != nil {
		return s.batch.do(ctx, mayFailAlone, fn)
	}
	if err := fn(s.writePool.WithContext(ctx)); err != nil {
		return err
	}
	return s.durable(s.committed())
}

// BeginTX starts a transaction carried by the returned context: fosite's
// way (fositestorage.Transactional) of making a token request's writes
// one. Every tx and write under that context joins it; Commit makes them
// durable.
func (s *GormStore) BeginTX(ctx context.Context) (context.Context, error) {
	if _, ok := txOf(ctx); ok {
		return nil, errors.New("storage: nested transactions are not supported")
	}
	if _, ok := ctx.Value(unitKey{}).(*unit); ok {
		return nil, errUnitTx
	}
	tx := s.writePool.WithContext(ctx).Begin()
	if tx.Error != nil {
		return nil, translate(tx.Error)
	}
	return context.WithValue(ctx, txKey{}, tx), nil
}

// Commit commits the transaction of ctx and returns once it is durable.
func (s *GormStore) Commit(ctx context.Context) error {
	tx, ok := txOf(ctx)
	if !ok {
		return errors.New("storage: commit without a transaction")
	}
	if err := tx.Commit().Error; err != nil {
		return translate(err)
	}
	return s.durable(s.committed())
}

// Rollback aborts the transaction of ctx.
func (s *GormStore) Rollback(ctx context.Context) error {
	tx, ok := txOf(ctx)
	if !ok {
		return errors.New("storage: rollback without a transaction")
	}
	return translate(tx.Rollback().Error)
}

// unit holds the writes of a Unit until it finishes.
type unit struct {
	pending      []func(tx *gorm.DB) error
	mayFailAlone bool
}

var errUnitTx = errors.New("storage: BeginTX under a Unit")

// Unit returns a context under which the store's blind writes (write:
// storing, deleting and revoking tokens) are held back, and finish, which
// ends the unit: when err is nil it runs them as one atomic write, batched
// with others on SQLite, and returns once that is durable;
// otherwise it drops them. It returns err, or the writes' error. A
// revocation, which ends a grant's refresh token and then its access
// token, so becomes one write.
//
// Under a unit, held-back writes are not yet visible, not even to the
// unit's own reads; writes through tx are not held back. A unit belongs to
// one goroutine, and fosite's transactions (BeginTX) cannot be opened
// under it.
func (s *GormStore) Unit(ctx context.Context) (context.Context, func(err error) error) {
	u := &unit{}
	ctx = context.WithValue(ctx, unitKey{}, u)
	return ctx, func(err error) error {
		fns := u.pending
		u.pending = nil
		if err != nil || len(fns) == 0 {
			return err
		}
		plain := context.WithoutCancel(context.WithValue(ctx, unitKey{}, nil))
		if s.batch != nil {
			return s.batch.do(plain, u.mayFailAlone, fns...)
		}
		return s.tx(plain, func(_ context.Context, tx *gorm.DB) error {
			for _, fn := range fns {
				if err := fn(tx); err != nil {
					return err
				}
			}
			return nil
		})
	}
}

// matched is the error of res, a conditional statement run in tx:
// fosite.ErrNotFound when it matched no row, so that of two requests using
// one single-use thing at once exactly one goes on.
func matched(res *gorm.DB) error {
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return fosite.ErrNotFound
	}
	return nil
}
