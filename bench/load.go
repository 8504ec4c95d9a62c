package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The timed phase: -c workers, each with its own keep-alive connection,
// send requests back to back until -d has passed. A worker keeps its
// latencies and outcomes to itself; they are merged once all have stopped,
// so the hot path takes no lock (the pools of revoke tokens and codes are
// shared through an atomic cursor).

// op is one operation of the load.
type op int

const (
	opCC op = iota
	opIntrospect
	opRevoke
	opRefresh
	opCode
	numOps
)

var opNames = [numOps]string{"cc", "introspect", "revoke", "refresh", "code"}

func (p op) String() string { return opNames[p] }

// mixWeights is -op mixed: mostly introspection, which resource servers
// ask on every call they serve; then new tokens and refreshes; a few
// revocations and sign-ins.
var mixWeights = [numOps]int{opCC: 25, opIntrospect: 50, opRevoke: 5, opRefresh: 15, opCode: 5}

const (
	pathToken      = "/oauth2/token"
	pathIntrospect = "/oauth2/introspect"
	pathRevoke     = "/oauth2/revoke"
	pathReady      = "/health/ready"
)

// errRanOut says that a pool of one-use tokens or codes is empty.
var errRanOut = errors.New("pool ran out")

// loadResult is what the timed phase measured.
type loadResult struct {
	elapsed time.Duration
	ops     [numOps]opResult
	// ranOut is when the pool of an operation first ran out (0: never).
	ranOut [numOps]time.Duration
	// transportErr is the first transport error, as an example.
	transportErr string
}

// opResult is one operation's share of the load.
type opResult struct {
	latencies []time.Duration // sorted, of every request, failed or not
	errors    map[string]int  // "400 invalid_grant", "200 inactive", "transport", ...
}

// load is what the workers share: read-only, but for the atomic cursors
// of the pools they use up.
type load struct {
	client   *http.Client
	fx       *fixture
	auth     string // the Authorization header
	weights  [numOps]int
	start    time.Time
	deadline time.Time

	nextRevoke atomic.Int64
	nextCode   atomic.Int64
}

// drive runs the timed phase of o against fx.
func drive(ctx context.Context, o options, fx *fixture) (*loadResult, error) {
	l := &load{client: newClient(o.concurrency, o.timeout), fx: fx, auth: basicAuth(fx.ClientID, fx.ClientSecret)}
	defer l.client.CloseIdleConnections()
	if o.op == "mixed" {
		l.weights = mixWeights
		if len(fx.Refresh) == 0 {
			l.weights[opRefresh] = 0
		}
		if len(fx.Codes) == 0 {
			l.weights[opCode] = 0
		}
	} else {
		l.weights[slices.Index(opNames[:], o.op)] = 1
	}
	if err := l.warmUp(ctx, o.concurrency); err != nil {
		return nil, err
	}
	workers := make([]*worker, o.concurrency)
	for i := range workers {
		workers[i] = l.newWorker(i)
	}
	var wg sync.WaitGroup
	l.start = time.Now()
	l.deadline = l.start.Add(o.duration)
	for _, w := range workers {
		wg.Go(func() { w.run(ctx) })
	}
	wg.Wait()
	elapsed := time.Since(l.start)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return merge(workers, elapsed), nil
}

// newClient is an HTTP client that keeps a connection per worker open.
func newClient(concurrency int, timeout time.Duration) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        2 * concurrency,
			MaxIdleConnsPerHost: 2 * concurrency,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
		// Bounds a request that hangs (-timeout); a worker's last
		// request may run this much past -d.
		Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// basicAuth is the client_secret_basic header: RFC 6749 §2.3.1 form-encodes
// the id and secret before joining them.
func basicAuth(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// warmUp opens the workers' connections with concurrent readiness
// checks, so that the timed phase does not measure TCP handshakes, and
// fails early when the server is not ready.
func (l *load) warmUp(ctx context.Context, n int) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.fx.URL+pathReady, nil)
			if err != nil {
				errs[i] = err
				return
			}
			res, err := l.client.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			var buf bytes.Buffer
			_, _ = buf.ReadFrom(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				errs[i] = fmt.Errorf("GET %s: %d %s", pathReady, res.StatusCode, buf.Bytes())
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("the server is not ready: %w", err)
	}
	return nil
}

// worker sends one request at a time and keeps its own results.
type worker struct {
	l       *load
	rng     *rand.Rand
	weights [numOps]int // l.weights, less the operations whose pool ran out
	total   int

	latencies    [numOps][]time.Duration
	errors       [numOps]map[string]int
	ranOut       [numOps]time.Duration
	transportErr string

	refresh    string // the head of this worker's refresh token chain
	introspect int    // the next access token to introspect
	body       bytes.Buffer
}

func (l *load) newWorker(id int) *worker {
	w := &worker{l: l, rng: rand.New(rand.NewPCG(uint64(id), 0x1a7c4)), weights: l.weights}
	for p := range numOps {
		w.total += w.weights[p]
		w.errors[p] = map[string]int{}
	}
	if n := len(l.fx.Refresh); n > 0 {
		w.refresh = l.fx.Refresh[id%n]
	}
	if n := len(l.fx.Introspect); n > 0 {
		w.introspect = id * 7919 % n // spread the workers over the pool
	}
	return w
}

// run sends requests until the deadline, ctx's end, or until every
// operation it may pick has run out of tokens.
func (w *worker) run(ctx context.Context) {
	for ctx.Err() == nil && time.Now().Before(w.l.deadline) && w.total > 0 {
		p := w.pick()
		req, err := w.request(ctx, p)
		if errors.Is(err, errRanOut) {
			w.ranOut[p] = time.Since(w.l.start)
			w.total -= w.weights[p]
			w.weights[p] = 0
			continue
		}
		if err != nil {
			w.fail(p, err)
			continue
		}
		w.send(ctx, p, req)
	}
}

// pick draws an operation by weight.
func (w *worker) pick() op {
	n := w.rng.IntN(w.total)
	for p := range numOps {
		if n < w.weights[p] {
			return p
		}
		n -= w.weights[p]
	}
	panic("bench: weights do not add up")
}

// request is the next request of p, or errRanOut.
func (w *worker) request(ctx context.Context, p op) (*http.Request, error) {
	fx := w.l.fx
	var path, body string
	switch p {
	case opCC:
		path, body = pathToken, "grant_type=client_credentials&scope=read"
	case opIntrospect:
		tok := fx.Introspect[w.introspect%len(fx.Introspect)]
		w.introspect++
		path, body = pathIntrospect, "token="+url.QueryEscape(tok)
	case opRevoke:
		i := w.l.nextRevoke.Add(1) - 1
		if i >= int64(len(fx.Revoke)) {
			return nil, errRanOut
		}
		path, body = pathRevoke, "token="+url.QueryEscape(fx.Revoke[i])+"&token_type_hint=access_token"
	case opRefresh:
		path, body = pathToken, "grant_type=refresh_token&refresh_token="+url.QueryEscape(w.refresh)
	case opCode:
		i := w.l.nextCode.Add(1) - 1
		if i >= int64(len(fx.Codes)) {
			return nil, errRanOut
		}
		c := fx.Codes[i]
		path, body = pathToken, "grant_type=authorization_code&code="+url.QueryEscape(c.Code)+
			"&redirect_uri="+url.QueryEscape(fx.RedirectURI)+"&code_verifier="+url.QueryEscape(c.Verifier)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, fx.URL+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header["Authorization"] = []string{w.l.auth}
	req.Header["Content-Type"] = []string{"application/x-www-form-urlencoded"}
	return req, nil
}

// send sends req, reads the whole answer and records it.
func (w *worker) send(ctx context.Context, p op, req *http.Request) {
	start := time.Now()
	res, err := w.l.client.Do(req)
	if err == nil {
		w.body.Reset()
		_, err = w.body.ReadFrom(res.Body)
		res.Body.Close()
	}
	latency := time.Since(start)
	if ctx.Err() != nil {
		return // interrupted: no result
	}
	w.latencies[p] = append(w.latencies[p], latency)
	if err != nil {
		w.fail(p, err)
		return
	}
	if problem := w.check(p, res.StatusCode, w.body.Bytes()); problem != "" {
		w.errors[p][problem]++
	}
}

// fail records a transport error.
func (w *worker) fail(p op, err error) {
	w.errors[p]["transport"]++
	if w.transportErr == "" {
		w.transportErr = err.Error()
	}
}

// check judges an answer: "" when it is what p expects, otherwise the
// label it is counted under.
func (w *worker) check(p op, status int, body []byte) string {
	if status != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return strconv.Itoa(status) + " " + e.Error
		}
		return strconv.Itoa(status)
	}
	// The load generator shares the machine with the server: the common
	// answers are checked by their bytes, not decoded.
	switch p {
	case opIntrospect:
		if !bytes.HasPrefix(body, []byte(`{"active":true,`)) {
			return "200 inactive"
		}
	case opCC, opCode:
		if !bytes.HasPrefix(body, []byte(`{"access_token":"`)) {
			return "200 without access_token"
		}
	case opRefresh:
		var r struct {
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
		}
		if json.Unmarshal(body, &r) != nil || r.AccessToken == "" {
			return "200 without access_token"
		}
		if r.RefreshToken == "" {
			return "200 without refresh_token"
		}
		w.refresh = r.RefreshToken
	}
	return ""
}

// merge puts the workers' results together.
func merge(workers []*worker, elapsed time.Duration) *loadResult {
	r := &loadResult{elapsed: elapsed}
	for p := range numOps {
		n := 0
		for _, w := range workers {
			n += len(w.latencies[p])
		}
		res := opResult{latencies: make([]time.Duration, 0, n), errors: map[string]int{}}
		for _, w := range workers {
			res.latencies = append(res.latencies, w.latencies[p]...)
			for k, v := range w.errors[p] {
				res.errors[k] += v
			}
			if t := w.ranOut[p]; t > 0 && (r.ranOut[p] == 0 || t < r.ranOut[p]) {
				r.ranOut[p] = t
			}
		}
		slices.Sort(res.latencies)
		r.ops[p] = res
	}
	for _, w := range workers {
		if w.transportErr != "" {
			r.transportErr = w.transportErr
			break
		}
	}
	return r
}
