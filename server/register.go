package server

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gorilla/mux"
	"github.com/ory/fosite"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/storage"
)

// RFC 7591 dynamic client registration and RFC 7592 client configuration.
// A registered client is an ordinary clients.Client, created and changed
// through clients.Manager like every other one. Of its registration access
// token only the SHA-256 is kept: a stolen database gives no token, and a
// response can only echo the token its request presented.
const (
	pathRegister       = "/oauth2/register"
	pathRegisterClient = pathRegister + "/{client_id}"
)

// handleRegister is POST /oauth2/register (RFC 7591 §3).
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	policy := policyOpen
	if want := s.cfg.RegistrationToken; want != "" {
		got, ok := registrationBearer(r)
		if !ok || !registrationEqual(got, want) {
			s.writeRegistrationError(w, r, errRegistrationToken)
			return
		}
		policy = policyInitialAccess
	}
	q, err := readRegistrationRequest(r)
	if err != nil {
		s.writeRegistrationError(w, r, err)
		return
	}
	c, err := s.policyClient(q, policy)
	if err != nil {
		s.writeRegistrationError(w, r, err)
		return
	}
	origin := s.clientKey(r)
	if err := s.registrationQuota(ctx, w, origin); err != nil {
		s.writeRegistrationError(w, r, err)
		return
	}
	if c.ID, err = newRegistrationSecret(16); err != nil {
		s.writeRegistrationError(w, r, err)
		return
	}
	token, err := newRegistrationSecret(32)
	if err != nil {
		s.writeRegistrationError(w, r, err)
		return
	}
	c.RegistrationTokenHash = registrationTokenHash(token)
	secret, err := s.registrationClients().Create(storage.WithOrigin(ctx, origin), c, "")
	if err != nil {
		s.writeRegistrationError(w, r, err)
		return
	}
	s.log.InfoContext(ctx, "client registered", "client_id", c.ID, "grant_types", c.GrantTypes)
	writeJSON(w, http.StatusCreated, s.registrationResponse(c, secret, token))
}

// handleRegistrationGet is RFC 7592 §2.1: the client's current metadata.
func (s *Server) handleRegistrationGet(w http.ResponseWriter, r *http.Request) {
	c, token, err := s.registeredClient(r)
	if err != nil {
		s.writeRegistrationError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.registrationResponse(c, "", token))
}

// handleRegistrationPut is RFC 7592 §2.2: the body replaces every field of
// the metadata, an omitted one taking its default. What only an
// administrator may set (audience, skip_consent, rate limit, token format)
// is kept, and so is the secret, which the client cannot choose.
func (s *Server) handleRegistrationPut(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	old, token, err := s.registeredClient(r)
	if err != nil {
		s.writeRegistrationError(w, r, err)
		return
	}
	q, err := readRegistrationRequest(r)
	if err != nil {
		s.writeRegistrationError(w, r, err)
		return
	}
	if q.ClientID != old.ID {
		s.writeRegistrationError(w, r, metadataError(clients.ValidationError{{Field: "client_id", Reason: "must be the client's own client_id"}}))
		return
	}
	// §2.2: a client_secret sent must be the current one.
	if q.ClientSecret != "" && s.cfg.Hasher.Compare(ctx, []byte(old.SecretHash), []byte(q.ClientSecret)) != nil {
		s.writeRegistrationError(w, r, metadataError(clients.ValidationError{{Field: "client_secret", Reason: "is not the client's current secret"}}))
		return
	}
	c, err := s.policyClient(q, old.RegistrationPolicy)
	if err != nil {
		s.writeRegistrationError(w, r, err)
		return
	}
	c.ID, c.RegistrationTokenHash, c.CreatedAt = old.ID, old.RegistrationTokenHash, old.CreatedAt
	c.Audience, c.AccessTokenFormat, c.RateLimit, c.SkipConsent = old.Audience, old.AccessTokenFormat, old.RateLimit, old.SkipConsent
	c.RequireMFA = old.RequireMFA
	c.SecretHash, c.JWTSecret = old.SecretHash, old.JWTSecret // Update drops them if c's method keeps no such thing now
	var secret string
	if clients.NeedsNewSecret(c) {
		// A client that turns confidential (or to client_secret_jwt, whose
		// secret the server must hold in clear) gets a new secret, shown
		// once as RFC 7592 §2.2 allows.
		if secret, err = clients.NewSecret(c); err != nil {
			s.writeRegistrationError(w, r, err)
			return
		}
	}
	if err := s.registrationClients().Update(ctx, c); err != nil {
		s.writeRegistrationError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.registrationResponse(c, secret, token))
}

// handleRegistrationDelete is RFC 7592 §2.3: the client and every token
// issued to it are gone.
func (s *Server) handleRegistrationDelete(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c, _, err := s.registeredClient(r)
	if err == nil {
		err = s.registrationClients().Delete(ctx, c.ID)
	}
	if err != nil {
		s.writeRegistrationError(w, r, err)
		return
	}
	s.log.InfoContext(ctx, "registered client deleted", "client_id", c.ID)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) registrationClients() *clients.Manager {
	return &clients.Manager{Store: s.store, Hasher: s.cfg.Hasher, Rules: s.clientRules()}
}

// registeredClient authenticates an RFC 7592 request: the bearer token must
// be the registration access token of the client in the path. An unknown
// client is refused like a wrong token (RFC 7592 §2.1), so the endpoint
// tells nothing about which clients exist.
func (s *Server) registeredClient(r *http.Request) (*clients.Client, string, error) {
	token, ok := registrationBearer(r)
	if !ok {
		return nil, "", errRegistrationToken
	}
	c, err := s.registrationClients().Get(r.Context(), mux.Vars(r)["client_id"])
	if errors.Is(err, fosite.ErrNotFound) {
		return nil, "", errRegistrationToken
	}
	if err != nil {
		return nil, "", err
	}
	if subtle.ConstantTimeCompare([]byte(registrationTokenHash(token)), []byte(c.RegistrationTokenHash)) != 1 {
		return nil, "", errRegistrationToken
	}
	return c, token, nil
}

// errRegistrationToken refuses a missing or wrong initial or registration
// access token (RFC 6750 §3.1).
var errRegistrationToken = &fosite.RFC6749Error{ErrorField: "invalid_token", CodeField: http.StatusUnauthorized,
	DescriptionField: "The access token is missing, invalid, or not valid for this client."}

// metadataError is RFC 7591 §3.2.2's answer to a client that fails
// validation: invalid_redirect_uri when a redirect URI is at fault,
// invalid_client_metadata otherwise, naming every problem.
func metadataError(v clients.ValidationError) *fosite.RFC6749Error {
	code, what := "invalid_client_metadata", "The value of one or more client metadata fields is invalid: "
	for _, fe := range v {
		if strings.HasPrefix(fe.Field, "redirect_uris") || strings.HasPrefix(fe.Field, "post_logout_redirect_uris") {
			code, what = "invalid_redirect_uri", "The value of one or more redirection URIs is invalid: "
		}
	}
	lines := make([]string, len(v))
	for i, fe := range v {
		lines[i] = fe.Error()
	}
	return &fosite.RFC6749Error{ErrorField: code, CodeField: http.StatusBadRequest, DescriptionField: what + strings.Join(lines, "; ") + "."}
}

// writeRegistrationError answers err as RFC 7591 §3.2.2 and RFC 6750 §3
// say. Validation errors become their metadata error; a failed database is
// 503, as everywhere.
func (s *Server) writeRegistrationError(w http.ResponseWriter, r *http.Request, err error) {
	ctx := r.Context()
	var v clients.ValidationError
	if errors.As(err, &v) {
		err = metadataError(v)
	}
	rfc := oauthError(err)
	if rfc.CodeField == http.StatusUnauthorized {
		challenge := `Bearer realm="latch"`
		if r.Header.Get("Authorization") != "" {
			challenge += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
	}
	if rfc.CodeField >= 500 {
		s.log.ErrorContext(ctx, "registration failed", "path", r.URL.Path, "error", rfc.ErrorField, "debug", rfc.GetDescription()+" "+rfc.DebugField)
	} else {
		s.log.DebugContext(ctx, "registration refused", "path", r.URL.Path, "error", rfc.ErrorField, "description", rfc.GetDescription())
	}
	s.oauth.WriteAccessError(ctx, w, nil, rfc)
}

// registrationBearer returns the token of an "Authorization: Bearer"
// header (the scheme is case-insensitive, RFC 7235 §2.1).
func registrationBearer(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	return token, ok && strings.EqualFold(scheme, "Bearer") && token != ""
}

// registrationEqual compares two secrets in constant time, their lengths
// included.
func registrationEqual(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// registrationTokenHash is what is stored of a registration access token.
func registrationTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// newRegistrationSecret returns n random bytes in hex: URL-safe, and never
// starting with '-', so a client id is also safe on a command line.
func newRegistrationSecret(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("server: random: %w", err)
	}
	return hex.EncodeToString(b), nil
}
