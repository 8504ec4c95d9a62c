package server

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/ory/fosite"

	"github.com/latchauth/latch/storage"
)

// TokenTypeHint is RFC 7009's token_type_hint (OAuthRevokeRequestTokenTypeHint).
type TokenTypeHint string

const (
	HintAccessToken  TokenTypeHint = "access_token"
	HintRefreshToken TokenTypeHint = "refresh_token"
)

// OAuthRevokeRequest is the body of POST /oauth2/revoke (RFC 7009 §2.1),
// read from a form or, for SDK-generated clients, a JSON object with the
// same field names.
type OAuthRevokeRequest struct {
	// Token is the token to revoke. Required.
	Token string `json:"token"`
	// TokenTypeHint says where to look first: a performance hint, never a
	// filter. An unknown value is ignored (RFC 7009 §2.2).
	TokenTypeHint TokenTypeHint `json:"token_type_hint,omitempty"`
	// ClientID is required unless the client authenticates with HTTP Basic.
	ClientID string `json:"client_id,omitempty"`
	// ClientSecret is the secret of a confidential client using
	// client_secret_post.
	ClientSecret string `json:"client_secret,omitempty"`
}

// Validate checks what the RFC requires of the request itself.
func (q OAuthRevokeRequest) Validate() error {
	if q.Token == "" {
		return fosite.ErrInvalidRequest.WithHint("The 'token' parameter is missing.")
	}
	return nil
}

// Form is the request as the form fosite's revocation flow reads.
func (q OAuthRevokeRequest) Form() url.Values {
	v := url.Values{"token": {q.Token}}
	for k, val := range map[string]string{"token_type_hint": string(q.TokenTypeHint), "client_id": q.ClientID, "client_secret": q.ClientSecret} {
		if val != "" {
			v.Set(k, val)
		}
	}
	return v
}

// readRevokeRequest decodes the body of r by its content type, leaving
// r.PostForm set so fosite reads the same values whatever came in.
func readRevokeRequest(r *http.Request) (OAuthRevokeRequest, error) {
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mediaType == "application/json" {
		q, err := decodeRevokeJSON(r.Body)
		if err != nil {
			return q, err
		}
		r.PostForm = q.Form()
		r.Form = r.PostForm
		return q, nil
	}
	if err := r.ParseForm(); err != nil {
		return OAuthRevokeRequest{}, fosite.ErrInvalidRequest.WithHint("The request body is not a valid form.").WithWrap(err)
	}
	return OAuthRevokeRequest{
		Token:         r.PostForm.Get("token"),
		TokenTypeHint: TokenTypeHint(r.PostForm.Get("token_type_hint")),
		ClientID:      r.PostForm.Get("client_id"),
		ClientSecret:  r.PostForm.Get("client_secret"),
	}, nil
}

// decodeRevokeJSON reads a JSON revocation body strictly: field names
// match exactly (case-sensitive: "TOKEN" is not "token", so it cannot
// revoke), a field named twice is refused rather than the last one
// winning, every known field is a string, and nothing follows the object.
// Unknown fields are ignored, as RFC 6749 §3.2 asks of unknown
// parameters. encoding/json would fold case and keep the last duplicate;
// the JSON v2 decoder refuses both by default.
func decodeRevokeJSON(body io.Reader) (OAuthRevokeRequest, error) {
	var q OAuthRevokeRequest
	err := jsonv2.UnmarshalRead(body, &q)
	switch {
	case errors.Is(err, jsontext.ErrDuplicateName):
		return q, fosite.ErrInvalidRequest.WithHint("The request body names a field more than once.").WithWrap(err)
	case err != nil:
		return q, fosite.ErrInvalidRequest.WithHint("The request body is not a JSON object of string fields.").WithWrap(err)
	}
	return q, nil
}

// handleRevoke is POST /oauth2/revoke. fosite's flow does the work (client
// authentication, lookup by hint, revocation of the whole grant by request
// ID, both directions); its response writer is replaced because it answers
// 200 to two failures SPEC must not hide: a token of another client
// (400 unauthorized_client, RFC 7009 §2.1) and a storage failure (503).
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q, err := readRevokeRequest(r)
	if err == nil {
		err = q.Validate()
	}
	if err == nil {
		err = checkClientAuthPresent(r, r.PostForm)
	}
	if err == nil {
		err = s.revoke(ctx, r)
	}
	if err != nil {
		s.writeOAuthError(ctx, w, r, err)
		return
	}
	s.oauth.WriteRevocationResponse(ctx, w, nil)
	s.metrics.revoked.Inc()
}

// revoke runs fosite's revocation of r as one unit of work: the client and
// the token are read with no lock held, and the ends of the refresh and
// the access token of the grant are one commit, durable before it returns.
func (s *Server) revoke(ctx context.Context, r *http.Request) error {
	if q := r.PostForm; q.Get("token_type_hint") == "" && looksLikeAccessToken(q.Get("token")) {
		// Without a hint fosite looks the token up as a refresh token
		// first; the prefix of an opaque access token (or the shape of a
		// JWT) says which lookup will find it. A hint only orders the
		// lookups, so a wrong guess still finds the token.
		q.Set("token_type_hint", string(HintAccessToken))
	}
	ctx = storage.WithClientMemo(ctx)
	u, ok := s.store.(storage.UnitOfWork)
	if !ok {
		return s.oauth.NewRevocationRequest(ctx, r)
	}
	ctx, finish := u.Unit(ctx)
	return finish(s.oauth.NewRevocationRequest(ctx, r))
}

// looksLikeAccessToken: fosite's opaque access tokens start with ory_at_;
// a JWT access token has three dot-separated parts.
func looksLikeAccessToken(token string) bool {
	return strings.HasPrefix(token, "ory_at_") || strings.Count(token, ".") == 2
}
