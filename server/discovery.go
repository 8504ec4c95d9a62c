package server

import (
	"encoding/json"
	"net/http"
)

// handleDiscovery answers both discovery documents (OIDC Discovery 1.0 and
// RFC 8414) with the same metadata; only endpoints that exist are listed.
func (s *Server) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	// Every method but none authenticates a client at introspection.
	authMethods := []string{"client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"}
	assertionAlgs := append([]string{"RS256", "ES256"}, hmacAssertionAlgs...)
	alg := s.cfg.SigningAlgorithm
	if alg == "" {
		alg = "RS256"
	}
	scopes, optIn, err := s.supportedScopes(r.Context())
	if err != nil {
		s.writeOAuthError(r.Context(), w, r, err)
		return
	}
	doc := map[string]any{
		"issuer":                                s.cfg.Issuer,
		"authorization_endpoint":                s.url(pathAuthorize),
		"token_endpoint":                        s.url(pathToken),
		"introspection_endpoint":                s.url(pathIntrospect),
		"revocation_endpoint":                   s.url(pathRevoke),
		"userinfo_endpoint":                     s.url(pathUserinfo),
		"jwks_uri":                              s.url(pathJWKS),
		"end_session_endpoint":                  s.url(pathLogout),
		"pushed_authorization_request_endpoint": s.url(pathPAR),
		"device_authorization_endpoint":         s.url(pathDeviceAuth),
		"require_pushed_authorization_requests": false,
		"scopes_supported":                      scopes,
		"claims_supported": []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "c_hash",
			"name", "preferred_username", "email", "email_verified", "groups", "amr", "acr", "sid"},
		"acr_values_supported":                                     []string{acrPassword, acrMFA},
		"response_types_supported":                                 []string{"code"},
		"response_modes_supported":                                 []string{"query", "form_post"},
		"grant_types_supported":                                    []string{"authorization_code", "client_credentials", "refresh_token", "urn:ietf:params:oauth:grant-type:jwt-bearer", "urn:ietf:params:oauth:grant-type:device_code"},
		"subject_types_supported":                                  []string{"public"},
		"id_token_signing_alg_values_supported":                    []string{alg},
		"code_challenge_methods_supported":                         []string{"S256"},
		"dpop_signing_alg_values_supported":                        dpopAlgs,
		"token_endpoint_auth_methods_supported":                    authMethods,
		"token_endpoint_auth_signing_alg_values_supported":         assertionAlgs,
		"introspection_endpoint_auth_methods_supported":            authMethods[:4],
		"introspection_endpoint_auth_signing_alg_values_supported": assertionAlgs,
		"revocation_endpoint_auth_methods_supported":               authMethods,
		"revocation_endpoint_auth_signing_alg_values_supported":    assertionAlgs,
		"request_parameter_supported":                              true,
		"request_object_signing_alg_values_supported":              requestObjectAlgs,
		"request_uri_parameter_supported":                          false,
		"claims_parameter_supported":                               false,
		"authorization_response_iss_parameter_supported":           true,
		// OIDC Back-Channel Logout 1.0 §2.1: logout tokens go to every
		// client of an ended session that registered a URI, with sid.
		"backchannel_logout_supported":         true,
		"backchannel_logout_session_supported": true,
	}
	if s.cfg.RegistrationEnabled {
		doc["registration_endpoint"] = s.url(pathRegister)
	}
	// Sign-ins through a connector carry the acr of a federated sign-in;
	// which connectors there are is the login page's to show (idp hints
	// have no discovery metadata).
	if ups, err := s.upstreamList(r.Context()); err != nil {
		s.writeOAuthError(r.Context(), w, r, err)
		return
	} else if len(ups) > 0 {
		doc["acr_values_supported"] = []string{acrPassword, acrMFA, acrFederated}
	}
	doc["grant_types_supported"] = append(doc["grant_types_supported"].([]string), optIn...)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=60")
	_ = json.NewEncoder(w).Encode(doc)
}

// handleJWKS serves the public signing keys: the current one and those
// retired but still published.
func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	set, err := s.keys.PublicKeys(r.Context())
	if err != nil {
		s.writeOAuthError(r.Context(), w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	// Short: a rotation must reach relying parties soon.
	w.Header().Set("Cache-Control", "public, max-age=60")
	_ = json.NewEncoder(w).Encode(set)
}
