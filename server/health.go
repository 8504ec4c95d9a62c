package server

import (
	"context"
	"net/http"
	"time"
)

// handleAlive answers as long as the process serves HTTP.
func (s *Server) handleAlive(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// Drain marks the server as shutting down: /health/ready answers 503 from
// now on, so a load balancer stops sending new requests while the ones in
// flight finish.
func (s *Server) Drain() { s.draining.Store(true) }

// handleReady answers 200 only while the database answers and the server
// is not shutting down.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": "shutting down"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.WarnContext(ctx, "not ready", "error", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": "database unreachable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
