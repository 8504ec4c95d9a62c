// Package loadgen is the neutral OAuth load generator of the peer
// comparison kit, as a library: -op compare drives every server with it, so
// that Latch and its peers are measured by the very same client.
package loadgen

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MaxDuration is the hard cap on any measured phase (and on token pre-minting).
const MaxDuration = 60 * time.Second

// Config describes one load run.
type Config struct {
	TokenURL, IntrospectURL, RevokeURL string
	ClientID, ClientSecret             string
	Auth                               string // client auth at token/revoke: basic | post
	IntrospectAuth                     string // client auth at introspection: basic | post | none
	Scope                              string
	Op                                 string // cc | introspect | revoke | mixed
	Concurrency                        int
	Duration                           time.Duration
	MaxRequests                        int // 0 = unbounded (duration still applies)
	Pool                               int // tokens pre-minted for introspect
	MixIntrospect                      int // introspections per token in mixed
	Timeout                            time.Duration
	Insecure                           bool
	Label                              string
}

// Result is the machine-readable summary of a run (or of one op inside mixed).
type Result struct {
	Label       string             `json:"label,omitempty"`
	Op          string             `json:"op"`
	Concurrency int                `json:"c,omitempty"`
	Requests    int                `json:"requests"`
	Errors      int                `json:"errors"`
	Preminted   int                `json:"preminted,omitempty"` // tokens minted before the clock started (introspect, revoke)
	ErrorsBy    map[string]int     `json:"errors_by_status,omitempty"`
	ElapsedS    float64            `json:"elapsed_s"`
	RPS         float64            `json:"rps"`
	P50         float64            `json:"p50_ms"`
	P90         float64            `json:"p90_ms"`
	P99         float64            `json:"p99_ms"`
	Max         float64            `json:"max_ms"`
	ByOp        map[string]*Result `json:"by_op,omitempty"`
}

// opStats collects the samples of one op in one worker; merged after the run.
type opStats struct {
	lat  []time.Duration
	errs map[string]int
}

type recorder map[string]*opStats

func (r recorder) add(op string, d time.Duration, status string) {
	s := r[op]
	if s == nil {
		s = &opStats{errs: map[string]int{}}
		r[op] = s
	}
	s.lat = append(s.lat, d)
	if status != "" {
		s.errs[status]++
	}
}

type gen struct {
	cfg    Config
	client *http.Client
	issued atomic.Int64
}

func newGen(cfg Config) *gen {
	tr := &http.Transport{
		Proxy:               nil, // targets are local; never route through an env proxy
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        cfg.Concurrency,
		MaxIdleConnsPerHost: cfg.Concurrency,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: cfg.Insecure}, //nolint:gosec // opt-in flag
	}
	return &gen{cfg: cfg, client: &http.Client{Transport: tr, Timeout: cfg.Timeout}}
}

// take reserves one request from the -n budget.
func (g *gen) take() bool {
	return g.cfg.MaxRequests <= 0 || g.issued.Add(1) <= int64(g.cfg.MaxRequests)
}

// post sends a form POST with the requested client authentication and returns
// "" on success or an error class (HTTP status code or "transport").
func (g *gen) post(u string, form url.Values, auth string) (string, []byte) {
	switch auth {
	case "post":
		form.Set("client_id", g.cfg.ClientID)
		form.Set("client_secret", g.cfg.ClientSecret)
	}
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return "transport", nil
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if auth == "basic" { // RFC 6749 §2.3.1: form-encode id and secret before base64
		req.SetBasicAuth(url.QueryEscape(g.cfg.ClientID), url.QueryEscape(g.cfg.ClientSecret))
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return "transport", nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return "transport", nil
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return strconv.Itoa(resp.StatusCode), body
	}
	return "", body
}

func (g *gen) mint() (token, status string) {
	form := url.Values{"grant_type": {"client_credentials"}}
	if g.cfg.Scope != "" {
		form.Set("scope", g.cfg.Scope)
	}
	status, body := g.post(g.cfg.TokenURL, form, g.cfg.Auth)
	if status != "" {
		return "", status
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal(body, &tr) != nil || tr.AccessToken == "" {
		return "", "no_token"
	}
	return tr.AccessToken, ""
}

func (g *gen) introspect(tok string) string {
	form := url.Values{"token": {tok}, "token_type_hint": {"access_token"}}
	status, body := g.post(g.cfg.IntrospectURL, form, g.cfg.IntrospectAuth)
	if status != "" {
		return status
	}
	var ir struct {
		Active bool `json:"active"`
	}
	if json.Unmarshal(body, &ir) != nil || !ir.Active {
		return "inactive"
	}
	return ""
}

func (g *gen) revoke(tok string) string {
	form := url.Values{"token": {tok}, "token_type_hint": {"access_token"}}
	status, _ := g.post(g.cfg.RevokeURL, form, g.cfg.Auth)
	return status
}

// timed runs fn and records its latency and status under op.
func timed(rec recorder, op string, fn func() string) string {
	t0 := time.Now()
	st := fn()
	rec.add(op, time.Since(t0), st)
	return st
}

// premint mints up to k tokens with c workers, bounded by MaxDuration. Not measured.
func (g *gen) premint(k int) ([]string, map[string]int) {
	var (
		mu     sync.Mutex
		toks   = make([]string, 0, k)
		errs   = map[string]int{}
		next   atomic.Int64
		wg     sync.WaitGroup
		cutoff = time.Now().Add(MaxDuration)
	)
	for range g.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(k) && time.Now().Before(cutoff) {
				tok, st := g.mint()
				mu.Lock()
				if st == "" {
					toks = append(toks, tok)
				} else {
					errs[st]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return toks, errs
}

// Run executes the configured op and returns its summary.
func Run(cfg Config) (*Result, error) {
	if cfg.Duration <= 0 || cfg.Duration > MaxDuration {
		cfg.Duration = MaxDuration
	}
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 1
	}
	if cfg.IntrospectAuth == "" {
		cfg.IntrospectAuth = cfg.Auth
	}
	g := newGen(cfg)
	defer g.client.CloseIdleConnections()

	var pool []string
	needURL := func(name, u string) error {
		if u == "" {
			return fmt.Errorf("op %s needs -%s", cfg.Op, name)
		}
		return nil
	}
	switch cfg.Op {
	case "cc":
		if err := needURL("token-url", cfg.TokenURL); err != nil {
			return nil, err
		}
	case "introspect", "revoke":
		u, name := cfg.IntrospectURL, "introspect-url"
		if cfg.Op == "revoke" {
			u, name = cfg.RevokeURL, "revoke-url"
		}
		if err := errors.Join(needURL("token-url", cfg.TokenURL), needURL(name, u)); err != nil {
			return nil, err
		}
		k := cfg.Pool
		if cfg.Op == "revoke" {
			k = cfg.MaxRequests
			if k <= 0 {
				k = 1000
			}
		}
		var errs map[string]int
		pool, errs = g.premint(k)
		if len(pool) == 0 {
			return nil, fmt.Errorf("pre-mint produced no tokens (errors: %v)", errs)
		}
		if len(errs) > 0 {
			fmt.Fprintf(os.Stderr, "loadgen: pre-mint errors: %v (%d tokens minted)\n", errs, len(pool))
		}
	case "mixed":
		if err := errors.Join(needURL("token-url", cfg.TokenURL), needURL("introspect-url", cfg.IntrospectURL), needURL("revoke-url", cfg.RevokeURL)); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown op %q (want cc|introspect|revoke|mixed)", cfg.Op)
	}

	var (
		wg       sync.WaitGroup
		recs     = make([]recorder, cfg.Concurrency)
		cursor   atomic.Int64
		deadline = time.Now().Add(cfg.Duration)
		start    = time.Now()
	)
	more := func() bool { return time.Now().Before(deadline) && g.take() }
	for w := range cfg.Concurrency {
		recs[w] = recorder{}
		rec := recs[w]
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch cfg.Op {
			case "cc":
				for more() {
					timed(rec, "cc", func() string { _, st := g.mint(); return st })
				}
			case "introspect":
				for more() {
					tok := pool[int(cursor.Add(1)-1)%len(pool)]
					timed(rec, "introspect", func() string { return g.introspect(tok) })
				}
			case "revoke": // each pre-minted token is revoked exactly once
				for time.Now().Before(deadline) {
					i := int(cursor.Add(1) - 1)
					if i >= len(pool) {
						return
					}
					timed(rec, "revoke", func() string { return g.revoke(pool[i]) })
				}
			case "mixed": // token lifecycle: mint, introspect k times, revoke
				for more() {
					var tok string
					if timed(rec, "cc", func() string { var st string; tok, st = g.mint(); return st }) != "" {
						continue
					}
					for range cfg.MixIntrospect {
						if !more() {
							return
						}
						timed(rec, "introspect", func() string { return g.introspect(tok) })
					}
					if !more() {
						return
					}
					timed(rec, "revoke", func() string { return g.revoke(tok) })
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	merged := map[string]*opStats{}
	for _, r := range recs {
		for op, s := range r {
			m := merged[op]
			if m == nil {
				m = &opStats{errs: map[string]int{}}
				merged[op] = m
			}
			m.lat = append(m.lat, s.lat...)
			for k, v := range s.errs {
				m.errs[k] += v
			}
		}
	}
	all := &opStats{errs: map[string]int{}}
	for _, s := range merged {
		all.lat = append(all.lat, s.lat...)
		for k, v := range s.errs {
			all.errs[k] += v
		}
	}
	res := summarize(cfg.Op, all, elapsed)
	res.Label, res.Concurrency, res.Preminted = cfg.Label, cfg.Concurrency, len(pool)
	if cfg.Op == "mixed" {
		res.ByOp = map[string]*Result{}
		for op, s := range merged {
			res.ByOp[op] = summarize(op, s, elapsed)
		}
	}
	return res, nil
}

func summarize(op string, s *opStats, elapsed time.Duration) *Result {
	r := &Result{Op: op, Requests: len(s.lat), ElapsedS: round(elapsed.Seconds())}
	for _, v := range s.errs {
		r.Errors += v
	}
	if r.Errors > 0 {
		r.ErrorsBy = s.errs
	}
	if elapsed > 0 {
		r.RPS = round(float64(r.Requests) / elapsed.Seconds())
	}
	if n := len(s.lat); n > 0 {
		sort.Slice(s.lat, func(i, j int) bool { return s.lat[i] < s.lat[j] })
		pct := func(p float64) float64 { // nearest-rank
			i := int(p*float64(n)+0.9999999) - 1
			i = max(0, min(i, n-1))
			return ms(s.lat[i])
		}
		r.P50, r.P90, r.P99, r.Max = pct(0.50), pct(0.90), pct(0.99), ms(s.lat[n-1])
	}
	return r
}

func ms(d time.Duration) float64 { return round(float64(d) / float64(time.Millisecond)) }

func round(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }
