package server

import (
	"encoding/json"
	"net/http"
)

// handleDiscovery answers both discovery documents (OIDC Discovery 1.0 and
// RFC 8414) with the same metadata: only endpoints that exist are listed.
func (s *Server) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	authMethods := []string{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"}
	doc := map[string]any{
		"issuer":                                           s.cfg.Issuer,
		"token_endpoint":                                   s.url(pathToken),
		"introspection_endpoint":                           s.url(pathIntrospect),
		"revocation_endpoint":                              s.url(pathRevoke),
		"grant_types_supported":                            []string{"client_credentials", "refresh_token"},
		"response_types_supported":                         []string{},
		"token_endpoint_auth_methods_supported":            authMethods,
		"introspection_endpoint_auth_methods_supported":    append([]string{}, authMethods[:3]...),
		"revocation_endpoint_auth_methods_supported":       authMethods,
		"token_endpoint_auth_signing_alg_values_supported": []string{"RS256", "ES256"},
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=60")
	_ = json.NewEncoder(w).Encode(doc)
}
