package server

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/gorilla/mux"
)

// Fault injection for the test fixtures (Config.Faults): latchtest.FailNext
// and, in dev mode, POST /dev/fail.

// Failure is an error the next N requests to Path answer (Faults.Add).
type Failure struct {
	// Path is a path of the server ("/oauth2/token") or a URL of it.
	Path string `json:"path"`
	N    int    `json:"n"`
	// Status is the HTTP status, 400 to 599.
	Status int `json:"status"`
	// Error is the OAuth error code, e.g. temporarily_unavailable.
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// Faults makes chosen requests fail, for the retry and error handling
// tests of client libraries (Config.Faults). Failures added for one path
// are used in order. The zero value is ready; it is safe for concurrent
// use.
type Faults struct {
	mu      sync.Mutex
	pending map[string][]Failure
}

// Add makes the next f.N requests to f.Path answer f's error as JSON.
func (fs *Faults) Add(f Failure) error {
	u, err := url.Parse(f.Path)
	switch {
	case err != nil || !strings.HasPrefix(u.Path, "/"):
		return fmt.Errorf("path %q is not a path of the server", f.Path)
	case strings.HasPrefix(u.Path, "/dev/"):
		return errors.New("the /dev/ helpers cannot be made to fail")
	case f.N < 1:
		return fmt.Errorf("n is %d; it must be at least 1", f.N)
	case f.Status < 400 || f.Status > 599:
		return fmt.Errorf("status %d is not an error status (400 to 599)", f.Status)
	case f.Error == "":
		return errors.New("error (the OAuth error code) is required")
	}
	f.Path = u.Path
	if f.Description == "" {
		f.Description = "Failure injected by the test fixture."
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.pending == nil {
		fs.pending = map[string][]Failure{}
	}
	fs.pending[f.Path] = append(fs.pending[f.Path], f)
	return nil
}

// take uses up one failure of path, if one is pending.
func (fs *Faults) take(path string) (Failure, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	queue := fs.pending[path]
	if len(queue) == 0 {
		return Failure{}, false
	}
	f := queue[0]
	if queue[0].N--; queue[0].N == 0 {
		queue = queue[1:]
	}
	if len(queue) == 0 {
		delete(fs.pending, path)
	} else {
		fs.pending[path] = queue
	}
	return f, true
}

// injectFaults answers a request with the failure queued for its path, if
// one is. It runs in front of the router, so it names the route itself:
// the access log and the metrics show the route the client called
// (/oauth2/token), not "unmatched", and a line says the failure was
// injected, so nobody hunts a real fault.
func (s *Server) injectFaults(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := s.cfg.Faults.take(r.URL.Path)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		route := "unmatched"
		var m mux.RouteMatch
		if s.router.Match(r, &m) && m.Route != nil {
			if tpl, err := m.Route.GetPathTemplate(); err == nil {
				route = tpl
			}
		}
		if info, ok := r.Context().Value(requestInfoKey{}).(*requestInfo); ok {
			info.mu.Lock()
			info.route = route
			info.mu.Unlock()
		}
		s.log.InfoContext(r.Context(), "injected failure", "route", route, "status", f.Status, "error", f.Error)
		if f.Status == http.StatusUnauthorized {
			challenge := `Basic realm="latch"`
			if strings.HasPrefix(strings.ToLower(r.Header.Get("Authorization")), "bearer ") {
				challenge = `Bearer realm="latch", error="` + f.Error + `"`
			}
			w.Header().Set("WWW-Authenticate", challenge)
		}
		w.Header().Set("Pragma", "no-cache")
		writeJSON(w, f.Status, map[string]string{"error": f.Error, "error_description": f.Description})
	})
}
