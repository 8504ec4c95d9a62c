package main

import (
	"context"
	"database/sql"
	"fmt"
	"sync"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver: counts the PostgreSQL rows
	_ "github.com/mattn/go-sqlite3"    // the "sqlite3" driver: counts the SQLite rows

	"github.com/latchauth/latch/bench/loadgen"
)

// setup is what one line of the comparison loads: one server, or several
// Latch processes sharing one database, each given an equal share of the
// connections at once.
type setup struct {
	name  string
	procs []*target
	// rows counts the stored access tokens, to catch a token answered
	// but never stored, or a revocation answered but not done; nil for
	// servers whose storage is not durable.
	rows func(ctx context.Context) (int64, error)
}

// run loads the setup with op. missing is how many answers of the run
// the database does not show (always 0 unless writes are lost): for
// client_credentials, tokens answered but not stored; for revocation,
// tokens answered revoked but still stored, or minted but not stored.
//
// With several processes the load is spread round-robin across them, and
// a token minted by one is introspected or revoked at the next, so every
// answer also proves that one instance sees what another wrote.
func (su setup) run(ctx context.Context, o options, op string) (_ *loadgen.Result, missing int64, err error) {
	counted := su.rows != nil && (op == "cc" || op == "revoke")
	var before int64
	if counted {
		if before, err = su.rows(ctx); err != nil {
			return nil, 0, err
		}
	}
	results := make([]*loadgen.Result, len(su.procs))
	errs := make([]error, len(su.procs))
	var wg sync.WaitGroup
	for i, p := range su.procs {
		c := loadConfig(o, p, op)
		next := su.procs[(i+1)%len(su.procs)]
		c.IntrospectURL, c.RevokeURL = next.base+next.introspectPath, next.base+next.revokePath
		c.Concurrency = max(1, o.concurrency/len(su.procs))
		c.MaxRequests /= len(su.procs)
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = loadgen.Run(c)
		}()
	}
	wg.Wait()
	res := &loadgen.Result{Op: op, Label: su.name}
	for i, r := range results {
		if errs[i] != nil {
			return nil, 0, errs[i]
		}
		// Requests and rates add up; the p99 is the worse process's.
		res.Requests += r.Requests
		res.Errors += r.Errors
		res.Preminted += r.Preminted
		res.RPS += r.RPS
		res.P99 = max(res.P99, r.P99)
	}
	if counted {
		after, err := su.rows(ctx)
		if err != nil {
			return nil, 0, err
		}
		answered := int64(res.Requests - res.Errors)
		switch op {
		case "cc": // each answer is one new row
			missing = answered - (after - before)
		case "revoke": // the pre-minted rows, less one per revocation answered
			missing = (after - before) - (int64(res.Preminted) - answered)
			if missing < 0 {
				missing = -missing
			}
		}
	}
	return res, missing, nil
}

// sqliteRows counts the access tokens in the SQLite file path.
func sqliteRows(path string) func(context.Context) (int64, error) {
	return countRows("sqlite3", "file:"+path+"?mode=ro")
}

// postgresRows counts the access tokens in the PostgreSQL database dsn.
func postgresRows(dsn string) func(context.Context) (int64, error) {
	return countRows("pgx", dsn)
}

func countRows(driver, dsn string) func(context.Context) (int64, error) {
	return func(ctx context.Context) (int64, error) {
		db, err := sql.Open(driver, dsn)
		if err != nil {
			return 0, err
		}
		defer db.Close()
		var n int64
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM oauth2_access`).Scan(&n); err != nil {
			return 0, fmt.Errorf("count stored tokens: %w", err)
		}
		return n, nil
	}
}
