package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/go-jose/go-jose/v3/jwt"
	"github.com/ory/fosite"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/storage"
)

// Signed request objects (JAR, RFC 9101) at the authorization endpoint and
// at PAR. fosite's own support (the OpenID Connect request validator)
// takes alg none, checks neither aud, iss nor jti, only runs for the openid
// scope, merges the object's values over the outer ones by fmt.Sprintf,
// and fetches any request_uri it is given. Latch replaces it: the request
// object is verified here and its claims become the request's parameters
// before fosite sees the request, which then carries no "request" at all.

const (
	// maxRequestObjectSize caps the request parameter: a request object
	// carries authorization parameters, not documents.
	maxRequestObjectSize = 16 << 10
	// requestObjectMaxAhead caps exp - now: a request object is made for
	// one request, and its jti is kept until exp.
	requestObjectMaxAhead = time.Hour
	// requestObjectTyp is RFC 9101 §10.8's media type for the typ header.
	requestObjectTyp = "oauth-authz-req+jwt"
)

// requestObjectAlgs are the signing algorithms accepted (all asymmetric:
// a request object is signed with a key from the client's jwks; none and
// the HMAC algorithms are refused).
var requestObjectAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// requestObjectRegistered are the JWT claims that describe the request
// object itself and are not authorization parameters.
var requestObjectRegistered = []string{"iss", "aud", "exp", "nbf", "iat", "jti"}

// verifiedRequestObject is a request object whose signature and claims
// were checked; its jti is spent by spend.
type verifiedRequestObject struct {
	clientID string
	jti      string
	exp      time.Time
}

// spend marks the request object's jti used: a request object is good for
// one authorization request (RFC 9101 §10.8 and the jti of RFC 7519), and
// of two concurrent uses exactly one wins (the store's insert).
func (s *Server) spendRequestObject(ctx context.Context, v *verifiedRequestObject) error {
	err := s.store.SetClientAssertionJWT(ctx, "request_object:"+v.clientID+":"+v.jti, v.exp)
	if errors.Is(err, fosite.ErrJTIKnown) {
		return fosite.ErrInvalidRequestObject.WithHint("The request object's 'jti' was already used.")
	}
	return err
}

// unpackRequestObject replaces the parameters of r (parsed already) by
// those of its signed request object, if it has one; clientID names the
// client whose keys must have signed it. keep are outer parameters that
// stay (the client authentication of a PAR request). Only the parameters
// inside the object count (RFC 9101 §6.3): outer ones other than keep are
// dropped, so nobody can add an unsigned parameter to a signed request.
// It returns nil, nil for a request without a request object.
func (s *Server) unpackRequestObject(ctx context.Context, r *http.Request, clientID string, keep []string) (*verifiedRequestObject, error) {
	raw := r.Form.Get("request")
	if raw == "" {
		return nil, nil
	}
	if r.Form.Get("request_uri") != "" {
		return nil, fosite.ErrInvalidRequest.WithHint("The 'request' and 'request_uri' parameters were both given; use at most one.")
	}
	if len(raw) > maxRequestObjectSize {
		return nil, fosite.ErrInvalidRequestObject.WithHintf("The request object is longer than %d bytes.", maxRequestObjectSize)
	}
	if clientID == "" {
		return nil, fosite.ErrInvalidRequest.WithHint("The 'client_id' parameter must accompany a request object (RFC 9101 §5).")
	}
	fc, err := s.store.GetClient(ctx, clientID)
	if errors.Is(err, fosite.ErrNotFound) || errors.Is(err, storage.ErrNotFound) {
		return nil, fosite.ErrInvalidClient.WithHint("The requested OAuth 2.0 client does not exist.")
	} else if err != nil {
		return nil, err
	}
	client, ok := fc.(*clients.Client)
	if !ok {
		return nil, fosite.ErrServerError.WithDebug("the store returned a client of another type")
	}
	claims, v, err := s.verifyRequestObject(raw, client)
	if err != nil {
		return nil, err
	}
	form, err := requestObjectForm(claims)
	if err != nil {
		return nil, err
	}
	for _, name := range []string{"client_id", "response_type"} {
		if outer := r.Form.Get(name); outer != "" && form.Get(name) != "" && outer != form.Get(name) {
			return nil, fosite.ErrInvalidRequest.WithHintf("The '%s' inside the request object differs from the one outside it.", name)
		}
	}
	if form.Get("client_id") == "" {
		form.Set("client_id", clientID)
	}
	if r.Form.Get("response_type") != "" && form.Get("response_type") == "" {
		form.Set("response_type", r.Form.Get("response_type"))
	}
	for _, name := range keep {
		if vals, ok := r.Form[name]; ok {
			form[name] = vals
		}
	}
	r.Form, r.PostForm = form, form
	r.URL.RawQuery = ""
	return v, nil
}

// verifyRequestObject checks raw's header, signature and claims (RFC 9101
// §6.1 and §6.3, RFC 7519 §4.1) and returns its claims.
func (s *Server) verifyRequestObject(raw string, client *clients.Client) (map[string]any, *verifiedRequestObject, error) {
	tok, err := jwt.ParseSigned(raw)
	if err != nil || len(tok.Headers) != 1 {
		return nil, nil, fosite.ErrInvalidRequestObject.WithHint("The request object is not a signed JWT (JWS compact serialization). Encrypted request objects are not supported.")
	}
	h := tok.Headers[0]
	if !slices.Contains(requestObjectAlgs, h.Algorithm) {
		return nil, nil, fosite.ErrInvalidRequestObject.WithHintf("The request object's signing algorithm '%s' is not accepted; use one of request_object_signing_alg_values_supported.", h.Algorithm)
	}
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "" && typ != requestObjectTyp && typ != "JWT" {
		return nil, nil, fosite.ErrInvalidRequestObject.WithHintf("The request object's 'typ' header is '%s'; use '%s'.", typ, requestObjectTyp)
	}
	keys := client.GetJSONWebKeys()
	if keys == nil || len(keys.Keys) == 0 {
		return nil, nil, fosite.ErrInvalidRequestObject.WithHint("The client has no registered 'jwks' to verify a request object with.")
	}
	var std jwt.Claims
	var all map[string]any
	verified := false
	for _, k := range keys.Keys {
		if k.Use != "sig" || (h.KeyID != "" && k.KeyID != h.KeyID) || !k.Valid() {
			continue
		}
		if tok.Claims(k.Public().Key, &std, &all) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, nil, fosite.ErrInvalidRequestObject.WithHint("The request object's signature does not verify with any of the client's registered keys.")
	}
	now := s.now()
	switch {
	case std.Issuer != client.ID:
		return nil, nil, fosite.ErrInvalidRequestObject.WithHint("The request object's 'iss' must be the client's id.")
	case !slices.Contains([]string(std.Audience), s.cfg.Issuer):
		return nil, nil, fosite.ErrInvalidRequestObject.WithHint("The request object's 'aud' must contain this server's issuer identifier.")
	case std.Expiry == nil:
		return nil, nil, fosite.ErrInvalidRequestObject.WithHint("The request object has no 'exp'.")
	case !std.Expiry.Time().After(now.Add(-assertionClockLeeway)):
		return nil, nil, fosite.ErrInvalidRequestObject.WithHint("The request object has expired.")
	case std.Expiry.Time().After(now.Add(requestObjectMaxAhead + assertionClockLeeway)):
		return nil, nil, fosite.ErrInvalidRequestObject.WithHintf("The request object's 'exp' is more than %s ahead.", requestObjectMaxAhead)
	case std.NotBefore != nil && std.NotBefore.Time().After(now.Add(assertionClockLeeway)):
		return nil, nil, fosite.ErrInvalidRequestObject.WithHint("The request object is not valid yet ('nbf').")
	case std.IssuedAt != nil && std.IssuedAt.Time().After(now.Add(assertionClockLeeway)):
		return nil, nil, fosite.ErrInvalidRequestObject.WithHint("The request object's 'iat' is ahead of this server's clock.")
	case std.ID == "":
		return nil, nil, fosite.ErrInvalidRequestObject.WithHint("The request object has no 'jti'; each request object must be unique.")
	case all["request"] != nil || all["request_uri"] != nil:
		return nil, nil, fosite.ErrInvalidRequestObject.WithHint("A request object must not contain 'request' or 'request_uri'.")
	}
	return all, &verifiedRequestObject{clientID: client.ID, jti: std.ID, exp: std.Expiry.Time()}, nil
}

// requestObjectForm turns the claims of a request object into request
// parameters: strings as they are, numbers (max_age) in decimal, and
// objects (claims) as their JSON.
func requestObjectForm(claims map[string]any) (url.Values, error) {
	form := url.Values{}
	for name, value := range claims {
		if slices.Contains(requestObjectRegistered, name) {
			continue
		}
		switch v := value.(type) {
		case string:
			form.Set(name, v)
		case float64:
			form.Set(name, strconv.FormatFloat(v, 'f', -1, 64))
		case bool:
			form.Set(name, strconv.FormatBool(v))
		case nil:
		default:
			js, err := json.Marshal(v)
			if err != nil {
				return nil, fosite.ErrInvalidRequestObject.WithHintf("The request object's '%s' cannot be read.", name)
			}
			form.Set(name, string(js))
		}
	}
	return form, nil
}

// requireSignedRequest refuses an authorization request of a client that
// must sign its requests (require_signed_request_object, RFC 9101 §10.5)
// when the request was neither signed nor pushed with a signed object.
func requireSignedRequest(client fosite.Client, signed bool) error {
	if c, ok := client.(*clients.Client); ok && c.RequireSignedRequestObject && !signed {
		return fosite.ErrInvalidRequest.WithHint("This client must send its authorization requests as a signed request object ('request').")
	}
	return nil
}
