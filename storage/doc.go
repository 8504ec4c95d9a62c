// Package storage owns everything Latch keeps: one Store interface that
// embeds every fosite storage interface plus Latch's own records (clients,
// users, signing keys, the system secret; the secret ones encrypted at
// rest under secrets.system, sealed.go), its GORM implementation for
// SQLite and PostgreSQL, and the versioned migrations. The optional
// capabilities a caller may type-assert a Store for are named in
// capabilities.go.
//
// # One write path
//
// Every write of the store goes through one of two functions (write.go),
// and every read through reader (or query, which runs a hot read through
// a prepared statement and is reader's twin: prepared.go):
//
//   - s.tx(ctx, fn) for a read-modify-write, or any write whose caller
//     needs its outcome: a conditional update that may lose a race, a
//     delete that answers ErrNotFound when nothing matched, several
//     statements that must be one.
//   - s.write(ctx, mayFailAlone, fn) for a blind write: one statement
//     whose caller needs nothing back but its error (storing a token,
//     revoking a grant, deleting by key).
//
// Each decides where fn runs from the context and the database, first
// match wins:
//
//	context / database              s.tx(ctx, fn)               s.write(ctx, …, fn)
//	------------------------------  --------------------------  ---------------------------------
//	a transaction (BeginTX, or an   joins it; its Commit makes  joins it; its Commit makes it
//	  enclosing s.tx)                 it durable                  durable
//	a Unit                          own transaction (below):    held back; the unit's finish
//	                                  not held back               runs all its writes as one
//	SQLite (a file or :memory:)     own transaction             the batcher (batch.go): shared
//	                                                              with the writes of the moment
//	PostgreSQL                      own transaction             one autocommitted statement
//
// Durability is explicit, never a side effect: whatever commits waits for
// the commit to be on disk before it answers. "Own transaction" begins on
// the write pool, commits, then waits for durable(committed()); so do
// Commit, a Unit's finish and the autocommitted statement; the batcher
// answers each of its writes only after its batch's commit is durable. On
// a SQLite file that wait is a grouped fsync of the WAL (durable.go: the
// write connection runs synchronous=NORMAL, so a commit alone is not yet
// durable); PostgreSQL and in-memory SQLite are durable at commit (or
// never), and the wait costs nothing. No write returns before its commit
// is durable, so no request is answered before it.
//
// Nothing else may execute a write statement: a statement on the write
// pool outside these functions would be committed without anyone waiting
// for it to reach the disk. Migrations run through s.tx too. A store
// method that calls another inside s.tx passes on the context fn got, so
// the callee joins the transaction instead of waiting for the write
// connection its caller holds.
package storage
