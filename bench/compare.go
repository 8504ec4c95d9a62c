package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/latchauth/latch/bench/loadgen"
)

// -op compare: Latch side by side with panva oidc-provider, the peer a user
// would pick instead, in one invocation. This machine's speed drifts by a
// factor of two between hours, so only ratios taken in one run mean
// anything: every server is loaded by the same client (loadgen), round by
// round and op by op in turn (A, B, C, D, then B, C, D, A, …), and a no-op
// Go handler in the same rounds is the ceiling of the machine that run.

// compareOps are the operations compared, in the order they run each round.
var compareOps = []string{"cc", "introspect", "revoke"}

// compareTargets are the ratios to oidc-provider the issue sets: req/s
// factor for Latch on a durable SQLite file (each also with p99 at most
// the peer's), and for --dev in memory.
var compareTargets = map[string]float64{"cc": 2.0, "introspect": 3.0, "revoke": 2.0}

const (
	devTarget       = 3.0
	startTargetMS   = 69 // a third of Hydra v2.3.0's 207 ms measured in the issue
	versionTargetMS = 20
)

// benchCompare runs the comparison and prints its report.
func benchCompare(ctx context.Context, o options, stdout, stderr io.Writer) error {
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "latch-bench-compare-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	peerDir, err := installPeer(ctx, filepath.Join(root, "bench", "peers", "oidc-provider"), stderr)
	if err != nil {
		return err
	}
	bin := o.latch
	if bin == "" {
		fmt.Fprintf(stderr, "bench: building latch\n")
		if bin, err = buildLatch(ctx, dir); err != nil {
			return err
		}
	}
	logs, err := os.Create(filepath.Join(dir, "servers.log"))
	if err != nil {
		return err
	}
	defer logs.Close()

	system := benchSystemSecret
	addr := func() string {
		a, e := freeAddr()
		err = errors.Join(err, e)
		return a
	}
	noopAddr, latchAddr, devAddr, peerAddr := addr(), addr(), addr(), addr()
	if err != nil {
		return err
	}
	db := filepath.Join(dir, "latch.db")
	cfg, err := writeLatchConfig(dir, "config.yaml", latchAddr, "sqlite", db, system)
	if err != nil {
		return err
	}
	noop, err := noopServer(noopAddr)
	if err != nil {
		return err
	}
	latch := latchServer(bin, dir, cfg, latchAddr, logs)
	// --dev runs where no config.yaml is, or it would seed that file's
	// secrets into its memory at every start.
	devDir := filepath.Join(dir, "dev")
	if err := os.Mkdir(devDir, 0o700); err != nil {
		return err
	}
	dev, peer := latchServer(bin, devDir, "", devAddr, logs), peerServer(peerDir, peerAddr, logs)
	servers := []*target{noop, latch, dev, peer}
	setups := []setup{{noop.name, []*target{noop}, nil}, {latch.name, []*target{latch}, sqliteRows(db)}, {dev.name, []*target{dev}, nil}, {peer.name, []*target{peer}, nil}}
	if o.only == "postgres" {
		// The PostgreSQL lines alone, beside the peer and the ceiling.
		servers, setups = []*target{noop, peer}, []setup{setups[0], setups[3]}
	}
	if o.postgres != "" {
		pg := make([]*target, 2)
		for i := range pg {
			a := addr()
			c, err := writeLatchConfig(dir, fmt.Sprintf("postgres%d.yaml", i+1), a, "postgres", o.postgres, system)
			if err != nil {
				return err
			}
			pg[i] = latchServer(bin, dir, c, a, logs)
			pg[i].name = fmt.Sprintf("latch postgres %c", 'A'+i)
		}
		if err != nil {
			return err
		}
		servers = append(servers, pg...)
		setups = append(setups, setup{"latch postgres ×1", pg[:1], postgresRows(o.postgres)}, setup{"latch postgres ×2", pg, postgresRows(o.postgres)})
	}
	defer func() {
		for _, s := range servers {
			_ = s.stop()
		}
	}()
	// Latch's first start on the new file hashes config.yaml's secrets;
	// the measured process is a restart, as a deployment's every later
	// start is. Both are reported.
	var firstStart time.Duration
	var firstRSS int64
	if o.only == "" {
		seeding := latchServer(bin, dir, cfg, latchAddr, logs)
		if firstStart, err = startServer(ctx, seeding, pathReady); err != nil {
			return fmt.Errorf("%w\n%s", err, tail(logs.Name(), 2000))
		}
		firstRSS = peakRSS(seeding.cmd.Process.Pid)
		if err := seeding.stop(); err != nil {
			return fmt.Errorf("latch did not exit cleanly after SIGTERM: %w", err)
		}
		fmt.Fprintf(stderr, "bench: latch first start (hashes config.yaml's secrets): %.1f ms, peak RSS %.1f MB\n", ms(firstStart), float64(firstRSS)/1e6)
	}
	started := map[string]time.Duration{}
	for _, s := range servers {
		took, err := startServer(ctx, s, readyPathOf(s))
		if err != nil {
			return fmt.Errorf("%w\n%s", err, tail(logs.Name(), 2000))
		}
		started[s.name] = took
	}

	runs := map[string]map[string][]*loadgen.Result{}
	var lost []string
	// A warm-up of every op on every server, not counted: Node compiles
	// hot code a while after its start, and a first run would measure
	// that.
	warm := o
	warm.duration = min(o.duration, 3*time.Second)
	for _, su := range setups {
		for _, op := range compareOps {
			if _, missing, err := su.run(ctx, warm, op); err != nil {
				return fmt.Errorf("%s %s warm-up: %w", su.name, op, err)
			} else if missing != 0 {
				lost = append(lost, fmt.Sprintf("%s %s warm-up: %d answers the database does not show", su.name, op, missing))
			}
		}
	}
	for round := range o.rounds {
		for _, op := range compareOps {
			for i := range setups {
				su := setups[(i+round)%len(setups)]
				res, missing, err := su.run(ctx, o, op)
				if err != nil {
					return fmt.Errorf("%s %s: %w", su.name, op, err)
				}
				if missing != 0 {
					lost = append(lost, fmt.Sprintf("%s %s round %d: %d answers the database does not show", su.name, op, round+1, missing))
				}
				fmt.Fprintf(stderr, "bench: round %d %-10s %-18s %8.0f req/s  p99 %6.1f ms  errors %d\n", round+1, op, su.name, res.RPS, res.P99, res.Errors)
				if runs[op] == nil {
					runs[op] = map[string][]*loadgen.Result{}
				}
				runs[op][su.name] = append(runs[op][su.name], res)
			}
		}
	}
	rss := map[string]int64{}
	for _, s := range servers {
		rss[s.name] = peakRSS(s.cmd.Process.Pid)
		if err := s.stop(); err != nil && strings.HasPrefix(s.name, "latch") {
			return fmt.Errorf("%s did not exit cleanly after SIGTERM: %w (log: %s)", s.name, err, logs.Name())
		}
	}
	var starts map[string][]time.Duration
	if o.only == "" {
		if starts, err = compareStarts(ctx, o, []*target{latch, dev, peer}, bin); err != nil {
			return err
		}
	}
	writeComparison(stdout, o, setups, runs, rss, started, starts)
	if o.only == "" {
		fmt.Fprintf(stdout, "latch first start on a new file (hashes the 3 config secrets): %.1f ms, peak RSS %.1f MB\n", ms(firstStart), float64(firstRSS)/1e6)
	}
	if len(lost) > 0 {
		return fmt.Errorf("lost writes:\n  %s", strings.Join(lost, "\n  "))
	}
	return nil
}

// readyPathOf is what a server answers 200 on once it serves.
func readyPathOf(s *target) string {
	if s.name == "oidc-provider" {
		return "/.well-known/openid-configuration"
	}
	return pathReady
}

// loadConfig is the load generator's run of op against s: each revocation
// revokes a distinct token, pre-minted before the clock starts.
func loadConfig(o options, s *target, op string) loadgen.Config {
	c := loadgen.Config{
		TokenURL: s.base + s.tokenPath, IntrospectURL: s.base + s.introspectPath, RevokeURL: s.base + s.revokePath,
		ClientID: s.clientID, ClientSecret: s.clientSecret, Auth: "basic",
		Op: op, Concurrency: o.concurrency, Duration: o.duration, Pool: 100, Timeout: o.timeout, Label: s.name,
	}
	if op == "revoke" {
		c.MaxRequests = max(1000, int(o.duration.Seconds()*2000))
	}
	return c
}

// compareStarts restarts each server o.runs times in turn and times exec
// to ready; it also times `latch version`. Latch restarts on the SQLite
// file of the load runs, with config.yaml unchanged.
func compareStarts(ctx context.Context, o options, servers []*target, bin string) (map[string][]time.Duration, error) {
	starts := map[string][]time.Duration{}
	for range o.runs {
		for _, s := range servers {
			c := exec.Command(s.cmd.Path, s.cmd.Args[1:]...)
			c.Dir, c.Env, c.Stdout, c.Stderr = s.cmd.Dir, s.cmd.Env, s.cmd.Stdout, s.cmd.Stderr
			s.cmd = c
			took, err := startServer(ctx, s, readyPathOf(s))
			if err != nil {
				return nil, err
			}
			starts[s.name] = append(starts[s.name], took)
			if err := s.stop(); err != nil && s.name != "oidc-provider" {
				return nil, fmt.Errorf("%s did not exit cleanly after SIGTERM: %w", s.name, err)
			}
		}
		t0 := time.Now()
		if out, err := exec.CommandContext(ctx, bin, "version").CombinedOutput(); err != nil {
			return nil, fmt.Errorf("latch version: %v: %s", err, out)
		}
		starts["latch version"] = append(starts["latch version"], time.Since(t0))
	}
	for _, d := range starts {
		slices.Sort(d)
	}
	return starts, nil
}

// moduleRoot is the directory of the Latch module the benchmark runs in.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", errors.New("-op compare: run from the Latch repository")
	}
	return filepath.Dir(gomod), nil
}

// writeComparison prints, per op, each server's median req/s and p99 over
// the rounds, the ratios to oidc-provider and the targets met or missed.
func writeComparison(w io.Writer, o options, setups []setup, runs map[string]map[string][]*loadgen.Result, rss map[string]int64, first map[string]time.Duration, starts map[string][]time.Duration) {
	fmt.Fprintf(w, "%d rounds, interleaved; %d connections, %s per run; loadgen client, client_secret_basic\n\n", o.rounds, o.concurrency, o.duration)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tserver\tmedian req/s\tmedian p99 ms\terrors\t÷ oidc-provider\ttarget\t")
	verdicts := []string{}
	for _, op := range compareOps {
		peerRPS, peerP99 := medians(runs[op]["oidc-provider"])
		for _, su := range setups {
			name := su.name
			rs := runs[op][name]
			rps, p99 := medians(rs)
			ratio, target := rps/peerRPS, ""
			switch name {
			case "latch":
				ok := ratio >= compareTargets[op] && p99 <= peerP99
				target = fmt.Sprintf("≥ %.1f×, p99 ≤ %.1f: %s", compareTargets[op], peerP99, metOrMissed(ok))
				verdicts = append(verdicts, fmt.Sprintf("%s latch %.2f× p99 %.1f vs %.1f ms: %s", op, ratio, p99, peerP99, metOrMissed(ok)))
			case "latch --dev":
				target = fmt.Sprintf("≥ %.1f×: %s", devTarget, metOrMissed(ratio >= devTarget))
				verdicts = append(verdicts, fmt.Sprintf("%s latch --dev %.2f×: %s", op, ratio, metOrMissed(ratio >= devTarget)))
			}
			fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.1f\t%d\t%.2f\t%s\t\n", op, name, rps, p99, errorsOf(rs), ratio, target)
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "server\tpeak RSS MB (start through run)\tstart ms (before the run)\tmedian restart ms\t")
	for _, name := range slices.Sorted(maps.Keys(rss)) {
		restart := "-"
		if d := starts[name]; len(d) > 0 {
			restart = fmt.Sprintf("%.1f", ms(median(d)))
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%s\t\n", name, float64(rss[name])/1e6, ms(first[name]), restart)
	}
	tw.Flush()
	if starts == nil { // -only: no configured SQLite Latch, no restarts
		fmt.Fprintf(w, "\ntargets:\n  %s\n", strings.Join(verdicts, "\n  "))
		return
	}
	version := median(starts["latch version"])
	restart := median(starts["latch"])
	verdicts = append(verdicts,
		fmt.Sprintf("latch peak RSS %.1f MB ≤ 40: %s", float64(rss["latch"])/1e6, metOrMissed(rss["latch"] > 0 && rss["latch"] <= rssTarget)),
		fmt.Sprintf("latch restart to ready %.1f ms ≤ %d: %s", ms(restart), startTargetMS, metOrMissed(ms(restart) <= startTargetMS)),
		fmt.Sprintf("latch --dev start to ready %.1f ms ≤ %d: %s", ms(median(starts["latch --dev"])), startTargetMS, metOrMissed(ms(median(starts["latch --dev"])) <= startTargetMS)),
		fmt.Sprintf("latch version %.1f ms ≤ %d: %s", ms(version), versionTargetMS, metOrMissed(ms(version) <= versionTargetMS)),
	)
	fmt.Fprintf(w, "\ntargets:\n  %s\n", strings.Join(verdicts, "\n  "))
}

// tail is the end of the file at path, for error messages.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	return string(b[max(0, len(b)-n):])
}

func metOrMissed(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// medians are the median req/s and the median p99 of rs.
func medians(rs []*loadgen.Result) (rps, p99 float64) {
	if len(rs) == 0 {
		return 0, 0
	}
	a, b := make([]float64, len(rs)), make([]float64, len(rs))
	for i, r := range rs {
		a[i], b[i] = r.RPS, r.P99
	}
	return medianFloat(a), medianFloat(b)
}

func medianFloat(v []float64) float64 {
	slices.Sort(v)
	if n := len(v); n%2 == 1 {
		return v[n/2]
	} else {
		return (v[n/2-1] + v[n/2]) / 2
	}
}

func errorsOf(rs []*loadgen.Result) int {
	n := 0
	for _, r := range rs {
		n += r.Errors
	}
	return n
}
