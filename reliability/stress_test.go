package reliability_test

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestStress runs 32 workers against one server on a SQLite file for
// LATCH_STRESS_DURATION (10s; 2s with -short), each mixing the
// authorization code flow through the real pages, client_credentials,
// refresh with rotation, introspection and revocation. Each grant belongs
// to one worker, so what every token must introspect as is known exactly:
// no 5xx, no "database is locked" in any answer or log line, every token
// of a grant whose revocation answered 200 inactive, and of every other
// grant the newest access and refresh token active and the rotated ones
// inactive.
func TestStress(t *testing.T) {
	const workers = 32
	def := 10 * time.Second
	if testing.Short() {
		def = 2 * time.Second
	}
	duration := envDuration(t, "LATCH_STRESS_DURATION", def)

	n := startNode(t, filepath.Join(t.TempDir(), "stress.db"), nil)
	rec := newRecorder()
	t.Cleanup(rec.close)
	a := newAPI(n.URL, rec)

	// Each chosen secret and password costs an argon2id check (19 MiB,
	// slow under -race) until the server has cached it, and a login always
	// costs one: warm the client secrets up once, and let the workers
	// start on four signed-in browsers, signing in afresh now and then.
	var st stressStats
	var probs problems
	mustCC(t, a)
	warm := make([]*browser, 4)
	for i := range warm {
		warm[i] = a.newBrowser()
		(&worker{a: a, br: warm[i], st: &st, probs: &probs}).codeFlow(t.Context(), [...]creds{web, spa}[i%2], false)
	}
	probs.report(t, "warm-up")
	if t.Failed() {
		t.FailNow()
	}
	ws := make([]*worker, workers)
	deadline := time.Now().Add(duration)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range ws {
		ws[i] = &worker{a: a, rng: rand.New(rand.NewPCG(uint64(i), 7)), br: warm[i%len(warm)], st: &st, probs: &probs, flows: i}
		wg.Go(func() {
			for step := 0; step < 100_000 && time.Now().Before(deadline); step++ {
				ws[i].step()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	t.Logf("%d workers, %v: %d requests (%.0f/s); %d client_credentials, %d code flows (%d with the login page), %d refreshes, %d introspections, %d revocations",
		workers, elapsed.Round(time.Millisecond), rec.requests.Load(), float64(rec.requests.Load())/elapsed.Seconds(),
		st.cc.Load(), st.code.Load(), st.logins.Load(), st.refresh.Load(), st.introspect.Load(), st.revoke.Load())

	// Afterwards, every token of every grant, 8 introspections at a time.
	checks := make(chan tokenCheck)
	var checked atomic.Int64
	var cwg sync.WaitGroup
	for range 8 {
		cwg.Go(func() {
			for c := range checks {
				checked.Add(1)
				c.verify(a, &probs, "afterwards")
			}
		})
	}
	for _, w := range ws {
		for _, g := range w.all {
			for _, c := range g.checks() {
				checks <- c
			}
		}
	}
	close(checks)
	cwg.Wait()
	t.Logf("afterwards: %d tokens introspected in %v", checked.Load(), (time.Since(start) - elapsed).Round(time.Millisecond))

	probs.report(t, "stress")
	rec.fiveXX.report(t, "5xx answers")
	rec.locked.report(t, "answers naming SQLite's lock")
	logs := n.logs.String()
	if bad := badLogLines(logs); len(bad) > 0 {
		t.Errorf("the server logged lock contention or a panic:\n%s", strings.Join(bad, "\n"))
	}
	for _, level := range []string{"ERROR", "WARN"} {
		if lines := logLines(logs, level); len(lines) > 0 {
			t.Errorf("the server logged at %s:\n%s", level, strings.Join(lines, "\n"))
		}
	}
	for name, v := range map[string]int64{"client_credentials": st.cc.Load(), "code flow": st.code.Load(),
		"refresh": st.refresh.Load(), "revocation": st.revoke.Load(), "introspection": st.introspect.Load()} {
		if v == 0 {
			t.Errorf("no %s succeeded: the mix did not run", name)
		}
	}
}

type stressStats struct {
	cc, code, logins, refresh, introspect, revoke atomic.Int64
}

// grant is what one issuance started: its owner and every token it
// produced, oldest first. revoked means a revocation answered 200; unsure
// means an answer left its state unknown (already reported).
type grant struct {
	owner           creds
	access, refresh []string
	revoked, unsure bool
}

func last(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

// tokenCheck is a token and what it must introspect as.
type tokenCheck struct {
	token, what string
	active      bool
}

func (c tokenCheck) verify(a *api, probs *problems, when string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	active, ans, err := a.introspect(ctx, c.token)
	switch {
	case err != nil:
		probs.add("%s: introspect %s (%s): %v", when, fp(c.token), c.what, err)
	case ans.Status != 200:
		probs.add("%s: introspect %s (%s): %s", when, fp(c.token), c.what, ans)
	case active != c.active:
		probs.add("%s: %s (%s) introspects active=%v, want %v", when, fp(c.token), c.what, active, c.active)
	}
}

// checks is what every token of g must introspect as.
func (g *grant) checks() []tokenCheck {
	if g.unsure {
		return nil
	}
	var out []tokenCheck
	for i, list := range [][]string{g.access, g.refresh} {
		kind := [...]string{"access token", "refresh token"}[i]
		for j, tok := range list {
			switch {
			case g.revoked:
				out = append(out, tokenCheck{tok, "revoked " + kind, false})
			case j == len(list)-1:
				out = append(out, tokenCheck{tok, "newest " + kind, true})
			default:
				out = append(out, tokenCheck{tok, "rotated-away " + kind, false})
			}
		}
	}
	return out
}

// worker owns its grants: nothing else touches them, so their state is
// known after every answer.
type worker struct {
	a     *api
	rng   *rand.Rand
	br    *browser
	st    *stressStats
	probs *problems
	flows int
	live  []*grant // grants still used for refresh, introspection, revocation
	all   []*grant
}

func (w *worker) step() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := w.rng.Float64()
	switch {
	case len(w.live) < 2 || r < 0.20:
		w.clientCredentials(ctx)
	case r < 0.32:
		w.flows++
		w.codeFlow(ctx, [...]creds{web, spa}[w.flows%2], w.flows%8 == 0)
	case r < 0.57:
		w.refreshOne(ctx)
	case r < 0.87:
		w.introspectOne(ctx)
	default:
		w.revokeOne(ctx)
	}
}

func (w *worker) add(g *grant) {
	w.all = append(w.all, g)
	w.live = append(w.live, g)
	if len(w.live) > 6 {
		w.live = w.live[1:]
	}
}

func (w *worker) drop(g *grant) {
	for i, l := range w.live {
		if l == g {
			w.live = append(w.live[:i], w.live[i+1:]...)
			return
		}
	}
}

func (w *worker) clientCredentials(ctx context.Context) {
	tok, err := w.a.clientCredentials("read").Token(w.a.oauthCtx(ctx))
	if err != nil {
		w.probs.add("client_credentials: status %d: %v", statusOf(err), err)
		return
	}
	w.st.cc.Add(1)
	w.add(&grant{owner: svc, access: []string{tok.AccessToken}})
}

// codeFlow runs the authorization code flow for c: web shows the consent
// page, spa (public) does not. fresh signs in with a new browser, which
// the worker keeps using.
func (w *worker) codeFlow(ctx context.Context, c creds, fresh bool) {
	if fresh {
		w.br = w.a.newBrowser()
		w.st.logins.Add(1)
	}
	g, err := w.br.authorize(ctx, c, "openid", "offline_access", "read")
	if err != nil {
		w.probs.add("authorize %s: %v", c.id, err)
		return
	}
	tok, err := w.br.exchange(ctx, c, g)
	if err != nil {
		w.probs.add("exchange a code of %s: status %d: %v", c.id, statusOf(err), err)
		return
	}
	if tok.RefreshToken == "" || tok.Extra("id_token") == nil {
		w.probs.add("exchange a code of %s: no refresh token or no ID token", c.id)
		return
	}
	w.st.code.Add(1)
	w.add(&grant{owner: c, access: []string{tok.AccessToken}, refresh: []string{tok.RefreshToken}})
}

func (w *worker) pick(withRefresh bool) *grant {
	var candidates []*grant
	for _, g := range w.live {
		if !withRefresh || len(g.refresh) > 0 {
			candidates = append(candidates, g)
		}
	}
	if len(candidates) == 0 {
		return nil
	}
	return candidates[w.rng.IntN(len(candidates))]
}

func (w *worker) refreshOne(ctx context.Context) {
	g := w.pick(true)
	if g == nil {
		w.clientCredentials(ctx)
		return
	}
	tok, err := w.a.refresh(ctx, g.owner, last(g.refresh))
	if err != nil {
		w.probs.add("refresh %s of %s: status %d: %v", fp(last(g.refresh)), g.owner.id, statusOf(err), err)
		g.unsure = true
		w.drop(g)
		return
	}
	w.st.refresh.Add(1)
	g.access = append(g.access, tok.AccessToken)
	g.refresh = append(g.refresh, tok.RefreshToken)
}

// introspectOne checks a live grant's newest token, or now and then a
// rotated-away one, while the others write.
func (w *worker) introspectOne(ctx context.Context) {
	g := w.pick(false)
	c := tokenCheck{last(g.access), "newest access token", true}
	switch n := len(g.refresh); {
	case n > 1 && w.rng.IntN(4) == 0:
		c = tokenCheck{g.refresh[n-2], "rotated-away refresh token", false}
	case n > 0 && w.rng.IntN(2) == 0:
		c = tokenCheck{g.refresh[n-1], "newest refresh token", true}
	}
	c.verify(w.a, w.probs, "during the run")
	w.st.introspect.Add(1)
}

// revokeOne revokes a live grant by its newest access or refresh token,
// with a right, wrong or no hint; the whole grant must go at once.
func (w *worker) revokeOne(ctx context.Context) {
	g := w.pick(false)
	token, hint := last(g.access), "access_token"
	if len(g.refresh) > 0 && w.rng.IntN(2) == 0 {
		token, hint = last(g.refresh), "refresh_token"
	}
	switch w.rng.IntN(3) {
	case 0:
		hint = ""
	case 1:
		hint = map[string]string{"access_token": "refresh_token", "refresh_token": "access_token"}[hint]
	}
	w.drop(g)
	ans, err := w.a.revoke(ctx, g.owner, token, hint)
	if err != nil || ans.Status != 200 {
		w.probs.add("revoke %s of %s (hint %q): %v %v", fp(token), g.owner.id, hint, ans, err)
		g.unsure = true
		return
	}
	w.st.revoke.Add(1)
	g.revoked = true
	for _, c := range g.checks() {
		if c.token == last(g.access) || c.token == last(g.refresh) {
			c.verify(w.a, w.probs, "right after the revocation")
		}
	}
}
