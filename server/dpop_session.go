package server

import (
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
)

// grantSession is the session the token endpoint, introspection and
// /userinfo decode a grant's stored session into: OpenID Connect's, plus
// the DPoP binding of the tokens issued with it. The binding lives in the
// session because the session is all fosite stores of a request besides a
// sanitized form (Request.Sanitize drops every parameter but a few), and
// the session travels from a code to its tokens and from a refresh token
// to its successors. A session stored without the field (an authorization
// code, a token issued before DPoP) decodes with no binding.
type grantSession struct {
	*openid.DefaultSession
	// DPoPJKT is the RFC 7638 thumbprint of the key the access token is
	// bound to (cnf.jkt, RFC 9449 §6); empty for a Bearer token.
	DPoPJKT string `json:"dpop_jkt,omitempty"`
	// RefreshJKT is the thumbprint the grant's refresh tokens are bound
	// to: set when a public client gets its first tokens with a proof
	// (§5: its refresh tokens are bound, a confidential client's are
	// not), kept by every refresh.
	RefreshJKT string `json:"dpop_refresh_jkt,omitempty"`
	// Connector is the upstream identity provider the grant's person
	// signed in through: its refreshes ask that upstream again
	// (upstream_refresh.go). Empty for a local sign-in.
	Connector string `json:"connector,omitempty"`
	// Act is the act claim of a token issued by a token exchange (RFC
	// 8693 §4.1): who acts for the subject, nested for earlier actors.
	// JWT access tokens, exchanged ID tokens and introspection show it.
	Act map[string]any `json:"act,omitempty"`
	// Exchanged marks a grant issued by a token exchange from another
	// grant of Latch's: its refreshes keep it tied to that grant
	// (keepRefreshScope).
	Exchanged bool `json:"exchanged,omitempty"`

	// exchange is what a token exchange request decided, from its
	// handler's check to its issuance (tokenexchange.go); never stored.
	exchange *exchange
}

func newGrantSession() *grantSession {
	return &grantSession{DefaultSession: newSession()}
}

// Clone keeps the binding: fosite clones the session of a refresh token
// into its successor's request.
func (g *grantSession) Clone() fosite.Session {
	if g == nil {
		return nil
	}
	var inner *openid.DefaultSession
	if g.DefaultSession != nil {
		inner, _ = g.DefaultSession.Clone().(*openid.DefaultSession)
	}
	return &grantSession{DefaultSession: inner, DPoPJKT: g.DPoPJKT, RefreshJKT: g.RefreshJKT, Connector: g.Connector, Act: g.Act, Exchanged: g.Exchanged}
}

// oidcSession is the OpenID Connect session inside sess, whichever of the
// two session types it is.
func oidcSession(sess fosite.Session) (*openid.DefaultSession, bool) {
	switch s := sess.(type) {
	case *openid.DefaultSession:
		return s, s != nil
	case *grantSession:
		return s.DefaultSession, s != nil && s.DefaultSession != nil
	}
	return nil, false
}

// exchangeAct is the act claim of the token of sess, nil for none.
func exchangeAct(sess fosite.Session) map[string]any {
	if g, ok := sess.(*grantSession); ok && g != nil {
		return g.Act
	}
	return nil
}

// dpopJKT is the thumbprint the token of sess is bound to, "" for none.
func dpopJKT(sess fosite.Session) string {
	if g, ok := sess.(*grantSession); ok && g != nil {
		return g.DPoPJKT
	}
	return ""
}
