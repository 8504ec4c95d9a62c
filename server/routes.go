package server

import (
	"net/http"

	"github.com/gorilla/mux"
)

const (
	pathToken      = "/oauth2/token"
	pathIntrospect = "/oauth2/introspect"
	pathRevoke     = "/oauth2/revoke"
)

// routes registers every route of Latch; reading it tells the whole HTTP
// surface.
func (s *Server) routes() *mux.Router {
	r := mux.NewRouter()
	r.Use(s.recoverPanics, s.logRequests, s.capBodies)

	r.HandleFunc("/.well-known/openid-configuration", s.handleDiscovery).Methods(http.MethodGet)
	r.HandleFunc("/.well-known/oauth-authorization-server", s.handleDiscovery).Methods(http.MethodGet)

	r.HandleFunc(pathToken, s.handleToken).Methods(http.MethodPost)
	r.HandleFunc(pathIntrospect, s.handleIntrospect).Methods(http.MethodPost)
	r.HandleFunc(pathRevoke, s.handleRevoke).Methods(http.MethodPost)

	r.HandleFunc("/health/alive", s.handleAlive).Methods(http.MethodGet)
	r.HandleFunc("/health/ready", s.handleReady).Methods(http.MethodGet)

	r.NotFoundHandler = http.HandlerFunc(s.handleNotFound)
	r.MethodNotAllowedHandler = http.HandlerFunc(s.handleMethodNotAllowed)
	return r
}
