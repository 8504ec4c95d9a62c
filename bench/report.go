package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// The performance targets of the README's Performance section. They are
// reported, never enforced.
var throughputTargets = map[string]struct {
	rps float64
	p99 time.Duration
}{
	"cc":         {10_000, 10 * time.Millisecond},
	"introspect": {15_000, 10 * time.Millisecond},
	"revoke":     {8_000, 10 * time.Millisecond},
}

const (
	startTarget = 30 * time.Millisecond
	rssTarget   = 40_000_000 // bytes: 40 MB
)

// Report is what a run prints, as text or, with -json, as JSON.
type Report struct {
	Op string `json:"op"`
	// Server is "started" (by the benchmark) or the -url.
	Server      string  `json:"server"`
	Concurrency int     `json:"concurrency,omitempty"`
	Duration    string  `json:"duration,omitempty"` // as asked with -d
	Elapsed     float64 `json:"elapsed_seconds"`    // as measured
	Requests    int     `json:"requests"`
	RPS         float64 `json:"requests_per_second"`
	Latency     Latency `json:"latency_ms"`
	// Errors counts the answers that were not what the operation
	// expects, by label: "400 invalid_grant" (status and OAuth error),
	// "200 inactive" (an introspection), "transport" (no answer).
	Errors         map[string]int `json:"errors"`
	ErrorCount     int            `json:"error_count"`
	TransportError string         `json:"transport_error_example,omitempty"`
	// Ops breaks -op mixed down by operation.
	Ops          []OpReport `json:"ops,omitempty"`
	Preminted    *Preminted `json:"preminted,omitempty"`
	StoppedEarly []string   `json:"stopped_early,omitempty"`
	// PeakRSS is the server's VmHWM in bytes; -1 when unknown (-url).
	PeakRSS     int64       `json:"peak_rss_bytes"`
	PeakRSSNote string      `json:"peak_rss_note,omitempty"`
	Start       *StartStats `json:"start,omitempty"`
	Targets     []Target    `json:"targets"`
}

// Latency percentiles, in milliseconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// OpReport is one operation's share of -op mixed.
type OpReport struct {
	Op         string         `json:"op"`
	Requests   int            `json:"requests"`
	RPS        float64        `json:"requests_per_second"`
	Latency    Latency        `json:"latency_ms"`
	Errors     map[string]int `json:"errors"`
	ErrorCount int            `json:"error_count"`
}

// Preminted is what was prepared before the timed phase.
type Preminted struct {
	Introspect int     `json:"introspect"`
	Revoke     int     `json:"revoke"`
	Refresh    int     `json:"refresh"`
	Codes      int     `json:"codes"`
	Seconds    float64 `json:"seconds"`
}

// StartStats is -op start: from exec until GET /health/ready answered 200.
type StartStats struct {
	Runs   int     `json:"runs"`
	Min    float64 `json:"min_ms"`
	Median float64 `json:"median_ms"`
	Max    float64 `json:"max_ms"`
}

// Target is one of the performance targets and how this run did; Met is
// nil when the run cannot tell, Got empty when there is no target.
type Target struct {
	Want string `json:"want"`
	Got  string `json:"got,omitempty"`
	Met  *bool  `json:"met"`
}

// newLoadReport summarises a timed phase.
func newLoadReport(o options, fx *fixture, res *loadResult) *Report {
	r := &Report{
		Op: o.op, Server: "started", Concurrency: o.concurrency, Duration: o.duration.String(),
		Elapsed: res.elapsed.Seconds(), Errors: map[string]int{}, TransportError: res.transportErr, PeakRSS: -1,
		Preminted: &Preminted{Introspect: len(fx.Introspect), Revoke: len(fx.Revoke), Refresh: len(fx.Refresh), Codes: len(fx.Codes), Seconds: fx.MintSeconds},
	}
	if o.url != "" {
		r.Server = o.url
		r.PeakRSSNote = "n/a: the benchmark did not start the server"
	}
	var all []time.Duration
	for p := range numOps {
		or := res.ops[p]
		all = append(all, or.latencies...)
		maps.Copy(r.Errors, prefixed(o.op == "mixed", p, or.errors))
		if o.op == "mixed" && len(or.latencies) > 0 {
			r.Ops = append(r.Ops, OpReport{
				Op: p.String(), Requests: len(or.latencies), RPS: rate(len(or.latencies), res.elapsed),
				Latency: latencyOf(or.latencies), Errors: or.errors, ErrorCount: sum(or.errors),
			})
		}
		if t := res.ranOut[p]; t > 0 {
			pool := map[op]int{opRevoke: len(fx.Revoke), opCode: len(fx.Codes)}[p]
			then := "the run stopped there"
			if o.op == "mixed" {
				then = "the mix went on without " + p.String()
			}
			r.StoppedEarly = append(r.StoppedEarly, fmt.Sprintf("%s: the %d pre-minted tokens ran out after %.2f s; %s (raise -tokens)", p, pool, t.Seconds(), then))
		}
	}
	slices.Sort(all)
	r.Requests, r.RPS, r.Latency = len(all), rate(len(all), res.elapsed), latencyOf(all)
	r.ErrorCount = sum(r.Errors)
	return r
}

// prefixed names the errors of p after it in a mixed run.
func prefixed(mixed bool, p op, errs map[string]int) map[string]int {
	if !mixed {
		return errs
	}
	out := make(map[string]int, len(errs))
	for k, v := range errs {
		out[p.String()+": "+k] = v
	}
	return out
}

// setRSS records the child's VmHWM.
func (r *Report) setRSS(bytes int64) {
	r.PeakRSS = bytes
	if bytes < 0 {
		r.PeakRSSNote = "n/a: /proc/<pid>/status has no VmHWM"
	} else {
		r.PeakRSSNote = "VmHWM of the server process, from its start"
	}
}

// judge adds the performance targets of the operation.
func (r *Report) judge() {
	switch t, ok := throughputTargets[r.Op]; {
	case ok:
		met := r.RPS >= t.rps && r.Latency.P99 <= ms(t.p99)
		r.Targets = append(r.Targets, Target{
			Want: fmt.Sprintf("%s ≥ %.0f requests/s with p99 ≤ %s", r.Op, t.rps, t.p99),
			Got:  fmt.Sprintf("%.0f requests/s, p99 %.2f ms", r.RPS, r.Latency.P99),
			Met:  &met,
		})
	case r.Op == "start" && r.Start != nil:
		met := r.Start.Median <= ms(startTarget)
		r.Targets = append(r.Targets, Target{
			Want: fmt.Sprintf("start ≤ %s (median)", startTarget),
			Got:  fmt.Sprintf("median %.1f ms", r.Start.Median),
			Met:  &met,
		})
	default:
		r.Targets = append(r.Targets, Target{Want: "no throughput target for " + r.Op})
	}
	rss := Target{Want: "server peak RSS ≤ 40 MB", Got: "not measured: the benchmark did not start the server"}
	if r.PeakRSS >= 0 {
		met := r.PeakRSS <= rssTarget
		rss.Got, rss.Met = megabytes(r.PeakRSS), &met
	}
	r.Targets = append(r.Targets, rss)
}

func (r *Report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func (r *Report) writeText(w io.Writer) {
	line := func(label, format string, args ...any) {
		fmt.Fprintf(w, "%-13s%s\n", label, fmt.Sprintf(format, args...))
	}
	line("operation", "%s", r.Op)
	switch {
	case r.Start != nil:
		line("server", "latch serve --dev (in-memory SQLite), 127.0.0.1")
	case r.Server == "started":
		line("server", "started by the benchmark (a SQLite file, or the -postgres database), 127.0.0.1")
	default:
		line("server", "%s", r.Server)
	}
	if r.Start != nil {
		line("runs", "%d × `latch serve --dev`, from exec until GET /health/ready answers 200", r.Start.Runs)
		line("start", "min %.1f ms   median %.1f ms   max %.1f ms", r.Start.Min, r.Start.Median, r.Start.Max)
	} else {
		line("concurrency", "%d", r.Concurrency)
		line("duration", "%s (measured %.3f s)", r.Duration, r.Elapsed)
		line("requests", "%d", r.Requests)
		line("requests/s", "%.1f", r.RPS)
		line("latency", "%s", r.Latency)
		line("errors", "%s", errorSummary(r.ErrorCount, r.Errors))
		if r.TransportError != "" {
			line("", "first transport error: %s", r.TransportError)
		}
		for _, o := range r.Ops {
			line("  "+o.Op, "%d requests   %.1f/s   %s   errors: %s", o.Requests, o.RPS, o.Latency, errorSummary(o.ErrorCount, o.Errors))
		}
		for _, s := range r.StoppedEarly {
			line("stopped early", "%s", s)
		}
		if p := r.Preminted; p != nil && p.Introspect+p.Revoke+p.Refresh+p.Codes > 0 {
			line("pre-minted", "%s in %.1f s", pools{Introspect: p.Introspect, Revoke: p.Revoke, Refresh: p.Refresh, Codes: p.Codes}, p.Seconds)
		}
	}
	if r.PeakRSS >= 0 {
		line("peak RSS", "%s (%s)", megabytes(r.PeakRSS), r.PeakRSSNote)
	} else {
		line("peak RSS", "%s", r.PeakRSSNote)
	}
	for _, t := range r.Targets {
		switch {
		case t.Got == "":
			line("target", "%s", t.Want)
		case t.Met == nil:
			line("target", "%s: n/a (%s)", t.Want, t.Got)
		case *t.Met:
			line("target", "%s: met (%s)", t.Want, t.Got)
		default:
			line("target", "%s: NOT met (%s)", t.Want, t.Got)
		}
	}
}

func (l Latency) String() string {
	return fmt.Sprintf("p50 %.2f ms   p90 %.2f ms   p99 %.2f ms   max %.2f ms", l.P50, l.P90, l.P99, l.Max)
}

func errorSummary(n int, errs map[string]int) string {
	if n == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(errs)) {
		parts = append(parts, fmt.Sprintf("%s × %d", k, errs[k]))
	}
	return fmt.Sprintf("%d (%s)", n, strings.Join(parts, ", "))
}

// latencyOf is the percentiles of sorted latencies (nearest rank).
func latencyOf(sorted []time.Duration) Latency {
	if len(sorted) == 0 {
		return Latency{}
	}
	at := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(sorted)))) - 1
		return ms(sorted[max(i, 0)])
	}
	return Latency{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: ms(sorted[len(sorted)-1])}
}

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func megabytes(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }
