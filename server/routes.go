package server

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/latchauth/latch/templates"
)

const (
	pathAuthorize  = "/oauth2/auth"
	pathToken      = "/oauth2/token"
	pathIntrospect = "/oauth2/introspect"
	pathRevoke     = "/oauth2/revoke"
	pathPAR        = "/oauth2/par"
	pathUserinfo   = "/userinfo"
	pathJWKS       = "/.well-known/jwks.json"
)

// routes registers every route of Latch; reading it tells the whole HTTP
// surface.
func (s *Server) routes() *mux.Router {
	r := mux.NewRouter()
	r.Use(s.recoverPanics, s.nameRoute, s.capBodies)
	get, post, both := []string{http.MethodGet}, []string{http.MethodPost}, []string{http.MethodGet, http.MethodPost}

	r.HandleFunc("/.well-known/openid-configuration", s.handleDiscovery).Methods(get...)
	r.HandleFunc("/.well-known/oauth-authorization-server", s.handleDiscovery).Methods(get...)
	r.HandleFunc(pathJWKS, s.handleJWKS).Methods(get...)
	r.HandleFunc(pathOpenAPI, s.handleOpenAPI).Methods(get...)

	// In dev mode an unknown client id is created on first use (devclients.go).
	pageFail := func(w http.ResponseWriter, r *http.Request, err error) { s.writeAuthorizeError(w, r, nil, err) }
	jsonFail := func(w http.ResponseWriter, r *http.Request, err error) { s.writeOAuthError(r.Context(), w, r, err) }
	r.HandleFunc(pathAuthorize, s.devAutoClients(s.handleAuthorize, pageFail)).Methods(both...)
	r.HandleFunc(pathToken, s.devAutoClients(s.handleToken, jsonFail)).Methods(post...)
	r.HandleFunc(pathIntrospect, s.handleIntrospect).Methods(post...)
	r.HandleFunc(pathRevoke, s.handleRevoke).Methods(post...)
	r.HandleFunc(pathPAR, s.devAutoClients(s.handlePAR, jsonFail)).Methods(post...)
	r.HandleFunc(pathDeviceAuth, s.devAutoClients(s.handleDeviceAuthorization, jsonFail)).Methods(post...)
	r.Handle(pathDevice, s.protectForms(http.HandlerFunc(s.handleDevice))).Methods(both...)
	if s.cfg.RegistrationEnabled {
		r.HandleFunc(pathRegister, s.handleRegister).Methods(post...)
		r.HandleFunc(pathRegisterClient, s.handleRegistrationGet).Methods(get...)
		r.HandleFunc(pathRegisterClient, s.handleRegistrationPut).Methods(http.MethodPut)
		r.HandleFunc(pathRegisterClient, s.handleRegistrationDelete).Methods(http.MethodDelete)
	}
	r.HandleFunc(pathUserinfo, s.handleUserinfo).Methods(both...)

	// The pages a person fills in carry a CSRF token.
	r.Handle(pathLogin, s.protectForms(http.HandlerFunc(s.handleLogin))).Methods(both...)
	r.Handle(pathMFA, s.protectForms(http.HandlerFunc(s.handleMFA))).Methods(both...)
	// Upstream identity providers (upstream.go); after /login/mfa,
	// which is no connector's id (config refuses it).
	r.Handle(pathUpstreamPrefix+"{connector}", s.protectForms(http.HandlerFunc(s.handleUpstreamLogin))).Methods(both...)
	r.Handle(pathUpstreamPrefix+"{connector}/callback", s.protectForms(http.HandlerFunc(s.handleUpstreamCallback))).Methods(get...)
	r.Handle(pathConsent, s.protectForms(http.HandlerFunc(s.handleConsent))).Methods(both...)
	r.Handle(pathLogout, logoutCSRF(s.protectForms(http.HandlerFunc(s.handleLogout)))).Methods(both...)
	r.Handle(pathAccount, s.protectForms(http.HandlerFunc(s.handleAccount))).Methods(get...)
	r.Handle(pathAccountLogin, s.protectForms(http.HandlerFunc(s.handleAccountLogin))).Methods(post...)
	r.Handle(pathAccountPassword, s.protectForms(http.HandlerFunc(s.handleAccountPassword))).Methods(post...)
	r.Handle(pathAccountSessions, s.protectForms(http.HandlerFunc(s.handleAccountEndSession))).Methods(post...)
	r.Handle(pathAccountRevoke, s.protectForms(http.HandlerFunc(s.handleAccountRevoke))).Methods(post...)
	r.Handle(pathAccountTOTP, s.protectForms(http.HandlerFunc(s.handleAccountTOTP))).Methods(both...)
	r.Handle(pathAccountTOTPEdit, s.protectForms(http.HandlerFunc(s.handleAccountTOTPEdit))).Methods(post...)
	r.Handle(pathAccountPasskeyBegin, s.protectForms(s.needPasskeys(s.handleAccountPasskeyBegin))).Methods(post...)
	r.Handle(pathAccountPasskeyAdd, s.protectForms(s.needPasskeys(s.handleAccountPasskeyAdd))).Methods(post...)
	r.Handle(pathAccountPasskeyEdit, s.protectForms(http.HandlerFunc(s.handleAccountPasskeyEdit))).Methods(post...)
	r.Handle(pathPasskeyLoginBegin, s.protectForms(s.needPasskeys(s.handlePasskeyLoginBegin))).Methods(post...)
	r.Handle(pathMFAPasskeyBegin, s.protectForms(s.needPasskeys(s.handleMFAPasskeyBegin))).Methods(post...)
	r.PathPrefix("/static/").Handler(http.StripPrefix("/static/", http.FileServer(http.FS(templates.Static())))).Methods(get...)

	r.HandleFunc(pathMetrics, s.handleMetrics).Methods(get...)
	r.HandleFunc("/health/alive", s.handleAlive).Methods(get...)
	r.HandleFunc("/health/ready", s.handleReady).Methods(get...)
	if s.cfg.DevMode {
		// The test-fixture helpers (dev.go), for test suites in any
		// language. They mint tokens for whoever asks: `latch serve --dev`
		// only, never otherwise.
		r.HandleFunc("/dev/tokens", s.handleDevTokens).Methods(post...)
		r.HandleFunc("/dev/expire", s.handleDevExpire).Methods(post...)
		r.HandleFunc("/dev/fail", s.handleDevFail).Methods(post...)
	}
	if s.cfg.AdminToken != "" {
		// The admin API (admin*.go) exists only with admin.token, which
		// every one of its routes requires.
		admin, put, del := s.requireAdmin, []string{http.MethodPut}, []string{http.MethodDelete}
		r.Handle("/admin/clients", admin(s.handleAdminListClients)).Methods(get...)
		r.Handle("/admin/clients", admin(s.handleAdminCreateClient)).Methods(post...)
		r.Handle("/admin/clients/{id}", admin(s.handleAdminGetClient)).Methods(get...)
		r.Handle("/admin/clients/{id}", admin(s.handleAdminUpdateClient)).Methods(put...)
		r.Handle("/admin/clients/{id}", admin(s.handleAdminDeleteClient)).Methods(del...)
		r.Handle("/admin/clients/{id}/secret", admin(s.handleAdminRotateSecret)).Methods(post...)
		r.Handle("/admin/users", admin(s.handleAdminListUsers)).Methods(get...)
		r.Handle("/admin/users", admin(s.handleAdminCreateUser)).Methods(post...)
		r.Handle("/admin/users/{username}", admin(s.handleAdminGetUser)).Methods(get...)
		r.Handle("/admin/users/{username}", admin(s.handleAdminUpdateUser)).Methods(put...)
		r.Handle("/admin/users/{username}", admin(s.handleAdminDeleteUser)).Methods(del...)
		r.Handle("/admin/users/{username}/mfa", admin(s.handleAdminResetMFA)).Methods(del...)
		r.Handle("/admin/tokens/revoke", admin(s.handleAdminRevokeTokens)).Methods(post...)
		r.Handle("/admin/consents", admin(s.handleAdminListConsents)).Methods(get...)
		r.Handle("/admin/consents", admin(s.handleAdminDeleteConsent)).Methods(del...)
		r.Handle("/admin/sessions", admin(s.handleAdminListSessions)).Methods(get...)
		r.Handle("/admin/sessions", admin(s.handleAdminEndSessions)).Methods(del...)
		r.Handle("/admin/keys/rotate", admin(s.handleAdminRotateKeys)).Methods(post...)
		r.Handle("/admin/connectors", admin(s.handleAdminListConnectors)).Methods(get...)
		r.Handle("/admin/connectors", admin(s.handleAdminCreateConnector)).Methods(post...)
		r.Handle("/admin/connectors/{id}", admin(s.handleAdminGetConnector)).Methods(get...)
		r.Handle("/admin/connectors/{id}", admin(s.handleAdminDeleteConnector)).Methods(del...)
	}

	r.NotFoundHandler = http.HandlerFunc(s.handleNotFound)
	r.MethodNotAllowedHandler = http.HandlerFunc(s.handleMethodNotAllowed)
	return r
}
