package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/ory/fosite"
)

const (
	tableAccess  = "oauth2_access"
	tableRefresh = "oauth2_refresh"
	tableCode    = "oauth2_code"
	tableOIDC    = "oauth2_oidc"
	tablePKCE    = "oauth2_pkce"
	tablePAR     = "oauth2_par"
	// tableChallenge holds authorization requests waiting for a login or
	// a consent decision, keyed by the SHA-256 of the challenge.
	tableChallenge = "oauth2_challenge"
)

// requestRow is the one row shape of every request table.
type requestRow struct {
	Signature         string `gorm:"primaryKey"`
	RequestID         string
	RequestedAt       time.Time
	ClientID          string
	Subject           string
	RequestedScopes   string
	GrantedScopes     string
	RequestedAudience string
	GrantedAudience   string
	Form              string
	SessionData       string
	Extra             string
	AccessSignature   string
	Active            bool
	ExpiresAt         *time.Time
	RotatedAt         *time.Time
	// Origin is the address of the caller that made an unauthenticated
	// row (WithOrigin); "" for every other row.
	Origin string
}

// authorizeExtra is what an authorize request adds to a plain request; only
// pushed authorization requests need it back.
type authorizeExtra struct {
	ResponseTypes        []string `json:"response_types"`
	RedirectURI          string   `json:"redirect_uri"`
	State                string   `json:"state"`
	HandledResponseTypes []string `json:"handled_response_types"`
	ResponseMode         string   `json:"response_mode"`
	DefaultResponseMode  string   `json:"default_response_mode"`
}

// storedFormKeys are the only request parameters kept with a request: those
// a later step reads back (fosite's handlers, the login and consent pages,
// the device and token exchange flows). Anything else a caller sends,
// however long, is not stored, so an unauthenticated request cannot make
// the database keep what it likes. Secrets are not among them: a stored
// form that held a password, a client secret, a code or a token in clear
// would undo hashing them.
var storedFormKeys = map[string]bool{
	// RFC 6749, RFC 7636, RFC 8707, RFC 9101, RFC 9126, RFC 9449
	"client_id": true, "response_type": true, "redirect_uri": true, "scope": true, "state": true,
	"response_mode": true, "code_challenge": true, "code_challenge_method": true, "audience": true,
	"resource": true, "grant_type": true, "request_uri": true, "dpop_jkt": true,
	// OpenID Connect Core §3.1.2.1
	"nonce": true, "prompt": true, "max_age": true, "display": true, "ui_locales": true,
	"claims_locales": true, "login_hint": true, "acr_values": true, "id_token_hint": true, "claims": true,
	// RFC 8693 token exchange (the tokens themselves are not kept)
	"requested_token_type": true, "subject_token_type": true, "actor_token_type": true,
	// the login page's choice of upstream identity provider
	"connector": true, "idp_hint": true,
}

// hashKey is used for tables whose key fosite hands over in clear (the
// authorization code for OIDC sessions, the request_uri for PAR).
func hashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

func (s *GormStore) toRow(signature string, r fosite.Requester, expiry fosite.TokenType) (*requestRow, error) {
	if r.GetClient() == nil {
		return nil, fmt.Errorf("storage: request %s has no client", r.GetID())
	}
	form := url.Values{}
	for k, v := range r.GetRequestForm() {
		if storedFormKeys[k] {
			form[k] = v
		}
	}
	row := &requestRow{
		Signature:         signature,
		RequestID:         r.GetID(),
		RequestedAt:       r.GetRequestedAt().UTC(),
		ClientID:          r.GetClient().GetID(),
		RequestedScopes:   strings.Join(r.GetRequestedScopes(), " "),
		GrantedScopes:     strings.Join(r.GetGrantedScopes(), " "),
		RequestedAudience: joinJSON(r.GetRequestedAudience()),
		GrantedAudience:   joinJSON(r.GetGrantedAudience()),
		Form:              form.Encode(),
		Active:            true,
	}
	if row.RequestedAt.IsZero() {
		row.RequestedAt = s.now().UTC()
	}
	if sess := r.GetSession(); sess != nil {
		data, err := encodeSession(sess)
		if err != nil {
			return nil, fmt.Errorf("storage: encode session: %w", err)
		}
		row.SessionData = string(data)
		row.Subject = sess.GetSubject()
		if exp := sess.GetExpiresAt(expiry); !exp.IsZero() {
			exp = exp.UTC()
			row.ExpiresAt = &exp
		}
	}
	if ar, ok := r.(fosite.AuthorizeRequester); ok {
		extra := authorizeExtra{
			ResponseTypes:        ar.GetResponseTypes(),
			State:                ar.GetState(),
			HandledResponseTypes: handledResponseTypes(ar),
			ResponseMode:         string(ar.GetResponseMode()),
			DefaultResponseMode:  string(ar.GetDefaultResponseMode()),
		}
		if u := ar.GetRedirectURI(); u != nil {
			extra.RedirectURI = u.String()
		}
		data, _ := json.Marshal(extra)
		row.Extra = string(data)
	}
	return row, nil
}

// encodeSession is the stored JSON of sess. A session that encodes itself
// (the server's grant session writes a lean form) is asked directly:
// json.Marshal would call the same method, then scan and copy its output
// again to check it, which cost as much as the encoding.
func encodeSession(sess fosite.Session) ([]byte, error) {
	if m, ok := sess.(json.Marshaler); ok {
		return m.MarshalJSON()
	}
	return json.Marshal(sess)
}

func handledResponseTypes(ar fosite.AuthorizeRequester) []string {
	if concrete, ok := ar.(*fosite.AuthorizeRequest); ok {
		return concrete.HandledResponseTypes
	}
	return nil
}

// toRequest rebuilds the request of row, decoding its session into session
// (or a new one). The client is loaded fresh, so a deleted client's tokens
// stop working at once.
func (s *GormStore) toRequest(ctx context.Context, row *requestRow, session fosite.Session) (*fosite.Request, error) {
	client, err := s.GetClient(ctx, row.ClientID)
	if err != nil {
		return nil, err
	}
	if session == nil {
		session = s.newSession()
	}
	if row.SessionData != "" {
		if err := json.Unmarshal([]byte(row.SessionData), session); err != nil {
			return nil, fmt.Errorf("%w: decode session of request %s: %v", ErrUnavailable, row.RequestID, err)
		}
	}
	form, err := url.ParseQuery(row.Form)
	if err != nil {
		return nil, fmt.Errorf("%w: decode form of request %s: %v", ErrUnavailable, row.RequestID, err)
	}
	return &fosite.Request{
		ID:                row.RequestID,
		RequestedAt:       row.RequestedAt,
		Client:            client,
		RequestedScope:    splitScopes(row.RequestedScopes),
		GrantedScope:      splitScopes(row.GrantedScopes),
		RequestedAudience: splitJSON(row.RequestedAudience),
		GrantedAudience:   splitJSON(row.GrantedAudience),
		Form:              form,
		Session:           session,
	}, nil
}

func (s *GormStore) toAuthorizeRequest(ctx context.Context, row *requestRow, session fosite.Session) (*fosite.AuthorizeRequest, error) {
	req, err := s.toRequest(ctx, row, session)
	if err != nil {
		return nil, err
	}
	var extra authorizeExtra
	if row.Extra != "" {
		if err := json.Unmarshal([]byte(row.Extra), &extra); err != nil {
			return nil, fmt.Errorf("%w: decode authorize request %s: %v", ErrUnavailable, row.RequestID, err)
		}
	}
	ar := &fosite.AuthorizeRequest{
		ResponseTypes:        extra.ResponseTypes,
		State:                extra.State,
		HandledResponseTypes: extra.HandledResponseTypes,
		ResponseMode:         fosite.ResponseModeType(extra.ResponseMode),
		DefaultResponseMode:  fosite.ResponseModeType(extra.DefaultResponseMode),
		Request:              *req,
	}
	if ar.ResponseTypes == nil {
		ar.ResponseTypes = fosite.Arguments{}
	}
	if ar.HandledResponseTypes == nil {
		ar.HandledResponseTypes = fosite.Arguments{}
	}
	if extra.RedirectURI != "" {
		if ar.RedirectURI, err = url.Parse(extra.RedirectURI); err != nil {
			return nil, fmt.Errorf("%w: decode redirect URI of %s: %v", ErrUnavailable, row.RequestID, err)
		}
	}
	return ar, nil
}

func splitScopes(s string) fosite.Arguments {
	if s == "" {
		return fosite.Arguments{}
	}
	return strings.Split(s, " ")
}

func joinJSON(v []string) string {
	if len(v) == 0 {
		return ""
	}
	data, _ := json.Marshal(v)
	return string(data)
}

func splitJSON(s string) fosite.Arguments {
	out := fosite.Arguments{}
	if s != "" {
		_ = json.Unmarshal([]byte(s), &out)
	}
	return out
}
