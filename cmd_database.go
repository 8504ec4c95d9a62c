package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/latchauth/latch/config"
)

// announceDatabase prints, on standard error, which database a command is
// about to open, before it opens it: a relative path or a forgotten
// --config otherwise shows only as an empty list from a database nobody
// meant. Standard error keeps `-o json` on standard output parseable.
func (c *cli) announceDatabase(f config.File) {
	fmt.Fprintf(c.stderr, "latch: database %s\n", describeDatabase(f.Database))
}

// describeDatabase names a database without its password: the absolute
// file of a SQLite DSN, or the user, host, port and database name of a
// PostgreSQL one.
func describeDatabase(d config.Database) string {
	if d.Driver == "postgres" {
		pc, err := pgconn.ParseConfig(d.DSN)
		if err != nil {
			return "postgres (a DSN that does not parse)"
		}
		return fmt.Sprintf("postgres %s@%s:%d/%s", pc.User, pc.Host, pc.Port, pc.Database)
	}
	if d.DSN == ":memory:" || strings.Contains(d.DSN, "mode=memory") {
		return "sqlite in memory (nothing is kept)"
	}
	path, _, _ := strings.Cut(strings.TrimPrefix(d.DSN, "file:"), "?")
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return "sqlite " + path
}
