package reliability_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The storage fails underneath a running server on a SQLite file, then
// recovers. Every write request made during the fault must answer 503
// temporarily_unavailable as OAuth JSON (a page for the browser
// endpoints), never a 200, a 500, HTML at a JSON endpoint or internals,
// and must leave the database exactly as it was; reads go on working; and
// once the storage is back, the very same requests succeed.

// TestFaultsReadOnly: the write connection refuses writes ("attempt to
// write a readonly database"). Tests run as root, so chmod would not stop
// SQLite: PRAGMA query_only on the write pool's one connection does.
func TestFaultsReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ro.db")
	n := startNode(t, path, nil)
	w := writeConn(t, n)
	runFault(t, n, path, true,
		func() { mustExec(t, w, "PRAGMA query_only = 1"); requirePragma(t, w, "query_only", 1) },
		func() { mustExec(t, w, "PRAGMA query_only = 0"); requirePragma(t, w, "query_only", 0) })
}

// TestFaultsDiskFullPageLimit: the database may not grow
// (PRAGMA max_page_count = page_count on the write connection), so an
// insert that needs a new page fails with SQLITE_FULL, "database or disk
// is full". Tokens are issued until that happens. A write that needs no
// new page (a revocation updates or deletes rows) may still succeed, so
// each request may answer 200 (and then its effect must hold) or 503.
func TestFaultsDiskFullPageLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "full.db")
	n := startNode(t, path, nil)
	w := writeConn(t, n)
	a := newAPI(n.URL, newRecorder())
	var filled []string
	runFault(t, n, path, false, func() {
		var pages int
		require.NoError(t, w.QueryRow("PRAGMA page_count").Scan(&pages))
		requirePragma(t, w, fmt.Sprintf("max_page_count = %d", pages), pages)
		filled = fillUntilFull(t, a)
	}, func() {
		mustExec(t, w, "PRAGMA max_page_count = 2147483646")
	})
	var probs problems
	for _, tok := range filled {
		tokenCheck{tok, "issued before the database was full", true}.verify(a, &probs, "after the fault")
	}
	probs.report(t, "tokens issued while the database filled up")
}

// TestFaultsClosedDatabase: the store is closed under the server (it
// cannot come back: a closed store is not reopened). Every endpoint that
// needs it answers 503, and readiness says so.
func TestFaultsClosedDatabase(t *testing.T) {
	n := startNode(t, filepath.Join(t.TempDir(), "closed.db"), nil)
	a := newAPI(n.URL, newRecorder())
	ctx := t.Context()
	tok, err := a.clientCredentials("read").Token(a.oauthCtx(ctx))
	require.NoError(t, err)
	require.NoError(t, n.in.Close())

	ans, err := a.post(ctx, "/oauth2/token", svc, url.Values{"grant_type": {"client_credentials"}})
	requireUnavailable(t, "client_credentials", ans, err)
	ans, err = a.revoke(ctx, svc, tok.AccessToken, "")
	requireUnavailable(t, "revocation", ans, err)
	_, ans, err = a.introspect(ctx, tok.AccessToken)
	requireUnavailable(t, "introspection", ans, err)
	_, err = a.newBrowser().authorize(ctx, web, "openid")
	require.ErrorContains(t, err, "answered 503", "the authorization request shows the storage error page")
	ready, err := a.hc.Get(n.URL + "/health/ready")
	require.NoError(t, err)
	_ = ready.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, ready.StatusCode, "readiness with the database closed")
	requireCleanLogs(t, n)
}

// writeConn is the store's write pool, checked to be what the fault
// needs: exactly one connection, so a pragma set through it applies to
// every write the server makes.
func writeConn(t *testing.T, n *node) *sql.DB {
	t.Helper()
	w := n.in.Store.SQLDB()
	require.NotNil(t, w)
	st := w.Stats()
	require.Equal(t, 1, st.MaxOpenConnections, "the write pool holds one connection")
	require.LessOrEqual(t, st.OpenConnections, 1)
	return w
}

func mustExec(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	_, err := db.Exec(q)
	require.NoError(t, err, q)
}

// requirePragma runs PRAGMA q and requires its answer to be want.
func requirePragma(t *testing.T, db *sql.DB, q string, want int) {
	t.Helper()
	var got int
	require.NoError(t, db.QueryRow("PRAGMA "+q).Scan(&got), q)
	require.Equal(t, want, got, "PRAGMA %s", q)
	require.Equal(t, 1, db.Stats().OpenConnections, "still the one write connection")
}

// fillUntilFull issues tokens until the token endpoint answers 503, at
// most 3000 or 30 s, and returns those it issued.
func fillUntilFull(t *testing.T, a *api) []string {
	t.Helper()
	var issued []string
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; i < 3000 && time.Now().Before(deadline); i++ {
		ans, err := a.post(t.Context(), "/oauth2/token", svc, url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}})
		require.NoError(t, err)
		if ans.Status != http.StatusOK {
			requireUnavailable(t, "client_credentials once the database is full", ans, nil)
			t.Logf("the database was full after %d more tokens", len(issued))
			return issued
		}
		issued = append(issued, ans.json()["access_token"].(string))
	}
	t.Fatalf("%d tokens issued and the database never filled up", len(issued))
	return nil
}

// requireUnavailable: 503 temporarily_unavailable as an RFC 6749 JSON
// error, with nothing of the server's insides in it.
func requireUnavailable(t *testing.T, what string, ans answer, err error) {
	t.Helper()
	require.NoError(t, err, what)
	require.Equal(t, http.StatusServiceUnavailable, ans.Status, "%s: %s", what, ans)
	require.True(t, ans.isJSON(), "%s: JSON, not %q: %s", what, ans.Header.Get("Content-Type"), ans)
	require.Equal(t, "temporarily_unavailable", ans.errorCode(), "%s: %s", what, ans)
	requireNoInsides(t, what, ans)
}

// requireUnavailablePage: the browser is told the server cannot go on,
// either with the storage error page (503) or, once the request is known
// to be the client's, with a redirect to it carrying temporarily_unavailable
// (RFC 6749 §4.1.2.1).
func requireUnavailablePage(t *testing.T, what string, ans answer) {
	t.Helper()
	if loc := ans.Header.Get("Location"); ans.Status/100 == 3 {
		u, err := url.Parse(loc)
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(loc, redirectURI+"?"), "%s: redirected to %s", what, loc)
		require.Equal(t, "temporarily_unavailable", u.Query().Get("error"), "%s: %s", what, loc)
		require.Empty(t, u.Query().Get("code"), "%s: a code with an error", what)
		return
	}
	require.Equal(t, http.StatusServiceUnavailable, ans.Status, "%s: %s", what, ans)
	require.True(t, strings.HasPrefix(ans.Header.Get("Content-Type"), "text/html"), "%s: a page", what)
	requireNoInsides(t, what, ans)
}

// requireNoInsides: no debug field, no SQLite message, no stack trace.
func requireNoInsides(t *testing.T, what string, ans answer) {
	t.Helper()
	require.NotContains(t, ans.json(), "error_debug", "%s: debug details sent to the client", what)
	body := strings.ToLower(string(ans.Body))
	for _, leak := range []string{"sqlite", "database is", "disk is full", "readonly", "goroutine", ".go:"} {
		require.NotContains(t, body, leak, "%s: the answer shows the server's insides: %s", what, ans)
	}
}

// requireCleanLogs: faults are logged as errors, but never as a panic or
// as SQLite's lock contention.
func requireCleanLogs(t *testing.T, n *node) {
	t.Helper()
	if bad := badLogLines(n.logs.String()); len(bad) > 0 {
		t.Errorf("the server logged lock contention or a panic:\n%s", strings.Join(bad, "\n"))
	}
}

// snapshot is every row of every table of the SQLite file, read through
// a connection of the test's own (the driver "sqlite3" is linked in by
// the store).
type snapshot struct{ db *sql.DB }

func openSnapshot(t *testing.T, path string) *snapshot {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=5000")
	require.NoError(t, err)
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = db.Close() })
	return &snapshot{db: db}
}

// take is the database's content, table by table, as text.
func (s *snapshot) take(t *testing.T) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var tables []string
	rows, err := s.db.QueryContext(ctx, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
	require.NoError(t, err)
	for rows.Next() {
		var name string
		require.NoError(t, rows.Scan(&name))
		tables = append(tables, name)
	}
	require.NoError(t, rows.Err())
	_ = rows.Close()
	out := map[string]string{}
	for _, table := range tables {
		rows, err := s.db.QueryContext(ctx, `SELECT * FROM "`+table+`" ORDER BY rowid`)
		require.NoError(t, err, table)
		cols, _ := rows.Columns()
		var b strings.Builder
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			require.NoError(t, rows.Scan(ptrs...))
			fmt.Fprintf(&b, "%v\n", vals)
		}
		require.NoError(t, rows.Err())
		_ = rows.Close()
		out[table] = b.String()
	}
	return out
}

// changedTables are the tables whose rows differ between two snapshots.
func changedTables(before, after map[string]string) []string {
	var changed []string
	for table, rows := range after {
		if before[table] != rows {
			changed = append(changed, table)
		}
	}
	for table := range before {
		if _, ok := after[table]; !ok {
			changed = append(changed, table)
		}
	}
	sort.Strings(changed)
	return changed
}

// integrity checks the file's structure and its foreign keys.
func (s *snapshot) integrity(t *testing.T) {
	t.Helper()
	var res string
	require.NoError(t, s.db.QueryRow("PRAGMA integrity_check").Scan(&res))
	require.Equal(t, "ok", res, "integrity_check")
	rows, err := s.db.Query("PRAGMA foreign_key_check")
	require.NoError(t, err)
	defer rows.Close()
	require.False(t, rows.Next(), "foreign_key_check finds rows without their parent")
}
