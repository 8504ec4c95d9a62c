package server

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/go-jose/go-jose/v3"

	"github.com/latchauth/latch/clients"
)

// handleAdminRevokeTokens is POST /admin/tokens/revoke: every grant of one
// client, or every grant and login session of one subject, ends at once,
// in one transaction.
func (s *Server) handleAdminRevokeTokens(w http.ResponseWriter, r *http.Request) {
	var in struct {
		ClientID string `json:"client_id"`
		Subject  string `json:"subject"`
	}
	if !readAdminBody(w, r, &in) {
		return
	}
	if (in.ClientID == "") == (in.Subject == "") {
		adminBadRequest(w, "Name exactly one of client_id and subject.",
			clients.FieldError{Field: "client_id", Reason: "set either client_id or subject"},
			clients.FieldError{Field: "subject", Reason: "set either client_id or subject"})
		return
	}
	ctx := r.Context()
	if in.Subject != "" {
		// A subject need not be a stored user (jwt-bearer grants), so
		// nothing is looked up. Its login sessions end too.
		grants, sessions, err := s.store.RevokeSubject(ctx, in.Subject)
		if err != nil {
			s.writeAdminError(w, r, fmt.Sprintf("subject %q", in.Subject), err)
			return
		}
		s.logoutsQueued()
		s.log.InfoContext(ctx, "admin API: tokens revoked", "subject", in.Subject, "grants", grants, "sessions", sessions)
		writeJSON(w, http.StatusOK, map[string]int64{"revoked_grants": grants, "ended_sessions": sessions})
		return
	}
	var n int64
	err := s.adminTx(ctx, func(ctx context.Context) error {
		var err error
		// An unknown client is most likely a typo: say so rather than
		// answer "0 revoked".
		if _, err = s.store.GetClient(ctx, in.ClientID); err != nil {
			return err
		}
		n, err = s.store.RevokeClientTokens(ctx, in.ClientID)
		return err
	})
	if err != nil {
		s.writeAdminError(w, r, fmt.Sprintf("client %q", in.ClientID), err)
		return
	}
	s.log.InfoContext(ctx, "admin API: tokens revoked", "client_id", in.ClientID, "grants", n)
	writeJSON(w, http.StatusOK, map[string]int64{"revoked_grants": n})
}

// adminConsent is a remembered consent as the admin API shows it.
type adminConsent struct {
	Subject   string    `json:"subject"`
	ClientID  string    `json:"client_id"`
	Scopes    []string  `json:"scopes"`
	CreatedAt time.Time `json:"created_at"`
}

// handleAdminListConsents is GET /admin/consents?subject=: the consents a
// user remembered, by client ID.
func (s *Server) handleAdminListConsents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	subject := q.Get("subject")
	if subject == "" {
		adminBadRequest(w, "The query parameter subject is required.", clients.FieldError{Field: "subject", Reason: "must not be empty"})
		return
	}
	p, ok := readAdminPage(w, q)
	if !ok {
		return
	}
	ctx := r.Context()
	// Consents go with their user, so an unknown user has none; say that
	// the user is unknown rather than list nothing.
	if _, err := s.store.GetUser(ctx, subject); err != nil {
		s.writeAdminError(w, r, fmt.Sprintf("user %q", subject), err)
		return
	}
	all, err := s.store.ListConsents(ctx, subject)
	if err != nil {
		s.writeAdminError(w, r, fmt.Sprintf("user %q", subject), err)
		return
	}
	items := make([]adminConsent, 0, len(all))
	for _, c := range all { // ordered by client ID
		if c.ClientID > p.after && len(items) <= p.limit {
			items = append(items, adminConsent{Subject: c.Username, ClientID: c.ClientID, Scopes: adminStrings(c.Scopes), CreatedAt: c.CreatedAt})
		}
	}
	writeJSON(w, http.StatusOK, adminPageOf(items, p, func(c adminConsent) string { return c.ClientID }))
}

// handleAdminDeleteConsent is DELETE /admin/consents?subject=&client_id=:
// the user is asked again next time. Tokens already issued stay valid
// (revoke them with /admin/tokens/revoke).
func (s *Server) handleAdminDeleteConsent(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	subject, clientID := q.Get("subject"), q.Get("client_id")
	var bad []clients.FieldError
	for name, v := range map[string]string{"subject": subject, "client_id": clientID} {
		if v == "" {
			bad = append(bad, clients.FieldError{Field: name, Reason: "must not be empty"})
		}
	}
	if len(bad) > 0 {
		adminBadRequest(w, "The query parameters subject and client_id are required.", bad...)
		return
	}
	if err := s.store.DeleteConsent(r.Context(), subject, clientID); err != nil {
		s.writeAdminError(w, r, fmt.Sprintf("consent of %q to %q", subject, clientID), err)
		return
	}
	writeAdminNoContent(w)
}

// handleAdminRotateKeys is POST /admin/keys/rotate: a new signing key
// signs from now on; the old ones stay published until every token they
// signed has expired.
func (s *Server) handleAdminRotateKeys(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	publishFor := max(s.cfg.IDTokenLifespan, s.cfg.AccessTokenLifespan) + 5*time.Second
	if err := s.keys.Rotate(ctx, publishFor); err != nil {
		s.writeAdminError(w, r, "signing key", err)
		return
	}
	current, err := s.keys.GetPrivateKey(ctx)
	if err != nil {
		s.writeAdminError(w, r, "signing key", err)
		return
	}
	kid := ""
	if jwk, ok := current.(*jose.JSONWebKey); ok {
		kid = jwk.KeyID
	}
	s.log.InfoContext(ctx, "admin API: signing key rotated", "kid", kid)
	writeJSON(w, http.StatusOK, map[string]string{"kid": kid})
}
