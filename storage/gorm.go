package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/latchauth/latch/secrets"
)

// GormStore is the Store on SQLite or PostgreSQL.
//
// With a SQLite file there are two pools on the same file: writePool holds
// exactly one connection whose transactions begin IMMEDIATE, readPool
// holds several. Writers therefore queue inside database/sql for the one write
// connection instead of racing for SQLite's lock, which is what makes
// Hydra's and Dex's SQLite modes answer "database is locked" under load;
// readers never block thanks to WAL. With ":memory:" and PostgreSQL both
// names point to one pool. Writes reach writePool only through the write
// path of write.go (see the package doc).
type GormStore struct {
	writePool  *gorm.DB
	readPool   *gorm.DB
	dialect    string
	newSession func() fosite.Session
	now        func() time.Time
	log        *slog.Logger
	grace      time.Duration
	// cipher seals the secret columns (sealed.go); nil stores them as
	// they are.
	cipher *secrets.Cipher
	// wal groups the fsyncs of a SQLite file's commits (durable.go); nil
	// for PostgreSQL and in-memory SQLite.
	wal *walSyncer
	// batch runs the blind writes of a SQLite file in shared transactions
	// (batch.go); nil otherwise.
	batch *batcher
	// stopCheckpoints ends the background checkpoints of a SQLite file
	// (checkpoint.go), which close checkpointsDone.
	stopCheckpoints chan struct{}
	checkpointsDone chan struct{}
	// clients caches clients for a moment (clientcache.go).
	clients clientCache
	// prepared holds the hot write statements of SQLite, reads those of
	// the hot reads (prepared.go).
	prepared preparedSlot
	reads    readStmts
	// logoutsDropped counts logout deliveries not queued because the
	// queue was full (backchannel.go).
	logoutsDropped atomic.Int64
}

var _ Store = (*GormStore)(nil)

// Open connects to the database of o. It does not migrate: call Migrate.
func Open(ctx context.Context, o Options) (*GormStore, error) {
	s := &GormStore{dialect: o.Driver, newSession: o.NewSession, now: time.Now, log: o.Logger, grace: o.RefreshTokenGracePeriod, cipher: o.Cipher}
	if s.newSession == nil {
		s.newSession = func() fosite.Session { return openid.NewDefaultSession() }
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cfg := &gorm.Config{
		Logger:                 logger.Discard,
		TranslateError:         true,
		SkipDefaultTransaction: true,
		NowFunc:                func() time.Time { return s.now().UTC() },
	}
	var err error
	switch o.Driver {
	case "sqlite":
		err = s.openSQLite(o.DSN, cfg)
	case "postgres":
		s.writePool, err = gorm.Open(postgres.Open(o.DSN), cfg)
		if err == nil {
			sqlDB, _ := s.writePool.DB()
			sqlDB.SetMaxOpenConns(16)
			sqlDB.SetMaxIdleConns(16)
			sqlDB.SetConnMaxIdleTime(5 * time.Minute)
			s.readPool = s.writePool
		}
	default:
		return nil, fmt.Errorf("storage: unknown driver %q (want sqlite or postgres)", o.Driver)
	}
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", o.Driver, err)
	}
	if err := s.Ping(ctx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("storage: open %s: %w", o.Driver, err)
	}
	return s, nil
}

// sqliteParams are the pragmas every connection gets. The write connection
// of a file adds synchronous=NORMAL and makes each commit durable with a
// grouped fsync of the WAL before the write returns (durable.go), so an
// acknowledged revocation survives a power cut, not only a crash; every
// other connection has synchronous=FULL.
const sqliteParams = "_journal_mode=WAL&_busy_timeout=10000&_foreign_keys=on"

func (s *GormStore) openSQLite(dsn string, cfg *gorm.Config) error {
	if dsn == ":memory:" || strings.Contains(dsn, "mode=memory") {
		// Every connection to ":memory:" is a database of its own, so the
		// store keeps exactly one, for ever.
		db, err := gorm.Open(sqlite.Open(sqliteDSN(dsn, "_synchronous=FULL&_txlock=immediate")), cfg)
		if err != nil {
			return err
		}
		sqlDB, _ := db.DB()
		sqlDB.SetMaxOpenConns(1)
		sqlDB.SetMaxIdleConns(1)
		sqlDB.SetConnMaxLifetime(0)
		sqlDB.SetConnMaxIdleTime(0)
		s.writePool, s.readPool = db, db
		// Blind writes are batched here too: one transaction for the
		// writes of the moment instead of an implicit one each, and one
		// hand-over of the one connection instead of one per write.
		s.batch = newBatcher(s)
		return nil
	}
	if err := makePrivate(dsn, s.log); err != nil {
		return err
	}
	// Each pool gets a Config of its own: gorm.Open keeps the pointer it
	// is given and stores the dialector and the callbacks in it, so a
	// shared one would give the write pool the read pool's callbacks.
	writeCfg, readCfg := *cfg, *cfg
	// Reads are one of a fixed set of queries: the read pool prepares each
	// once per connection instead of on every call. Never the write pool:
	// GORM prepares on the pool, so a write outside a transaction waiting
	// for the one connection while it prepares a statement, and a
	// transaction holding that connection and needing the same statement,
	// wait for each other for ever. (pgx caches PostgreSQL's statements by
	// itself.)
	readCfg.PrepareStmt = true
	w, err := gorm.Open(sqlite.Open(sqliteDSN(dsn, "_synchronous=NORMAL&_txlock=immediate")), &writeCfg)
	if err != nil {
		return err
	}
	s.wal = newWALSyncer(sqliteFilePath(dsn))
	wDB, _ := w.DB()
	wDB.SetMaxOpenConns(1)
	wDB.SetMaxIdleConns(1)
	wDB.SetConnMaxIdleTime(0)
	wDB.SetConnMaxLifetime(0)
	s.writePool = w
	s.batch = newBatcher(s)
	// The write pool creates the file and switches it to WAL before any
	// reader opens it.
	if err := wDB.Ping(); err != nil {
		return err
	}
	if err := w.Exec(fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", checkpointBackstop)).Error; err != nil {
		return err
	}
	r, err := gorm.Open(sqlite.Open(sqliteDSN(dsn, "_synchronous=FULL&_cache_size=-512")), &readCfg)
	if err != nil {
		return err
	}
	rDB, _ := r.DB()
	rDB.SetMaxOpenConns(4)
	rDB.SetMaxIdleConns(4)
	s.readPool = r
	s.stopCheckpoints, s.checkpointsDone = make(chan struct{}), make(chan struct{})
	go s.checkpointer(s.stopCheckpoints, s.checkpointsDone)
	return nil
}

// sqliteFilePath is the file system path of a SQLite DSN ("latch.db" or
// "file:latch.db?mode=rwc").
func sqliteFilePath(dsn string) string {
	if !strings.HasPrefix(dsn, "file:") {
		return dsn
	}
	p := strings.TrimPrefix(dsn, "file:")
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	if u, err := url.PathUnescape(p); err == nil {
		p = u
	}
	return p
}

func sqliteDSN(dsn, extra string) string {
	params := sqliteParams
	if extra != "" {
		params += "&" + extra
	}
	if !strings.HasPrefix(dsn, "file:") {
		dsn = "file:" + (&url.URL{Path: dsn}).EscapedPath()
	}
	if strings.Contains(dsn, "?") {
		return dsn + "&" + params
	}
	return dsn + "?" + params
}

// Ping checks both pools.
func (s *GormStore) Ping(ctx context.Context) error {
	for _, db := range []*gorm.DB{s.writePool, s.readPool} {
		sqlDB, err := db.DB()
		if err != nil {
			return translate(err)
		}
		if err := sqlDB.PingContext(ctx); err != nil {
			return translate(err)
		}
	}
	return nil
}

// Close closes both pools; with SQLite the WAL is checkpointed into the file.
func (s *GormStore) Close() error {
	if s.batch != nil {
		s.batch.close()
	}
	if s.stopCheckpoints != nil {
		close(s.stopCheckpoints)
		<-s.checkpointsDone
		s.stopCheckpoints = nil
	}
	if p := s.prepared.Swap(nil); p != nil {
		p.close()
	}
	s.reads.close()
	var errs []error
	for i, db := range []*gorm.DB{s.readPool, s.writePool} {
		if i == 1 && s.writePool == s.readPool {
			break
		}
		if sqlDB, err := db.DB(); err == nil {
			errs = append(errs, sqlDB.Close())
		}
	}
	return errors.Join(errs...)
}

// translate turns driver errors into the sentinels of store.go. Anything it
// does not recognise is a failure of the database itself.
func translate(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fosite.ErrNotFound), errors.Is(err, ErrAlreadyExists), errors.Is(err, ErrUnavailable):
		return err
	case errors.Is(err, gorm.ErrRecordNotFound):
		return fosite.ErrNotFound
	case errors.Is(err, gorm.ErrDuplicatedKey):
		return fmt.Errorf("%w: %v", ErrAlreadyExists, err)
	case errors.Is(err, gorm.ErrForeignKeyViolated):
		return fmt.Errorf("%w: the client does not exist", fosite.ErrNotFound)
	default:
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
}

// SQLDB is the write pool, for its statistics (the metrics endpoint): with
// SQLite every write waits for its one connection, so its wait count and
// wait time are the queue of writers.
func (s *GormStore) SQLDB() *sql.DB {
	db, err := s.writePool.DB()
	if err != nil {
		return nil
	}
	return db
}
