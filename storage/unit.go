package storage

import (
	"context"
	"errors"
	"sync"

	"github.com/ory/fosite"
	"gorm.io/gorm"
)

// Request-scoped helpers for the server's hot endpoints: a unit of work
// that makes a request's writes one, and a memo of the clients a request
// has read.

type unitKey struct{}

// unit holds the writes of a Unit until it finishes.
type unit struct {
	pending      []func(tx *gorm.DB) error
	mayFailAlone bool
}

// Unit returns a context under which the store's blind writes (storing,
// deleting and revoking tokens: writes whose callers need only their
// error) are held back, and finish, which ends the unit: when err is nil
// it runs them as one atomic write, batched with others on a SQLite file,
// and returns once that is durable; otherwise it drops them. It returns
// err, or the writes' error. A revocation, which ends a grant's refresh
// token and then its access token, so becomes one write.
//
// Under a unit, held-back writes are not yet visible, not even to the
// unit's own reads; other writes are not held back. A unit belongs to one
// goroutine, and fosite's transactions (BeginTX) cannot be opened under it.
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
		return s.inTx(plain, func(tx *gorm.DB) error {
			for _, fn := range fns {
				if err := fn(tx); err != nil {
					return err
				}
			}
			return nil
		})
	}
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
