package server

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/storage"
)

// DPoP (RFC 9449): a client proves possession of a key with a signed JWT
// in the DPoP header of each request, and the tokens Latch issues to it are
// bound to that key's RFC 7638 thumbprint (cnf.jkt).

// dpopAlgs are the proof algorithms Latch accepts and lists in discovery
// as dpop_signing_alg_values_supported: asymmetric only (§4.3 check 5);
// none and the HMAC algorithms are refused.
var dpopAlgs = []string{"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"}

const (
	// dpopProofMaxLen caps the DPoP header: an RSA-4096 jwk and the claims
	// fit in 3 KiB; nothing larger is parsed.
	dpopProofMaxLen = 8 << 10
	// dpopJTIMaxLen caps the jti a proof may make us store.
	dpopJTIMaxLen = 256
	// dpopProofAge is how old a proof's iat may be, and dpopProofSkew how
	// far in the future (clock skew): the window of §4.3 check 11. A jti
	// is kept as long as its proof would be accepted, so a replay inside
	// the window is caught and the table stays bounded.
	dpopProofAge  = 5 * time.Minute
	dpopProofSkew = time.Minute
	// dpopJKTForm is the request form key under which a request's DPoP
	// key thumbprint is stored with it: the client's own dpop_jkt on an
	// authorization request (§10), the proof's key on a token request
	// (set by the server, never taken from the client).
	dpopJKTForm = "dpop_jkt"
)

// checkDPoPJKT refuses a dpop_jkt authorization request parameter (§10)
// that cannot be a SHA-256 thumbprint: 43 base64url characters.
func checkDPoPJKT(ar fosite.AuthorizeRequester) error {
	jkt := ar.GetRequestForm().Get(dpopJKTForm)
	if jkt == "" {
		return nil
	}
	if b, err := base64.RawURLEncoding.DecodeString(jkt); err != nil || len(b) != sha256.Size {
		return fosite.ErrInvalidRequest.WithHint("The 'dpop_jkt' parameter is not a base64url SHA-256 JWK thumbprint.")
	}
	return nil
}

// codeSession is the session an authorization code is stored with: with
// the dpop_jkt of the request (§10), which binds the code, so that only a
// token request with a proof by that key can exchange it.
func codeSession(ar fosite.AuthorizeRequester, sess *openid.DefaultSession) fosite.Session {
	jkt := ar.GetRequestForm().Get(dpopJKTForm)
	if jkt == "" {
		return sess
	}
	return &grantSession{DefaultSession: sess, DPoPJKT: jkt}
}

// errInvalidDPoPProof is §5 and §7.1's invalid_dpop_proof.
func errInvalidDPoPProof(hint string) *fosite.RFC6749Error {
	return dpopRFCError("invalid_dpop_proof", "The DPoP proof is invalid.", hint)
}

// dpopRFCError is one of RFC 9449's errors, which fosite does not define.
// At the token endpoint it is a 400; a resource endpoint answers 401 with
// the DPoP challenge instead (dpopError).
func dpopRFCError(code, description, hint string) *fosite.RFC6749Error {
	return &fosite.RFC6749Error{ErrorField: code, DescriptionField: description, HintField: hint, CodeField: http.StatusBadRequest}
}

// dpopClaims are the claims of a proof (§4.2).
type dpopClaims struct {
	JTI   string       `json:"jti"`
	HTM   string       `json:"htm"`
	HTU   string       `json:"htu"`
	IAT   *json.Number `json:"iat"`
	ATH   string       `json:"ath"`
	Nonce string       `json:"nonce"`
}

// dpopProof is a proof that passed every check of §4.3 but the jti replay
// check, which spends it (spendDPoPProof).
type dpopProof struct {
	jkt string
	jti string
	iat time.Time
}

// dpopProofFrom checks the DPoP header of r per RFC 9449 §4.3 for a request
// to htu (the endpoint's URL, without query) and, where an access token
// accompanies the request, its ath. It returns nil, nil when r carries no
// proof. Every refusal is invalid_dpop_proof.
func (s *Server) dpopProofFrom(r *http.Request, htu, accessToken string) (*dpopProof, error) {
	values := r.Header.Values("DPoP")
	if len(values) == 0 {
		return nil, nil
	}
	if len(values) > 1 {
		return nil, errInvalidDPoPProof("More than one DPoP header.")
	}
	raw := values[0]
	if len(raw) > dpopProofMaxLen {
		return nil, errInvalidDPoPProof("The DPoP proof is too long.")
	}
	if strings.Count(raw, ".") != 2 || strings.ContainsAny(raw, " \t{") {
		return nil, errInvalidDPoPProof("The DPoP proof is not a compact JWS.")
	}
	jws, err := jose.ParseSigned(raw)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, errInvalidDPoPProof("The DPoP proof is not a well-formed JWT.")
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "dpop+jwt" {
		return nil, errInvalidDPoPProof("The DPoP proof's typ is not dpop+jwt.")
	}
	if !dpopAlgSupported(h.Algorithm) {
		return nil, errInvalidDPoPProof("The DPoP proof's alg is not one of dpop_signing_alg_values_supported.")
	}
	jwk := h.JSONWebKey
	if jwk == nil || !jwk.Valid() {
		return nil, errInvalidDPoPProof("The DPoP proof has no valid jwk header.")
	}
	if !jwk.IsPublic() {
		return nil, errInvalidDPoPProof("The DPoP proof's jwk is not a public key.")
	}
	payload, err := jws.Verify(jwk)
	if err != nil {
		return nil, errInvalidDPoPProof("The DPoP proof's signature does not verify with its jwk.")
	}
	var c dpopClaims
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&c); err != nil {
		return nil, errInvalidDPoPProof("The DPoP proof's claims are not a JSON object.")
	}
	if c.JTI == "" || c.HTM == "" || c.HTU == "" || c.IAT == nil {
		return nil, errInvalidDPoPProof("The DPoP proof lacks one of jti, htm, htu and iat.")
	}
	if s.cfg.DPoPRequireNonce && c.Nonce == "" {
		return nil, errUseDPoPNonce("The DPoP proof has no nonce.")
	}
	if s.cfg.DPoPRequireNonce && !s.dpopNonceCurrent(c.Nonce) {
		return nil, errUseDPoPNonce("The DPoP proof's nonce is not current.")
	}
	if len(c.JTI) > dpopJTIMaxLen {
		return nil, errInvalidDPoPProof("The DPoP proof's jti is too long.")
	}
	if c.HTM != r.Method {
		return nil, errInvalidDPoPProof("The DPoP proof's htm is not the method of this request.")
	}
	if !sameHTU(c.HTU, htu) {
		return nil, errInvalidDPoPProof("The DPoP proof's htu is not the URL of this endpoint.")
	}
	iatSeconds, err := c.IAT.Float64()
	if err != nil {
		return nil, errInvalidDPoPProof("The DPoP proof's iat is not a number.")
	}
	iat := time.Unix(int64(iatSeconds), 0)
	now := s.cfg.Now()
	if iat.Before(now.Add(-dpopProofAge)) || iat.After(now.Add(dpopProofSkew)) {
		return nil, errInvalidDPoPProof("The DPoP proof's iat is outside the accepted window.")
	}
	if accessToken != "" {
		if c.ATH == "" {
			return nil, errInvalidDPoPProof("The DPoP proof lacks ath, the hash of the access token.")
		}
		if subtle.ConstantTimeCompare([]byte(c.ATH), []byte(accessTokenHash(accessToken))) != 1 {
			return nil, errInvalidDPoPProof("The DPoP proof's ath is not the hash of this access token.")
		}
	}
	thumb, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, errInvalidDPoPProof("The DPoP proof's jwk has no thumbprint.")
	}
	return &dpopProof{jkt: base64.RawURLEncoding.EncodeToString(thumb), jti: c.JTI, iat: iat}, nil
}

// spendDPoPProof records the proof's jti so that no second request can use
// it (§11.1): an insert into the used JTI table that fails on a duplicate,
// so among concurrent uses, on any number of instances, exactly one wins.
// The row expires with the proof's window and the janitor removes it. The
// key is namespaced and includes the key thumbprint: jti is unique per key
// (§4.2), and a client assertion's jti cannot collide with it.
func (s *Server) spendDPoPProof(r *http.Request, p *dpopProof) error {
	err := s.store.SetClientAssertionJWT(r.Context(), "dpop:"+p.jkt+":"+p.jti, p.iat.Add(dpopProofAge+dpopProofSkew))
	if errors.Is(err, fosite.ErrJTIKnown) {
		return errInvalidDPoPProof("The DPoP proof's jti was used before.")
	}
	if err != nil && !errors.Is(err, storage.ErrUnavailable) {
		return errors.Join(storage.ErrUnavailable, err)
	}
	return err
}

func dpopAlgSupported(alg string) bool {
	for _, a := range dpopAlgs {
		if a == alg {
			return true
		}
	}
	return false
}

// accessTokenHash is ath (§4.2): the base64url SHA-256 of the token.
func accessTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// sameHTU compares a proof's htu with the endpoint's URL as §4.3 says:
// without query and fragment, after RFC 3986 §6.2.2 and §6.2.3
// normalization (case of scheme and host, the scheme's default port, an
// empty path as "/").
func sameHTU(got, want string) bool {
	g, err := url.Parse(got)
	if err != nil || !g.IsAbs() {
		return false
	}
	w, err := url.Parse(want)
	if err != nil {
		return false
	}
	return normalURL(g) == normalURL(w)
}

func normalURL(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if port != "" {
		host += ":" + port
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path
}

// tokenTypeDPoP is the token_type of a DPoP-bound access token (§5).
const tokenTypeDPoP = "DPoP"

// bindDPoP binds the tokens ar will issue to the key of proof, or to none
// when the request carries no proof: the grant's session is the stored
// one (of the code, or of the refresh token), so an access token binding
// of an earlier issuance is replaced, never inherited. It refuses a
// request without a proof from a client registered with
// dpop_bound_access_tokens (§5.2), and the refresh of a bound refresh
// token without a proof by its key (§5). The proof's jti is spent last,
// once the grant's own checks have passed, so that only an authenticated
// client with a valid grant can make us store one.
func (s *Server) bindDPoP(r *http.Request, ar fosite.AccessRequester, proof *dpopProof) error {
	sess, ok := ar.GetSession().(*grantSession)
	if !ok {
		return fosite.ErrServerError.WithDebug("the token endpoint's session is not a grantSession")
	}
	if c, ok := ar.GetClient().(*clients.Client); ok && c.DPoPBoundAccessTokens && proof == nil {
		return errInvalidDPoPProof("This client's access tokens must be DPoP-bound: send a DPoP proof.")
	}
	refresh := ar.GetGrantTypes().ExactOne("refresh_token")
	// An authorization code's session carries its request's dpop_jkt
	// (codeSession); every other grant's carries the binding of the
	// last issuance, which is not a requirement.
	if ar.GetGrantTypes().ExactOne("authorization_code") && sess.DPoPJKT != "" && (proof == nil || proof.jkt != sess.DPoPJKT) {
		return errInvalidDPoPProof("The authorization code is bound to a DPoP key by dpop_jkt: send a DPoP proof by that key.")
	}
	if refresh && sess.RefreshJKT != "" && (proof == nil || proof.jkt != sess.RefreshJKT) {
		return errInvalidDPoPProof("The refresh token is DPoP-bound: send a DPoP proof by the key it is bound to.")
	}
	sess.DPoPJKT = ""
	if proof == nil {
		return nil
	}
	if err := s.spendDPoPProof(r, proof); err != nil {
		return err
	}
	sess.DPoPJKT = proof.jkt
	if !refresh && ar.GetClient().IsPublic() {
		sess.RefreshJKT = proof.jkt
	}
	return nil
}
