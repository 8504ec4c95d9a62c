// Package skipnote tells the person who runs `go test ./...` why a
// package's tests skip, for a TestMain to call once.
//
// A t.Skip reason shows only with -v: in package-list mode go test prints
// nothing of a passing package but its "ok" line, TestMain's own output
// included. A newcomer without PostgreSQL would never learn that the
// PostgreSQL tests did not run. So the note goes to standard error (shown
// with -v, in CI logs and on failure) and, without -v, to the controlling
// terminal, which go test does not capture. Without a terminal (CI, a
// pipe) only standard error gets it.
package skipnote

import (
	"flag"
	"fmt"
	"os"
	"testing"
)

// Print writes "PKG: msg" as described above. It parses the test flags
// (TestMain may call it before m.Run) to tell whether -v is on.
func Print(pkg, msg string) {
	if !flag.Parsed() {
		flag.Parse()
	}
	line := fmt.Sprintf("%s: %s\n", pkg, msg)
	fmt.Fprint(os.Stderr, line)
	if testing.Verbose() {
		return // standard error reaches the person already
	}
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		fmt.Fprint(tty, line)
		_ = tty.Close()
	}
}
