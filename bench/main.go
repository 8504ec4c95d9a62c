// Command bench is Latch's load benchmark: it drives one OAuth
// operation over real HTTP at a fixed concurrency for a fixed time and
// reports throughput, latency percentiles, errors by status, the server's
// peak memory, and whether the README's performance targets were met.
//
// From the repository root:
//
//	go run ./bench -op cc -c 32 -d 15s    # client_credentials grants
//	go run ./bench -op introspect         # introspection of valid access tokens
//	go run ./bench -op revoke             # each request revokes a distinct token
//	go run ./bench -op refresh            # refresh token rotation, one chain per worker
//	go run ./bench -op code               # code exchanges: confidential client, PKCE S256, ID token
//	go run ./bench -op mixed              # a weighted mix of the five above
//	go run ./bench -op start -n 10        # `latch serve --dev` until /health/ready is 200
//	go run ./bench -op compare -d 10s     # Latch, latch --dev, oidc-provider and a no-op handler, interleaved
//	go run ./bench -op cc -smoke          # a one-second run, for CI
//
// Without -url, the benchmark starts Latch itself, on 127.0.0.1 and a fresh
// SQLite file (-db). First it prepares that file as the CLI would: it
// creates a confidential client with a generated secret through the
// clients manager, as `latch clients create` does, and pre-mints with the
// server's own strategies and store whatever the operation uses up (access
// tokens, refresh tokens, authorization codes), stored exactly as a real
// flow stores them. Then it re-executes its own binary as a child process
// that serves that file exactly as `latch serve` does (server.Boot,
// server.HTTPServer, warnings-only logging) and nothing else, so that the
// child's peak RSS (VmHWM) is the server's. Only then does the clock start.
// At the end the parent reads VmHWM, stops the child with SIGTERM, checks
// that it exited cleanly and removes the temporary directory.
//
// With -url the load goes to an already-running Latch, authenticating as
// -client-id/-client-secret (a confidential client with client_credentials
// and client_secret_basic); the tokens to introspect and revoke are then
// obtained with client_credentials before the timed phase, and the
// refresh and code operations are not available.
//
// The targets are reported, never enforced: the exit status says only
// whether the benchmark ran. Remember that the load generator shares the
// machine with the server: on a small machine it takes a good part of the
// CPU the server could have used.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	if spec, ok := os.LookupEnv(childEnv); ok {
		os.Exit(childMain(spec))
	}
	if addr, ok := os.LookupEnv(noopEnv); ok {
		os.Exit(noopMain(addr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// options are the command line.
type options struct {
	op           string
	concurrency  int
	duration     time.Duration
	url          string
	clientID     string
	clientSecret string
	db           string
	json         bool
	smoke        bool
	runs         int
	latch        string
	tokens       int
	timeout      time.Duration
	cpuProfile   string
	logLevel     string
	rounds       int
	postgres     string
	only         string
}

// ops are the operations -op takes, in the order the usage lists them.
var ops = []string{"cc", "introspect", "revoke", "refresh", "code", "mixed", "start", "compare"}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.op, "op", "cc", "operation: "+strings.Join(ops, ", "))
	fs.IntVar(&o.concurrency, "c", 32, "concurrent workers, each with its own keep-alive connection")
	fs.DurationVar(&o.duration, "d", 15*time.Second, "duration of the timed phase")
	fs.StringVar(&o.url, "url", "", "base URL of a running Latch to load instead of starting one")
	fs.StringVar(&o.clientID, "client-id", "", "with -url: a confidential client with client_credentials (client_secret_basic)")
	fs.StringVar(&o.clientSecret, "client-secret", "", "with -url: the secret of -client-id")
	fs.StringVar(&o.db, "db", "", "SQLite file of the started server (default: a new file in a temporary directory)")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON")
	fs.BoolVar(&o.smoke, "smoke", false, "a short run for CI: -d 1s, and 3 runs for -op start")
	fs.IntVar(&o.runs, "n", 10, "-op start: how many times to start the server")
	fs.StringVar(&o.latch, "latch", "", "-op start: the latch binary (default: built from this module with go build)")
	fs.IntVar(&o.tokens, "tokens", 0, "tokens or codes to pre-mint for revoke and code (default: enough for the duration at a rate above the target)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write the started server's CPU profile of the timed phase to this file (go tool pprof)")
	fs.StringVar(&o.logLevel, "log", "warn", "log.level of the started server: warn logs nothing per request; info is serve's default, one line per request")
	fs.IntVar(&o.rounds, "rounds", 3, "-op compare: rounds, each running every op against every server in turn")
	fs.StringVar(&o.postgres, "postgres", "", "a PostgreSQL database (DSN) the benchmark fills with tokens: -op compare also loads one and two Latch processes on it; a load operation serves from it instead of a SQLite file")
	fs.StringVar(&o.only, "only", "", "-op compare: \"postgres\" loads only the PostgreSQL processes of -postgres, beside oidc-provider and the no-op handler")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "give up on a request after this long (counted as a transport error)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: go run ./bench [-op OP] [-c N] [-d DURATION] [flags]\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.smoke {
		o.duration, o.runs = time.Second, 3
	}
	var problems []error
	if !slices.Contains(ops, o.op) {
		problems = append(problems, fmt.Errorf("-op: %q is none of %s", o.op, strings.Join(ops, ", ")))
	}
	if o.concurrency < 1 || o.concurrency > 4096 {
		problems = append(problems, fmt.Errorf("-c: must be from 1 to 4096, got %d", o.concurrency))
	}
	if o.duration <= 0 || o.duration > time.Hour {
		problems = append(problems, fmt.Errorf("-d: must be more than 0 and at most 1h, got %s", o.duration))
	}
	if o.timeout <= 0 || o.timeout > 10*time.Minute {
		problems = append(problems, fmt.Errorf("-timeout: must be more than 0 and at most 10m, got %s", o.timeout))
	}
	if o.rounds < 1 || o.rounds > 20 {
		problems = append(problems, fmt.Errorf("-rounds: must be from 1 to 20, got %d", o.rounds))
	}
	if o.runs < 1 || o.runs > 1000 {
		problems = append(problems, fmt.Errorf("-n: must be from 1 to 1000, got %d", o.runs))
	}
	if o.tokens < 0 || o.tokens > maxPool {
		problems = append(problems, fmt.Errorf("-tokens: must be from 0 to %d, got %d", maxPool, o.tokens))
	}
	switch {
	case o.db != "" && o.postgres != "":
		problems = append(problems, errors.New("-db and -postgres: one database or the other"))
	case o.only != "" && o.only != "postgres":
		problems = append(problems, fmt.Errorf("-only: must be postgres, got %q", o.only))
	case o.only != "" && (o.op != "compare" || o.postgres == ""):
		problems = append(problems, errors.New("-only postgres: needs -op compare and -postgres DSN"))
	}
	if o.url != "" {
		u, err := url.Parse(o.url)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			problems = append(problems, fmt.Errorf("-url: must be an absolute http(s) URL, got %q", o.url))
		case o.clientID == "" || o.clientSecret == "":
			problems = append(problems, errors.New("-url: needs -client-id and -client-secret"))
		case o.op == "refresh" || o.op == "code":
			problems = append(problems, fmt.Errorf("-op %s: needs the benchmark's own server (no -url), which mints the refresh tokens and codes", o.op))
		case o.op == "start" || o.op == "compare":
			problems = append(problems, fmt.Errorf("-op %s: starts its own servers; -url does not apply", o.op))
		case o.db != "" || o.postgres != "":
			problems = append(problems, errors.New("-db, -postgres: apply only to the server the benchmark starts, not with -url"))
		}
		o.url = strings.TrimSuffix(o.url, "/")
	}
	return o, errors.Join(problems...)
}

// run is the benchmark; main is its only production caller, the tests
// call it directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	// The load generator shares the machine with the server it measures:
	// it collects garbage less often so that more of the CPU is the
	// server's. (The server, a child process, keeps Go's defaults.)
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	// The child processes write to stderr from goroutines of os/exec.
	stderr = &lockedWriter{w: stderr}
	var rep *Report
	switch o.op {
	case "compare":
		return benchCompare(ctx, o, stdout, stderr)
	case "start":
		rep, err = benchStart(ctx, o, stderr)
	default:
		rep, err = benchLoad(ctx, o, stderr)
	}
	if err != nil {
		return err
	}
	if o.json {
		return rep.writeJSON(stdout)
	}
	rep.writeText(stdout)
	return nil
}

// benchLoad runs one load operation against the started or given server.
func benchLoad(ctx context.Context, o options, stderr io.Writer) (*Report, error) {
	var (
		fx    *fixture
		child *childProcess
		err   error
	)
	if o.url == "" {
		child, err = startChild(ctx, o, stderr)
		if err != nil {
			return nil, err
		}
		// Stopped (and its directory removed) on every path; a failure to
		// stop cleanly is reported below when nothing else failed.
		defer child.stop()
		fx = child.fixture
	} else {
		if fx, err = remoteFixture(ctx, o, stderr); err != nil {
			return nil, err
		}
	}
	res, err := drive(ctx, o, fx)
	if err != nil {
		return nil, err
	}
	rep := newLoadReport(o, fx, res)
	if child != nil {
		rep.setRSS(child.peakRSS())
		if err := child.stop(); err != nil {
			return nil, err
		}
	}
	rep.judge()
	return rep, nil
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
