package server

import (
	"net/http"
	"time"

	"github.com/latchauth/latch/clients"
)

// adminSession is a login session as the admin API shows it. id is the
// stored digest of the browser's session ID: it tells sessions apart and
// cannot be used as a cookie.
type adminSession struct {
	ID        string    `json:"id"`
	Subject   string    `json:"subject"`
	AuthTime  time.Time `json:"auth_time"`
	ExpiresAt time.Time `json:"expires_at"`
}

// sessionSubject reads the required query parameter subject and checks
// that the user exists (sessions go with their user, so an unknown one is
// most likely a typo: 404 rather than "none"). On failure it has answered.
func (s *Server) sessionSubject(w http.ResponseWriter, r *http.Request) (string, bool) {
	subject := r.URL.Query().Get("subject")
	if subject == "" {
		adminBadRequest(w, "The query parameter subject is required.", clients.FieldError{Field: "subject", Reason: "must not be empty"})
		return "", false
	}
	if _, err := s.store.GetUser(r.Context(), subject); err != nil {
		s.writeAdminError(w, r, userWhat(subject), err)
		return "", false
	}
	return subject, true
}

// handleAdminListSessions is GET /admin/sessions?subject=: the user's
// unexpired login sessions, oldest sign-in first. A user has few, so
// there is one page.
func (s *Server) handleAdminListSessions(w http.ResponseWriter, r *http.Request) {
	subject, ok := s.sessionSubject(w, r)
	if !ok {
		return
	}
	list, err := s.store.ListLoginSessions(r.Context(), subject)
	if err != nil {
		s.writeAdminError(w, r, userWhat(subject), err)
		return
	}
	items := make([]adminSession, len(list))
	for i, ls := range list {
		items[i] = adminSession{ID: ls.Handle, Subject: ls.Username, AuthTime: ls.AuthTime, ExpiresAt: ls.ExpiresAt}
	}
	writeJSON(w, http.StatusOK, adminListAnswer[adminSession]{Items: items})
}

// handleAdminEndSessions is DELETE /admin/sessions?subject=: the user is
// signed out of every browser at the next request there. Tokens already
// issued stay valid (POST /admin/tokens/revoke ends both).
func (s *Server) handleAdminEndSessions(w http.ResponseWriter, r *http.Request) {
	subject, ok := s.sessionSubject(w, r)
	if !ok {
		return
	}
	n, err := s.store.EndLoginSessions(r.Context(), subject)
	if err != nil {
		s.writeAdminError(w, r, userWhat(subject), err)
		return
	}
	s.logoutsQueued()
	s.log.InfoContext(r.Context(), "admin API: login sessions ended", "subject", subject, "sessions", n)
	writeJSON(w, http.StatusOK, map[string]int64{"ended_sessions": n})
}
