package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"

	"github.com/latchauth/latch/clients"
)

// The client metadata of RFC 7591 §2 as registration reads and answers it,
// turned into a clients.Client with the RFC's defaults.

// defaultRegisteredScopes are those discovery lists in scopes_supported:
// of them, a client that registers without a "scope" gets those its
// registration policy allows (RegistrationPolicy.defaultScopes).
var defaultRegisteredScopes = []string{"openid", "profile", "email", "groups", "offline_access"}

// registrationMetadata is the client metadata of RFC 7591 §2 that Latch
// keeps, as it answers it: what was registered, defaults included.
type registrationMetadata struct {
	RedirectURIs            []string            `json:"redirect_uris"`
	TokenEndpointAuthMethod string              `json:"token_endpoint_auth_method"`
	GrantTypes              []string            `json:"grant_types"`
	ResponseTypes           []string            `json:"response_types"`
	ClientName              string              `json:"client_name,omitempty"`
	Scope                   string              `json:"scope"` // space-separated
	JWKS                    *jose.JSONWebKeySet `json:"jwks,omitempty"`
	PostLogoutRedirectURIs  []string            `json:"post_logout_redirect_uris"`
	// OIDC Back-Channel Logout 1.0 §2.2.
	BackchannelLogoutURI             string `json:"backchannel_logout_uri,omitempty"`
	BackchannelLogoutSessionRequired bool   `json:"backchannel_logout_session_required,omitempty"`
}

// registrationRequest is the body of a registration (POST) or of an
// update (PUT), which names the client too. Other members are ignored, as
// RFC 7591 §2 allows. jwks is decoded on its own so a bad key set is
// reported as such; a nil Scope (absent) is the default set.
type registrationRequest struct {
	RedirectURIs            []string        `json:"redirect_uris"`
	TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method"`
	GrantTypes              []string        `json:"grant_types"`
	ResponseTypes           []string        `json:"response_types"`
	ClientName              string          `json:"client_name"`
	Scope                   *string         `json:"scope"`
	JWKS                    json.RawMessage `json:"jwks"`
	PostLogoutRedirectURIs  []string        `json:"post_logout_redirect_uris"`
	BackchannelLogoutURI    string          `json:"backchannel_logout_uri"`
	// BackchannelLogoutSessionRequired is false when absent (§2.2).
	BackchannelLogoutSessionRequired bool   `json:"backchannel_logout_session_required"`
	ClientID                         string `json:"client_id"`
	ClientSecret                     string `json:"client_secret"`
}

// registrationResponse is the client information response (RFC 7591
// §3.2.1, RFC 7592 §3).
type registrationResponse struct {
	ClientID string `json:"client_id"`
	// ClientSecret is there only when one was just generated: Latch keeps
	// only its hash.
	ClientSecret     string `json:"client_secret,omitempty"`
	ClientIDIssuedAt int64  `json:"client_id_issued_at"`
	// ClientSecretExpiresAt is 0 (never) for a client with a secret.
	ClientSecretExpiresAt   *int64 `json:"client_secret_expires_at,omitempty"`
	RegistrationAccessToken string `json:"registration_access_token"`
	RegistrationClientURI   string `json:"registration_client_uri"`
	registrationMetadata
}

func (s *Server) registrationResponse(c *clients.Client, secret, token string) registrationResponse {
	res := registrationResponse{
		ClientID:                c.ID,
		ClientSecret:            secret,
		ClientIDIssuedAt:        c.CreatedAt.Unix(),
		RegistrationAccessToken: token,
		RegistrationClientURI:   s.url(pathRegister + "/" + url.PathEscape(c.ID)),
		registrationMetadata: registrationMetadata{
			RedirectURIs:            registrationList(c.RedirectURIs),
			TokenEndpointAuthMethod: c.GetTokenEndpointAuthMethod(),
			GrantTypes:              registrationList(c.GrantTypes),
			// [] rather than absent: an absent response_types means
			// ["code"] (RFC 7591 §2).
			ResponseTypes:          registrationList(c.ResponseTypes),
			ClientName:             c.Name,
			Scope:                  strings.Join(c.Scopes, " "),
			JWKS:                   c.JWKS,
			PostLogoutRedirectURIs: registrationList(c.PostLogoutRedirectURIs),

			BackchannelLogoutURI:             c.BackchannelLogoutURI,
			BackchannelLogoutSessionRequired: c.BackchannelLogoutSessionRequired,
		},
	}
	if c.SecretHash != "" {
		never := int64(0)
		res.ClientSecretExpiresAt = &never
	}
	return res
}

var errTrailingJSON = errors.New("more than one JSON value")

// readRegistrationRequest decodes one JSON object of client metadata.
func readRegistrationRequest(r *http.Request) (registrationRequest, error) {
	var q registrationRequest
	dec := json.NewDecoder(r.Body)
	err := dec.Decode(&q)
	if err == nil && dec.More() {
		err = errTrailingJSON
	}
	if err == nil {
		return q, nil
	}
	var (
		tooBig   *http.MaxBytesError
		typeErr  *json.UnmarshalTypeError
		syntaxEr *json.SyntaxError
	)
	reason := "is not a JSON object of client metadata"
	switch {
	case errors.As(err, &tooBig):
		reason = fmt.Sprintf("is larger than %d bytes", tooBig.Limit)
	case errors.As(err, &typeErr) && typeErr.Field != "":
		reason = fmt.Sprintf("has %s where %s must be a JSON %s", typeErr.Value, typeErr.Field, registrationJSONKind(typeErr.Type.Kind().String()))
	case errors.As(err, &syntaxEr):
		reason = fmt.Sprintf("is not valid JSON (at byte %d)", syntaxEr.Offset)
	case errors.Is(err, io.EOF):
		reason = "is empty; it must be a JSON object of client metadata"
	case errors.Is(err, io.ErrUnexpectedEOF):
		reason = "ends in the middle of a JSON value"
	case errors.Is(err, errTrailingJSON):
		reason = "holds more than one JSON value"
	}
	return q, &fosite.RFC6749Error{ErrorField: "invalid_client_metadata", CodeField: http.StatusBadRequest,
		DescriptionField: "The request body " + reason + ".", DebugField: err.Error()}
}

func registrationJSONKind(goKind string) string {
	switch goKind {
	case "slice", "array":
		return "array"
	case "struct", "map", "ptr":
		return "object"
	}
	return goKind
}

// policyClient is q's client held to the named registration policy, which
// it is marked with.
func (s *Server) policyClient(q registrationRequest, policy string) (*clients.Client, error) {
	c, err := q.client(s.cfg.Registration.defaultScopes(policy))
	if err != nil {
		return nil, err
	}
	if problems := s.cfg.Registration.check(c, policy); len(problems) > 0 {
		return nil, problems
	}
	c.RegistrationPolicy = policy
	return c, nil
}

// client turns the metadata into a client with RFC 7591's defaults, the
// scopes of one that asks for none being defaultScopes. It checks what
// clients.Validate does not know about: the scope string and the key set.
func (q registrationRequest) client(defaultScopes []string) (*clients.Client, error) {
	c := &clients.Client{
		Name:                    q.ClientName,
		RedirectURIs:            q.RedirectURIs,
		PostLogoutRedirectURIs:  q.PostLogoutRedirectURIs,
		GrantTypes:              q.GrantTypes,
		ResponseTypes:           q.ResponseTypes,
		TokenEndpointAuthMethod: q.TokenEndpointAuthMethod,

		BackchannelLogoutURI:             q.BackchannelLogoutURI,
		BackchannelLogoutSessionRequired: q.BackchannelLogoutSessionRequired,
	}
	if c.TokenEndpointAuthMethod == "" {
		c.TokenEndpointAuthMethod = clients.AuthMethodBasic
	}
	if c.GrantTypes == nil {
		c.GrantTypes = []string{clients.GrantAuthorizationCode}
	}
	clients.Defaults(c)
	var problems clients.ValidationError
	if len(q.JWKS) > 0 && string(q.JWKS) != "null" {
		c.JWKS = new(jose.JSONWebKeySet)
		if err := json.Unmarshal(q.JWKS, c.JWKS); err != nil {
			problems = append(problems, clients.FieldError{Field: "jwks", Reason: "is not a JSON Web Key Set"})
		} else {
			for i, k := range c.JWKS.Keys {
				if !k.IsPublic() {
					problems = append(problems, clients.FieldError{Field: fmt.Sprintf("jwks.keys[%d]", i), Reason: "must be a public key"})
				}
			}
		}
	}
	if q.Scope == nil {
		c.Scopes = slices.Clone(defaultScopes)
	} else {
		for _, tok := range strings.Split(*q.Scope, " ") {
			switch {
			case tok == "" || slices.Contains(c.Scopes, tok):
			case !validScopeToken(tok):
				problems = append(problems, clients.FieldError{Field: "scope", Reason: fmt.Sprintf("%q is not a scope token (RFC 6749 §3.3)", tok)})
			default:
				c.Scopes = append(c.Scopes, tok)
			}
		}
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return c, nil
}

// validScopeToken reports whether tok is a scope-token of RFC 6749 §3.3:
// printable ASCII except space, '"' and '\'.
func validScopeToken(tok string) bool {
	for i := 0; i < len(tok); i++ {
		b := tok[i]
		if b < 0x21 || b > 0x7e || b == '"' || b == '\\' {
			return false
		}
	}
	return tok != ""
}

func registrationList(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}
