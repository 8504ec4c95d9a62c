package storage

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"

	"gorm.io/gorm"
)

// Prepared statements for the hot writes on SQLite.
//
// Compiling an INSERT costs SQLite about a fifth of running it, and the
// batcher goroutine that runs every token write of a SQLite file paid it
// for each token. GORM's PrepareStmt cannot be used on the write pool: it
// prepares on the pool, so a write that holds the one write connection in
// a transaction would wait for itself (gorm.go). Instead the store
// prepares its hot write statements once, right after Migrate, when no
// transaction holds that connection, and each write runs its statement on
// the connection it already holds: sql.Tx.StmtContext reuses the
// statement prepared on that connection, and if the connection was
// replaced, prepares it on that same connection, never on the pool.
// PostgreSQL needs none of this: pgx caches prepared statements itself.

// hotWrites are the statements prepared: storing a request row in any
// request table, and those of a revocation (exchange.go), with its probe.
func hotWrites() []string {
	qs := []string{revokeRefresh.own, revokeRefresh.exchanged, revokeAccess.own, revokeAccess.exchanged, anyExchangedSQL}
	for _, t := range requestTables {
		qs = append(qs, insertRequestSQL(t))
	}
	return qs
}

// preparedWrites maps each query of hotWrites to its statement on the
// write pool.
type preparedWrites struct {
	db    *sql.DB
	stmts map[string]*sql.Stmt
}

// prepareWrites prepares hotWrites on a SQLite write pool. It must run
// when no transaction holds the write connection (after Migrate).
func (s *GormStore) prepareWrites(ctx context.Context) error {
	if s.dialect != "sqlite" || s.prepared.Load() != nil {
		return nil
	}
	db, err := s.writePool.DB()
	if err != nil {
		return err
	}
	p := &preparedWrites{db: db, stmts: map[string]*sql.Stmt{}}
	for _, q := range hotWrites() {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			p.close()
			return translate(err)
		}
		p.stmts[q] = st
	}
	if !s.prepared.CompareAndSwap(nil, p) {
		p.close()
	}
	return nil
}

func (p *preparedWrites) close() {
	for _, st := range p.stmts {
		_ = st.Close()
	}
}

// exec runs query, one of hotWrites, on the connection or transaction of
// tx: with its prepared statement when there is one, through GORM
// otherwise.
func (s *GormStore) exec(tx *gorm.DB, query string, args ...any) error {
	if st := s.stmt(tx, query); st != nil {
		_, err := st.ExecContext(tx.Statement.Context, args...)
		return translateDriver(tx, err)
	}
	return translate(tx.Exec(query, args...).Error)
}

// queryRow runs query, one of hotWrites that reads one row, as exec does.
func (s *GormStore) queryRow(tx *gorm.DB, query string, args ...any) *sql.Row {
	if st := s.stmt(tx, query); st != nil {
		return st.QueryRowContext(tx.Statement.Context, args...)
	}
	return tx.Raw(query, args...).Row()
}

// stmt is query's prepared statement on the connection or transaction of
// tx, or nil when there is none to use.
func (s *GormStore) stmt(tx *gorm.DB, query string) *sql.Stmt {
	p := s.prepared.Load()
	if p == nil || p.stmts[query] == nil {
		return nil
	}
	st := p.stmts[query]
	switch conn := tx.Statement.ConnPool.(type) {
	case *sql.Tx:
		return conn.StmtContext(tx.Statement.Context, st)
	case *sql.DB:
		if conn == p.db { // no transaction: in-memory SQLite's one connection
			return st
		}
	}
	return nil
}

// translateDriver translates an error of the driver as GORM would have
// (TranslateError: a broken key is gorm.ErrDuplicatedKey), then to the
// store's sentinels.
func translateDriver(tx *gorm.DB, err error) error {
	if t, ok := tx.Dialector.(gorm.ErrorTranslator); ok && err != nil {
		err = t.Translate(err)
	}
	return translate(err)
}

// preparedSlot holds the preparedWrites of a store once Migrate made them.
type preparedSlot = atomic.Pointer[preparedWrites]

// readStmts are the statements of the hot reads, prepared on the read pool
// at their first use. database/sql prepares a statement on each connection
// it runs on, once, so a read compiles nothing after the first on each
// connection, and skips GORM's query builder, which cost as much as the
// read itself. Preparing on the read pool is safe: nothing holds a read
// connection while it waits for another.
type readStmts struct {
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

// query runs query, a fixed read of SQLite, outside a transaction through
// its prepared statement, and inside one (which sees its own writes) through
// GORM on the transaction's connection.
func (s *GormStore) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	// PostgreSQL: GORM rewrites the ? placeholders, and pgx caches the
	// prepared statement itself.
	if s.dialect != "sqlite" {
		return s.reader(ctx).Raw(query, args...).Rows()
	}
	if tx, ok := txOf(ctx); ok {
		return tx.Raw(query, args...).Rows()
	}
	st, err := s.reads.stmt(ctx, s.readPool, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (r *readStmts) stmt(ctx context.Context, pool *gorm.DB, query string) (*sql.Stmt, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if st := r.stmts[query]; st != nil {
		return st, nil
	}
	db, err := pool.DB()
	if err != nil {
		return nil, err
	}
	st, err := db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if r.stmts == nil {
		r.stmts = map[string]*sql.Stmt{}
	}
	r.stmts[query] = st
	return st, nil
}

func (r *readStmts) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for q, st := range r.stmts {
		_ = st.Close()
		delete(r.stmts, q)
	}
}
