package server

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const pathMetrics = "/metrics"

// metrics are the Prometheus metrics of one Server, in a registry of its
// own: two servers in one process (parallel tests) never share a series.
type metrics struct {
	registry    *prometheus.Registry
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	issued      *prometheus.CounterVec
	revoked     prometheus.Counter
	introspects *prometheus.CounterVec
	loginFails  prometheus.Counter

	// logoutDeliveries counts back-channel logout attempts by outcome
	// (logoutOutcomes).
	logoutDeliveries *prometheus.CounterVec

	janitorDeleted     *prometheus.CounterVec
	janitorRuns        *prometheus.CounterVec
	janitorLastSuccess prometheus.Gauge
}

// pendingDeviceCodes is the store method behind the device codes gauge.
type pendingDeviceCodes interface {
	CountPendingDeviceCodes(ctx context.Context, now time.Time) (int64, error)
}

// sqlDBer is a store that shares its connection pool, for the pool
// statistics. The storage package's GormStore does not expose one today,
// so pool statistics appear only for a store that does.
type sqlDBer interface {
	SQLDB() *sql.DB
}

func newMetrics(reg *prometheus.Registry, store any) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(
			collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		)
	}
	m := &metrics{
		registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_http_requests_total",
			Help: "HTTP requests answered, by route template, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "latch_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route template and method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method"}),
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_tokens_issued_total",
			Help: "Successful token endpoint answers, by grant type.",
		}, []string{"grant_type"}),
		revoked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "latch_tokens_revoked_total",
			Help: "Revocation requests answered 200.",
		}),
		introspects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_introspections_total",
			Help: "Introspection answers, by whether the token was active.",
		}, []string{"active"}),
		loginFails: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "latch_login_failures_total",
			Help: "Failed sign-ins: wrong username or password, or rate-limited.",
		}),
	}
	m.janitorDeleted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "latch_janitor_deleted_rows_total",
		Help: "Expired rows the janitor deleted, by table.",
	}, []string{"table"})
	m.janitorRuns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "latch_janitor_runs_total",
		Help: "Janitor passes, by result (ok or error).",
	}, []string{"result"})
	m.janitorLastSuccess = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "latch_janitor_last_success_timestamp_seconds",
		Help: "When the last janitor pass finished without error (Unix time; 0: never).",
	})
	m.logoutDeliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "latch_backchannel_logout_deliveries_total",
		Help: "Back-channel logout token deliveries, by outcome: delivered, retry (an attempt failed; another follows), failed (the client refused it), dropped (given up, or never sent).",
	}, []string{"outcome"})
	for _, o := range logoutOutcomes {
		m.logoutDeliveries.WithLabelValues(o) // every series from the start, at 0
	}
	reg.MustRegister(m.requests, m.latency, m.issued, m.revoked, m.introspects, m.loginFails,
		m.logoutDeliveries, m.janitorDeleted, m.janitorRuns, m.janitorLastSuccess)
	if dc, ok := store.(pendingDeviceCodes); ok {
		// Read from the database at each scrape, so every instance on a
		// shared database reports the same, true number.
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "latch_device_codes_pending",
			Help: "Device authorizations (RFC 8628) waiting for a person's decision, not expired. NaN when the database does not answer.",
		}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			n, err := dc.CountPendingDeviceCodes(ctx, time.Now())
			if err != nil {
				return math.NaN()
			}
			return float64(n)
		}))
	}
	if db, ok := store.(sqlDBer); ok && db.SQLDB() != nil {
		reg.MustRegister(collectors.NewDBStatsCollector(db.SQLDB(), "latch"))
	}
	return m
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{Registry: s.metrics.registry}).ServeHTTP(w, r)
}

// requestInfo is what the inner (per-route) middleware learns for the
// outer one: the route template, and the request the handler saw (whose
// parsed form gives the client id of the log line).
type requestInfo struct {
	mu    sync.Mutex
	route string
	req   *http.Request
}

type requestInfoKey struct{}

type requestIDKey struct{}

// requestID is the id of the request ctx belongs to, or "".
func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// saneRequestID reports whether a client-sent X-Request-Id may be kept:
// 1 to 128 characters of [A-Za-z0-9._-].
func saneRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// nameRoute runs inside the router, after matching: it records the route
// template for observe.
func (s *Server) nameRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if info, ok := r.Context().Value(requestInfoKey{}).(*requestInfo); ok {
			route := "unmatched"
			if cur := mux.CurrentRoute(r); cur != nil {
				if tpl, err := cur.GetPathTemplate(); err == nil {
					route = tpl
				}
			}
			info.mu.Lock()
			info.route, info.req = route, r
			info.mu.Unlock()
		}
		next.ServeHTTP(w, r)
	})
}

// observe wraps the whole server: it keeps or makes the request id, and
// after the answer logs one line and counts the request, every label from
// a closed set (route template or "unmatched", methodLabel, status). It
// reads only the route, method, status and client id: never the query, a
// token, a code, a secret, a password or the answer's body. What a request
// achieved (a token issued, revoked or introspected, a failed sign-in) is
// counted by its handler, where it happens.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !saneRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		info := &requestInfo{route: "unmatched"}
		ctx := context.WithValue(context.WithValue(r.Context(), requestIDKey{}, id), requestInfoKey{}, info)
		r = r.WithContext(ctx)
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		elapsed := time.Since(start)

		info.mu.Lock()
		route, inner := info.route, info.req
		info.mu.Unlock()
		if inner == nil {
			inner = r
		}
		method := methodLabel(r.Method)
		s.metrics.requests.WithLabelValues(route, method, statusLabel(rec.status)).Inc()
		s.metrics.latency.WithLabelValues(route, method).Observe(elapsed.Seconds())

		// Below info (log.level warn) the line costs nothing: not even the
		// client id is looked up. Attrs, not key-value pairs, so that
		// nothing is boxed; request_id comes from ctx (logctx.go), as on
		// every line.
		if !s.log.Enabled(ctx, slog.LevelInfo) {
			return
		}
		attrs := [5]slog.Attr{slog.String("route", route), slog.String("method", method),
			slog.Int("status", rec.status), slog.Duration("duration", elapsed.Round(time.Microsecond))}
		n := 4
		if clientID := requestClientID(inner); clientID != "" {
			attrs[n] = slog.String("client_id", clientID)
			n++
		}
		s.log.LogAttrs(ctx, slog.LevelInfo, "http", attrs[:n]...)
	})
}

// statusLabel is the status code as a label without an allocation for the
// codes Latch answers; the set is closed either way (three digits).
func statusLabel(code int) string {
	switch code {
	case http.StatusOK:
		return "200"
	case http.StatusFound:
		return "302"
	case http.StatusSeeOther:
		return "303"
	case http.StatusBadRequest:
		return "400"
	case http.StatusUnauthorized:
		return "401"
	}
	return strconv.Itoa(code)
}

// methodLabel is the method as a label from a closed set: the methods of
// RFC 9110 §9 and PATCH as they are, anything else "other". A client
// chooses the method freely (any token is one), and each new label value
// would be a new series kept for the life of the process.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return method
	}
	return "other"
}

// countIssued counts a successful token endpoint answer by its grant type,
// where the token is written. The label set stays closed without asking
// the handlers again: handleToken answers only a grant_type that
// grantSupported accepted, a value some handler of this server takes;
// the whitespace check keeps out a list fosite split into a known grant.
func (s *Server) countIssued(grantType string) {
	if len(grantType) > 128 || strings.ContainsAny(grantType, " \t\r\n") {
		grantType = "unknown"
	}
	s.metrics.issued.WithLabelValues(grantType).Inc()
}

// countIntrospection counts an introspection answer by whether the token
// was active, where the answer is made.
func (s *Server) countIntrospection(active bool) {
	s.metrics.introspects.WithLabelValues(strconv.FormatBool(active)).Inc()
}

// requestClientID is the client id a request names: the Basic auth
// username or the form's client_id (never the secret). The form is read
// only if the handler parsed it.
func requestClientID(r *http.Request) string {
	id := ""
	if user, _, ok := r.BasicAuth(); ok {
		if u, err := url.QueryUnescape(user); err == nil {
			id = u
		} else {
			id = user
		}
	} else if r.PostForm != nil {
		id = r.PostForm.Get("client_id")
	}
	if len(id) > 256 {
		id = id[:256]
	}
	return id
}
