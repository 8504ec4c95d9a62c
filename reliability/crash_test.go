package reliability_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCrash loads a real `latch serve` on a SQLite file with concurrent
// client_credentials issuance and revocation, and SIGKILLs it while
// requests are in flight, twice; each restart on the same file must keep
// every answer given before the kill: a token answered 200 is active, a
// revocation answered 200 holds. A request in flight at the kill may have
// happened or not; only answered ones count. Finally the server stops
// cleanly on SIGTERM and the file passes SQLite's integrity check.
func TestCrash(t *testing.T) {
	bin := latchBinary(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "crash.db")
	cfg := writeConfig(t, dir, "127.0.0.1:0", "", "{driver: sqlite, dsn: "+db+"}")
	led := &ledger{state: map[string]tokenState{}}
	rec := newRecorder()
	t.Cleanup(rec.close)

	for round := 1; round <= 2; round++ {
		p := startProc(t, bin, dir, "--config", cfg)
		a := newAPI(p.URL, rec)
		led.verify(t, a, round)
		inFlight := led.loadAndKill(t, a, p, round)
		t.Logf("round %d: killed with %d requests in flight; %s", round, inFlight, led.summary())
		p.logProblems(t, "latch serve")
	}
	p := startProc(t, bin, dir, "--config", cfg)
	a := newAPI(p.URL, rec)
	led.verify(t, a, 3)
	tok := mustCC(t, a)
	requireRevoked(t, a, svc, tok)
	require.NoError(t, p.stop(t), "latch serve on SIGTERM; stderr:\n%s", p.Stderr)
	p.logProblems(t, "latch serve")
	openSnapshot(t, db).integrity(t)
	rec.fiveXX.report(t, "5xx answers")
	rec.locked.report(t, "answers naming SQLite's lock")
}

type tokenState int

const (
	issued     tokenState = iota // answered 200 by the token endpoint
	revokeSent                   // a revocation went out and was not answered
	revoked                      // a revocation answered 200
)

// ledger is every token an answer gave and what became of it.
type ledger struct {
	mu    sync.Mutex
	state map[string]tokenState
	probs problems
}

func (l *ledger) set(token string, s tokenState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.state[token] = s
}

func (l *ledger) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n [3]int
	for _, s := range l.state {
		n[s]++
	}
	return fmt.Sprintf("%d tokens active, %d revoked, %d with a revocation unanswered", n[issued], n[revoked], n[revokeSent])
}

// verify introspects every token whose fate an answer told, 8 at a time.
func (l *ledger) verify(t *testing.T, a *api, round int) {
	t.Helper()
	l.mu.Lock()
	var checks []tokenCheck
	for tok, s := range l.state {
		switch s {
		case issued:
			checks = append(checks, tokenCheck{tok, "a token answered 200 before the kill", true})
		case revoked:
			checks = append(checks, tokenCheck{tok, "a token whose revocation answered 200 before the kill", false})
		}
	}
	l.mu.Unlock()
	ch := make(chan tokenCheck)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for c := range ch {
				c.verify(a, &l.probs, fmt.Sprintf("after restart %d", round-1))
			}
		})
	}
	for _, c := range checks {
		ch <- c
	}
	close(ch)
	wg.Wait()
	l.probs.report(t, "after a restart")
	if t.Failed() {
		t.FailNow()
	}
}

// loadAndKill runs 16 workers issuing tokens and revoking about half of
// them, and SIGKILLs p once enough answers are in (at most 4 s after the
// start) at a moment when requests are in flight. It returns how many
// were.
func (l *ledger) loadAndKill(t *testing.T, a *api, p *proc, round int) int64 {
	t.Helper()
	var inFlight, answered, revocations atomic.Int64
	var killed atomic.Bool
	// send counts the request as in flight while it is; an error after
	// the kill is the kill.
	send := func(what string, do func() (answer, error)) (answer, bool) {
		inFlight.Add(1)
		ans, err := do()
		inFlight.Add(-1)
		switch {
		case err != nil && killed.Load():
			return ans, false
		case err != nil:
			l.probs.add("%s: %v", what, err)
			return ans, false
		case ans.Status != http.StatusOK:
			l.probs.add("%s: %s", what, ans)
			return ans, false
		}
		return ans, true
	}
	var wg sync.WaitGroup
	for w := range 16 {
		rng := rand.New(rand.NewPCG(uint64(round), uint64(w)))
		wg.Go(func() {
			var mine []string
			for i := 0; i < 10_000 && !killed.Load(); i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				ans, ok := send("client_credentials", func() (answer, error) {
					return a.post(ctx, "/oauth2/token", svc, url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}})
				})
				if ok {
					tok, _ := ans.json()["access_token"].(string)
					l.set(tok, issued)
					answered.Add(1)
					mine = append(mine, tok)
				}
				if len(mine) > 0 && rng.IntN(2) == 0 && !killed.Load() {
					tok := mine[rng.IntN(len(mine))]
					mine = removeToken(mine, tok)
					l.set(tok, revokeSent)
					if _, ok := send("revocation", func() (answer, error) { return a.revoke(ctx, svc, tok, "access_token") }); ok {
						l.set(tok, revoked)
						revocations.Add(1)
					}
				}
				cancel()
			}
		})
	}
	start := time.Now()
	for time.Since(start) < 4*time.Second && (answered.Load() < 200 || revocations.Load() < 80) {
		time.Sleep(5 * time.Millisecond)
	}
	// Kill while requests are in flight (within another second).
	for spin := time.Now(); inFlight.Load() < 4 && time.Since(spin) < time.Second; {
		time.Sleep(100 * time.Microsecond)
	}
	n := inFlight.Load()
	killed.Store(true)
	require.NoError(t, p.Cmd.Process.Signal(syscall.SIGKILL))
	<-p.Exited
	wg.Wait()
	require.Positive(t, answered.Load(), "no token was issued before the kill")
	l.probs.report(t, "before the kill")
	return n
}

func removeToken(list []string, tok string) []string {
	for i, s := range list {
		if s == tok {
			return append(list[:i], list[i+1:]...)
		}
	}
	return list
}
