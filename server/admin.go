package server

// The admin API (SPEC "HTTP endpoints", and users, consents, secret and
// key rotation beyond it): JSON over HTTP for a
// team's own tooling, behind the bearer token admin.token. This file holds
// what every admin endpoint shares (authentication, body decoding,
// pagination, errors). Clients are in admin_clients.go, users in
// admin_users.go, bulk revocation, consents and key rotation in
// admin_grants.go. Every answer is JSON with Cache-Control: no-store
// (writeJSON), and every failure a JSON error object.

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/storage"
)

// adminRealm names the admin API in its WWW-Authenticate challenges.
const adminRealm = `Bearer realm="latch-admin"`

// requireAdmin lets a request through only with the admin bearer token.
// The token is compared as SHA-256 digests in constant time, so neither
// its bytes nor its length leak through timing.
func (s *Server) requireAdmin(next http.HandlerFunc) http.Handler {
	want := sha256.Sum256([]byte(s.cfg.AdminToken))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		token = strings.TrimSpace(token)
		if !strings.EqualFold(scheme, "Bearer") || token == "" {
			w.Header().Set("WWW-Authenticate", adminRealm)
			writeJSON(w, http.StatusUnauthorized, adminError{Error: "unauthorized",
				Description: "The admin API needs the header Authorization: Bearer <admin.token>."})
			return
		}
		got := sha256.Sum256([]byte(token))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			s.log.WarnContext(r.Context(), "admin API: wrong token", "path", r.URL.Path, "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", adminRealm+`, error="invalid_token"`)
			writeJSON(w, http.StatusUnauthorized, adminError{Error: "invalid_token", Description: "The admin token is wrong."})
			return
		}
		next(w, r)
	})
}

// adminError is the JSON error of the admin API: RFC 6749's two members,
// plus the fields a validation error names.
type adminError struct {
	Error       string               `json:"error"`
	Description string               `json:"error_description,omitempty"`
	Fields      []clients.FieldError `json:"fields,omitempty"`
}

// adminBadRequest answers 400 invalid_request naming the fields at fault.
func adminBadRequest(w http.ResponseWriter, description string, fields ...clients.FieldError) {
	writeJSON(w, http.StatusBadRequest, adminError{Error: "invalid_request", Description: description, Fields: fields})
}

// writeAdminError answers err of an operation on what (`client "app"`):
// validation 400, conflict 409, unknown 404, database down 503, and 500
// for anything else, which is a bug and logged.
func (s *Server) writeAdminError(w http.ResponseWriter, r *http.Request, what string, err error) {
	var invalid clients.ValidationError
	switch {
	case errors.As(err, &invalid):
		adminBadRequest(w, "The request is not valid: see fields.", adminFields(invalid)...)
	case errors.Is(err, storage.ErrUnavailable):
		s.log.ErrorContext(r.Context(), "admin API: database unavailable", "path", r.URL.Path, "error", err)
		writeJSON(w, http.StatusServiceUnavailable, adminError{Error: "temporarily_unavailable",
			Description: "The database is unavailable; nothing was changed. Try again."})
	case errors.Is(err, storage.ErrAlreadyExists):
		writeJSON(w, http.StatusConflict, adminError{Error: "conflict", Description: adminUpperFirst(what) + " already exists."})
	case errors.Is(err, storage.ErrNotFound):
		writeJSON(w, http.StatusNotFound, adminError{Error: "not_found", Description: adminUpperFirst(what) + " does not exist."})
	default:
		s.log.ErrorContext(r.Context(), "admin API: request failed", "path", r.URL.Path, "error", err)
		writeJSON(w, http.StatusInternalServerError, adminError{Error: "server_error"})
	}
}

// adminFields renames the fields of clients.Validate to the JSON members the
// caller sent.
func adminFields(v clients.ValidationError) []clients.FieldError {
	out := make([]clients.FieldError, len(v))
	for i, f := range v {
		switch f.Field {
		case "id":
			f.Field = "client_id"
		case "secret":
			f.Field = "client_secret"
		}
		out[i] = f
	}
	return out
}

func adminUpperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

var errAdminTrailingJSON = errors.New("more than one JSON value")

// readAdminBody reads the JSON object of r into v. Unknown members are an
// error, as in config.yaml: a misspelt field must not be silently ignored.
// On failure it has answered 400 and returns false.
func readAdminBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.Decode(&json.RawMessage{}) != io.EOF {
		err = errAdminTrailingJSON
	}
	if err == nil {
		return true
	}
	var (
		syntax   *json.SyntaxError
		typ      *json.UnmarshalTypeError
		tooLarge *http.MaxBytesError
	)
	switch {
	case errors.Is(err, io.EOF):
		adminBadRequest(w, "The request body is empty: send a JSON object.")
	case errors.As(err, &tooLarge):
		adminBadRequest(w, fmt.Sprintf("The request body is larger than %d bytes.", tooLarge.Limit))
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		adminBadRequest(w, "The request body is not valid JSON.")
	case errors.As(err, &typ) && typ.Field == "":
		adminBadRequest(w, "The request body must be a JSON object.")
	case errors.As(err, &typ):
		adminBadRequest(w, "The request body has a member of the wrong type.",
			clients.FieldError{Field: adminJSONPath(v, typ.Field), Reason: "must be " + adminJSONKind(typ.Type)})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		adminBadRequest(w, "The request body has an unknown member.", clients.FieldError{Field: name, Reason: "is not a known field"})
	case errors.Is(err, errAdminTrailingJSON):
		adminBadRequest(w, "The request body must hold exactly one JSON object.")
	default:
		// A member's own decoder failed (a malformed JSON Web Key).
		adminBadRequest(w, "The request body is not valid: "+err.Error())
	}
	return false
}

// adminJSONPath is the member path of a decoding error into v without the Go
// names of structs embedded in v ("Client.redirect_uris" is
// "redirect_uris").
func adminJSONPath(v any, field string) string {
	embedded := map[string]bool{}
	var collect func(t reflect.Type)
	collect = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return
		}
		for i := range t.NumField() {
			if f := t.Field(i); f.Anonymous {
				embedded[f.Name] = true
				collect(f.Type)
			}
		}
	}
	collect(reflect.TypeOf(v))
	parts := strings.Split(field, ".")
	for len(parts) > 1 && embedded[parts[0]] {
		parts = parts[1:]
	}
	return strings.Join(parts, ".")
}

// adminJSONKind names the JSON type a Go type is decoded from.
func adminJSONKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	}
	return "of another type"
}

// Pagination: keyset, by the list's key (client ID, username). The page
// token is the last key of the page, base64url: opaque to callers, and
// stable while items come and go.
const (
	defaultPageLimit = 50
	maxPageLimit     = 500
)

// adminPage is the part of a list a request asks for.
type adminPage struct {
	after string // key after which the page starts
	limit int
}

// adminListAnswer is the JSON of every admin list.
type adminListAnswer[T any] struct {
	Items         []T    `json:"items"`
	NextPageToken string `json:"next_page_token,omitempty"`
}

// readAdminPage parses limit and page_token; on failure it has answered 400.
func readAdminPage(w http.ResponseWriter, q url.Values) (adminPage, bool) {
	p := adminPage{limit: defaultPageLimit}
	var bad []clients.FieldError
	if raw := q.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxPageLimit {
			bad = append(bad, clients.FieldError{Field: "limit", Reason: fmt.Sprintf("must be an integer from 1 to %d, got %q", maxPageLimit, raw)})
		}
		p.limit = n
	}
	if raw := q.Get("page_token"); raw != "" {
		after, err := base64.RawURLEncoding.DecodeString(raw)
		if err != nil || len(after) == 0 {
			bad = append(bad, clients.FieldError{Field: "page_token", Reason: "is not a page token of this API"})
		}
		p.after = string(after)
	}
	if len(bad) > 0 {
		adminBadRequest(w, "The pagination parameters are not valid.", bad...)
		return adminPage{}, false
	}
	return p, true
}

// adminPageOf makes the answer from items, which holds up to limit+1 entries
// (one more than asked, to learn whether another page follows).
func adminPageOf[T any](items []T, p adminPage, key func(T) string) adminListAnswer[T] {
	out := adminListAnswer[T]{Items: items}
	if len(items) > p.limit {
		out.Items = items[:p.limit]
		out.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte(key(out.Items[p.limit-1])))
	}
	if out.Items == nil {
		out.Items = []T{}
	}
	return out
}

// adminTx runs fn in one store transaction (carried by its context): a
// read and the write it decides stay together, and a database that
// cannot even begin one is reported as storage.ErrUnavailable.
func (s *Server) adminTx(ctx context.Context, fn func(ctx context.Context) error) error {
	txCtx, err := s.store.BeginTX(ctx)
	if err != nil {
		return err
	}
	if err := fn(txCtx); err != nil {
		if rbErr := s.store.Rollback(txCtx); rbErr != nil {
			s.log.WarnContext(ctx, "rollback failed", "error", rbErr)
		}
		return err
	}
	return s.store.Commit(txCtx)
}

// boundHashing runs fn, which hashes a secret with argon2id (19 MiB each),
// within the bound on concurrent password hashing the login page uses.
func (s *Server) boundHashing(fn func()) {
	s.passwordChecks <- struct{}{}
	defer func() { <-s.passwordChecks }()
	fn()
}

func writeAdminNoContent(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

func adminStrings(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}
