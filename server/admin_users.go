package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/passhash"
	"github.com/latchauth/latch/storage"
	"github.com/latchauth/latch/users"
)

// adminUser is a built-in user as the admin API shows it: never the
// password or its hash.
type adminUser struct {
	Username      string         `json:"username"`
	Email         string         `json:"email"`
	EmailVerified bool           `json:"email_verified"`
	Name          string         `json:"name"`
	Groups        []string       `json:"groups"`
	Claims        map[string]any `json:"claims"`
	CreatedAt     time.Time      `json:"created_at"`
	UpdatedAt     time.Time      `json:"updated_at"`
	// SecondFactors are the kinds of second factor the user has ("totp",
	// "passkey");
	// accepted and ignored on input, like the times.
	SecondFactors []string `json:"second_factors"`
}

// adminUserIn is the body of POST and PUT /admin/users: the user, plus the
// clear password (required on POST, optional on PUT). created_at and
// updated_at are accepted, so a GET can be edited and sent back, and
// ignored.
type adminUserIn struct {
	adminUser
	Password *string `json:"password,omitempty"`
}

func userOut(u *storage.User, factors []string) adminUser {
	claims := u.Claims
	if claims == nil {
		claims = map[string]any{}
	}
	return adminUser{Username: u.Username, Email: u.Email, EmailVerified: u.EmailVerified, Name: u.Name,
		Groups: adminStrings(u.Groups), Claims: claims, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt,
		SecondFactors: adminStrings(factors)}
}

func userWhat(username string) string { return fmt.Sprintf("user %q", username) }

// check returns every problem of in. The username must be addressable as
// one path segment of /admin/users/{username}.
func (in *adminUserIn) check(create bool) error {
	var errs clients.ValidationError
	bad := func(field, reason string) { errs = append(errs, clients.FieldError{Field: field, Reason: reason}) }
	switch {
	case in.Username == "":
		bad("username", "must not be empty")
	case len(in.Username) > 255:
		bad("username", "must be at most 255 characters")
	case strings.ContainsAny(in.Username, "/"):
		bad("username", "must not contain /")
	case strings.IndexFunc(in.Username, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
		bad("username", "must not contain control characters")
	}
	switch {
	case in.Password == nil && create:
		bad("password", "is required")
	case in.Password != nil:
		if err := passhash.CheckPassword(*in.Password); err != nil {
			bad("password", err.Error())
		}
	}
	for i, g := range in.Groups {
		if g == "" {
			bad(fmt.Sprintf("groups[%d]", i), "must not be empty")
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// hashPassword hashes the password of in, if there is one.
func (s *Server) hashPassword(in *adminUserIn) (string, error) {
	if in.Password == nil {
		return "", nil
	}
	var hash string
	var err error
	s.boundHashing(func() { hash, err = passhash.Hash(*in.Password) })
	return hash, err
}

// handleAdminListUsers is GET /admin/users: a page of users by username.
func (s *Server) handleAdminListUsers(w http.ResponseWriter, r *http.Request) {
	p, ok := readAdminPage(w, r.URL.Query())
	if !ok {
		return
	}
	list, err := s.store.ListUsersPage(r.Context(), p.after, p.limit+1)
	if err != nil {
		s.writeAdminError(w, r, "user list", err)
		return
	}
	names := make([]string, len(list))
	for i, u := range list {
		names[i] = u.Username
	}
	factors, err := s.store.SecondFactors(r.Context(), names)
	if err != nil {
		s.writeAdminError(w, r, "user list", err)
		return
	}
	items := make([]adminUser, len(list))
	for i, u := range list {
		items[i] = userOut(u, factors[u.Username])
	}
	writeJSON(w, http.StatusOK, adminPageOf(items, p, func(u adminUser) string { return u.Username }))
}

// handleAdminCreateUser is POST /admin/users; an existing username is 409.
func (s *Server) handleAdminCreateUser(w http.ResponseWriter, r *http.Request) {
	var in adminUserIn
	if !readAdminBody(w, r, &in) {
		return
	}
	if err := in.check(true); err != nil {
		s.writeAdminError(w, r, userWhat(in.Username), err)
		return
	}
	if err := users.CheckNotClientID(r.Context(), s.store, in.Username); err != nil {
		if errors.Is(err, users.ErrNameIsClient) {
			err = clients.ValidationError{{Field: "username", Reason: users.ErrNameIsClient.Error()}}
		}
		s.writeAdminError(w, r, userWhat(in.Username), err)
		return
	}
	// Hashed before the transaction: argon2id takes tens of milliseconds,
	// during which SQLite's write lock would be held.
	hash, err := s.hashPassword(&in)
	if err != nil {
		s.writeAdminError(w, r, userWhat(in.Username), err)
		return
	}
	u := &storage.User{Username: in.Username, PasswordHash: hash, Email: in.Email, EmailVerified: in.EmailVerified,
		Name: in.Name, Groups: in.Groups, Claims: in.Claims}
	// Insert-only: of two racing creates of one name, one gets 409.
	if err := s.store.CreateUser(r.Context(), u); err != nil {
		s.writeAdminError(w, r, userWhat(in.Username), err)
		return
	}
	s.log.InfoContext(r.Context(), "admin API: user created", "username", u.Username)
	w.Header().Set("Location", s.url("/admin/users/"+url.PathEscape(u.Username)))
	writeJSON(w, http.StatusCreated, userOut(u, nil))
}

// handleAdminGetUser is GET /admin/users/{username}.
func (s *Server) handleAdminGetUser(w http.ResponseWriter, r *http.Request) {
	username := mux.Vars(r)["username"]
	u, err := s.store.GetUser(r.Context(), username)
	if err != nil {
		s.writeAdminError(w, r, userWhat(username), err)
		return
	}
	s.writeAdminUser(w, r, u)
}

// handleAdminUpdateUser is PUT /admin/users/{username}: the body replaces
// the profile; the password changes only when one is sent. An unknown
// user is 404, not created.
func (s *Server) handleAdminUpdateUser(w http.ResponseWriter, r *http.Request) {
	username := mux.Vars(r)["username"]
	var in adminUserIn
	if !readAdminBody(w, r, &in) {
		return
	}
	if in.Username != "" && in.Username != username {
		adminBadRequest(w, "The request is not valid: see fields.",
			clients.FieldError{Field: "username", Reason: fmt.Sprintf("must be %q, the user of the path, or left out", username)})
		return
	}
	in.Username = username
	if err := in.check(false); err != nil {
		s.writeAdminError(w, r, userWhat(username), err)
		return
	}
	hash, err := s.hashPassword(&in)
	if err != nil {
		s.writeAdminError(w, r, userWhat(username), err)
		return
	}
	u := &storage.User{Username: username, PasswordHash: hash, Email: in.Email, EmailVerified: in.EmailVerified,
		Name: in.Name, Groups: in.Groups, Claims: in.Claims}
	err = s.adminTx(r.Context(), func(ctx context.Context) error {
		old, err := s.store.GetUser(ctx, username)
		if err != nil {
			return err
		}
		if u.PasswordHash == "" {
			u.PasswordHash = old.PasswordHash
		}
		u.CreatedAt = old.CreatedAt
		return s.store.UpsertUser(ctx, u)
	})
	if err != nil {
		s.writeAdminError(w, r, userWhat(username), err)
		return
	}
	s.logoutsQueued()
	s.log.InfoContext(r.Context(), "admin API: user updated", "username", username, "password_changed", in.Password != nil)
	s.writeAdminUser(w, r, u)
}

// handleAdminDeleteUser is DELETE /admin/users/{username}: the user, their
// grants (every token inactive at once), login sessions and consents go.
func (s *Server) handleAdminDeleteUser(w http.ResponseWriter, r *http.Request) {
	username := mux.Vars(r)["username"]
	err := s.adminTx(r.Context(), func(ctx context.Context) error { return s.store.DeleteUser(ctx, username) })
	if err != nil {
		s.writeAdminError(w, r, userWhat(username), err)
		return
	}
	s.logoutsQueued()
	s.log.InfoContext(r.Context(), "admin API: user deleted", "username", username)
	writeAdminNoContent(w)
}

// writeAdminUser answers u with its second factors as stored, like the
// user list (a passkey shows even where this issuer cannot use it: the
// reset removes it).
func (s *Server) writeAdminUser(w http.ResponseWriter, r *http.Request, u *storage.User) {
	factors, err := s.store.SecondFactors(r.Context(), []string{u.Username})
	if err != nil {
		s.writeAdminError(w, r, userWhat(u.Username), err)
		return
	}
	writeJSON(w, http.StatusOK, userOut(u, factors[u.Username]))
}

// handleAdminResetMFA is DELETE /admin/users/{username}/mfa: the user's
// second factors (TOTP, recovery codes, passkeys) go (a lost phone), so the next sign-in
// asks for the password alone, or for a new enrolment where policy
// requires a factor. 404 when the user had none.
func (s *Server) handleAdminResetMFA(w http.ResponseWriter, r *http.Request) {
	username := mux.Vars(r)["username"]
	if err := s.store.DeleteSecondFactors(r.Context(), username); err != nil {
		s.writeAdminError(w, r, userWhat(username)+"'s second factors", err)
		return
	}
	s.log.InfoContext(r.Context(), "admin API: second factors reset", "username", username)
	writeAdminNoContent(w)
}
