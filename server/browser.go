package server

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/csrf"
	"github.com/ory/fosite"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/storage"
	"github.com/latchauth/latch/templates"
)

const sessionCookie = "latch_session"

// currentSession returns the login session of the browser, nil when there
// is none (no cookie, a forged or expired one, or a session that ended).
// Only a database failure is an error.
func (s *Server) currentSession(r *http.Request) (*storage.LoginSession, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, nil
	}
	var id string
	if err := s.cookies.Decode(sessionCookie, c.Value, &id); err != nil {
		return nil, nil
	}
	ls, err := s.store.GetLoginSession(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s.seeSession(r, ls)
	return ls, nil
}

// lastSeenStep is how stale a session's last use may be before it is
// written again: the account page shows it to the minute, and a write per
// request would cost every authorization a write.
const lastSeenStep = 5 * time.Minute

// seeSession records that ls is in use. The time is only shown to its
// owner, so a failure to record it is logged, not shown.
func (s *Server) seeSession(r *http.Request, ls *storage.LoginSession) {
	now := s.now()
	if now.Sub(ls.LastSeen) < lastSeenStep {
		return
	}
	if err := s.store.SeeLoginSession(r.Context(), ls.ID, now); err != nil {
		s.log.WarnContext(r.Context(), "record session use", "error", err)
		return
	}
	ls.LastSeen = now
}

// startSession signs username, who proved amr, in: a new random session
// ID, stored hashed, handed to the browser in a signed HttpOnly cookie.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, username string, amr []string, connector string) (*storage.LoginSession, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	now := s.now().UTC()
	ls := &storage.LoginSession{
		ID:        base64.RawURLEncoding.EncodeToString(raw),
		Username:  username,
		AuthTime:  now,
		ExpiresAt: now.Add(s.cfg.LoginSessionLifespan),
		AMR:       amr,
		UserAgent: r.UserAgent(),
		Address:   addrText(s.clientAddr(r)),
		LastSeen:  now,
		Connector: connector,
	}
	if err := s.store.CreateLoginSession(r.Context(), ls); err != nil {
		return nil, err
	}
	value, err := s.cookies.Encode(sessionCookie, ls.ID)
	if err != nil {
		return nil, err
	}
	http.SetCookie(w, s.cookie(value, ls.ExpiresAt))
	return ls, nil
}

// endSession signs the browser out: the stored session goes, and the cookie.
func (s *Server) endSession(w http.ResponseWriter, r *http.Request) error {
	if ls, err := s.currentSession(r); err != nil {
		return err
	} else if ls != nil {
		if err := s.store.DeleteLoginSession(r.Context(), ls.ID); err != nil {
			return err
		}
		s.logoutsQueued()
	}
	http.SetCookie(w, s.cookie("", time.Unix(0, 0)))
	return nil
}

func (s *Server) cookie(value string, expires time.Time) *http.Cookie {
	c := &http.Cookie{
		Name:     sessionCookie,
		Value:    value,
		Path:     "/",
		Expires:  expires,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
		// Secure only under https, so that a local http://127.0.0.1 works.
		Secure: s.secure,
	}
	if value == "" {
		c.MaxAge = -1
	}
	return c
}

// protectForms wraps the page handlers with gorilla/csrf: a token in a
// cookie and in every form; a POST without it is refused with 403 and a
// page (csrfFailed), never a redirect.
func (s *Server) protectForms(next http.Handler) http.Handler {
	protect := csrf.Protect(derive(s.cfg.SystemSecret, "latch csrf"),
		csrf.CookieName("latch_csrf"),
		csrf.FieldName("csrf_token"),
		csrf.Path("/"),
		csrf.HttpOnly(true),
		csrf.SameSite(csrf.SameSiteLaxMode),
		csrf.Secure(s.secure),
		csrf.ErrorHandler(http.HandlerFunc(s.csrfFailed)),
	)(next)
	if s.secure {
		return protect
	}
	// gorilla/csrf assumes TLS and would demand an https Referer; tell it
	// this server is plain http (the issuer is loopback, or insecure_http).
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		protect.ServeHTTP(w, csrf.PlaintextHTTPRequest(r))
	})
}

func (s *Server) csrfFailed(w http.ResponseWriter, r *http.Request) {
	s.log.DebugContext(r.Context(), "csrf check failed", "path", r.URL.Path, "reason", csrf.FailureReason(r))
	s.renderError(w, r, http.StatusForbidden, "This form has expired or did not come from this site.",
		"Go back to the application and start signing in again.")
}

// page is the part every page shares.
func (s *Server) page(r *http.Request, title string) templates.Page {
	return templates.Page{Title: title, Static: "/static", CSRFField: csrf.TemplateField(r), Issuer: s.cfg.Issuer}
}

// pageHeaders are the security headers of every HTML page: nothing may
// frame it, it loads only its own stylesheet, and its forms may post only
// here and to formTargets (where a completed login redirects: Chrome
// applies form-action to the redirects after a submission).
func pageHeaders(w http.ResponseWriter, formTargets ...string) {
	formAction := "'self'"
	for _, t := range formTargets {
		if u, err := url.Parse(t); err == nil && u.Scheme != "" {
			origin := u.Scheme + "://" + u.Host
			if u.Host == "" {
				origin = u.Scheme + ":"
			}
			formAction += " " + origin
		}
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; form-action "+formAction+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "text/html; charset=utf-8")
}

// render writes a page rendered into a buffer first, so a failed render
// becomes a plain error instead of half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, fn func(*bytes.Buffer) error, formTargets ...string) {
	var buf bytes.Buffer
	if err := fn(&buf); err != nil {
		s.log.ErrorContext(r.Context(), "render page", "path", r.URL.Path, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	pageHeaders(w, formTargets...)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderError shows the error page; it never redirects.
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, status int, message, hint string) {
	s.render(w, r, status, func(b *bytes.Buffer) error {
		return s.pages.Error(b, templates.ErrorData{Page: s.page(r, ""), Status: status, Message: message, Hint: hint, RequestID: requestID(r.Context())})
	})
}

// renderStorageError is the page for a database failure.
func (s *Server) renderStorageError(w http.ResponseWriter, r *http.Request, err error) {
	s.log.ErrorContext(r.Context(), "storage failure", "path", r.URL.Path, "error", err)
	s.renderError(w, r, http.StatusServiceUnavailable, "Latch cannot reach its database right now.", "Try again in a moment.")
}

// scopeList is the requested scopes in words, for the consent page.
func scopeList(scopes fosite.Arguments) []templates.Scope {
	out := make([]templates.Scope, 0, len(scopes))
	for _, name := range scopes {
		out = append(out, templates.Scope{Name: name, Description: templates.ScopeDescription(name)})
	}
	return out
}

// clientName is what a person is shown for a client.
func clientName(c fosite.Client) string {
	if cc, ok := c.(*clients.Client); ok && cc.Name != "" {
		return cc.Name
	}
	return c.GetID()
}

// hasPrompt reports whether the prompt parameter lists value.
func hasPrompt(form url.Values, value string) bool {
	for _, p := range strings.Fields(form.Get("prompt")) {
		if p == value {
			return true
		}
	}
	return false
}

// addrText is a as the account page shows it; "" when it is unknown.
func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
