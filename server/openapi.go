package server

import (
	_ "embed"
	"net/http"
)

// pathOpenAPI serves the OpenAPI 3.1 document of every endpoint.
const pathOpenAPI = "/openapi.yaml"

// openAPIDocument is openapi.yaml: the OpenAPI 3.1 document of every
// endpoint of routes.go, with the schema of each request and response.
// The server tests validate every response they receive against it.
//
//go:embed openapi.yaml
var openAPIDocument []byte

// handleOpenAPI is GET /openapi.yaml. The document is part of the binary,
// so it always describes the server that serves it.
func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/yaml; charset=utf-8")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(openAPIDocument)
}
