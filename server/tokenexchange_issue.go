package server

import (
	"context"
	"errors"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/token/jwt"

	"github.com/latchauth/latch/storage"
)

// PopulateTokenEndpointResponse issues the token HandleTokenEndpointRequest
// prepared and answers per RFC 8693 §2.2.1: access_token (whatever type
// was issued), issued_token_type, token_type (N_A for what is not an
// access token), expires_in, scope.
//
// An exchanged access or refresh token is stored like any other, under a
// grant of its own (introspection and revocation treat it as any other
// token of its client). When the subject token is one of Latch's access
// tokens, that grant is first linked to the subject's (storage
// ExchangedGrants), so revoking the subject's grant revokes it too; and
// once stored, the subject token is looked up again, so that a
// revocation racing the exchange is not missed.
func (g *tokenExchangeGrant) PopulateTokenEndpointResponse(ctx context.Context, ar fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !g.CanHandleTokenEndpointRequest(ctx, ar) {
		return fosite.ErrUnknownRequest
	}
	sess, ok := ar.GetSession().(*grantSession)
	if !ok || sess.exchange == nil {
		return fosite.ErrServerError.WithDebug("the token exchange's session was not prepared")
	}
	x := sess.exchange
	if x.requested == tokenTypeIDToken {
		return g.issueIDToken(ctx, ar, sess, resp)
	}
	if err := g.link(ctx, ar, sess, x); err != nil {
		return err
	}
	var err error
	if x.requested == tokenTypeRefresh {
		err = g.issueRefreshToken(ctx, ar, sess, resp)
	} else {
		err = g.issueAccessToken(ctx, ar, sess, resp, x.requested)
	}
	if err != nil {
		return err
	}
	return g.subjectStillActive(ctx, ar, x)
}

// link ties the new grant to the subject token's, when that is Latch's.
func (g *tokenExchangeGrant) link(ctx context.Context, ar fosite.AccessRequester, sess *grantSession, x *exchange) error {
	if g.links == nil || x.subject.grantID == "" {
		return nil
	}
	exp := sess.GetExpiresAt(fosite.AccessToken)
	if x.requested == tokenTypeRefresh {
		exp = sess.GetExpiresAt(fosite.RefreshToken)
	}
	err := g.links.LinkExchangedGrant(ctx, ar.GetID(), x.subject.grantID, exp)
	if errors.Is(err, storage.ErrExchangeTooDeep) {
		return errExchangeToken("subject_token", "it comes from too long a chain of token exchanges.")
	}
	return err
}

// subjectStillActive refuses the exchange, and revokes what it issued,
// when the subject token was revoked while the exchange ran.
func (g *tokenExchangeGrant) subjectStillActive(ctx context.Context, ar fosite.AccessRequester, x *exchange) error {
	if x.subject.signature == "" {
		return nil
	}
	_, err := g.store.GetAccessTokenSession(ctx, x.subject.signature, newGrantSession())
	if err == nil {
		return nil
	}
	if !errors.Is(err, fosite.ErrNotFound) {
		return err
	}
	if err := errors.Join(g.store.RevokeAccessToken(ctx, ar.GetID()), g.store.RevokeRefreshToken(ctx, ar.GetID())); err != nil {
		return err
	}
	return errExchangeToken("subject_token", "it was revoked during the exchange.")
}

func (g *tokenExchangeGrant) issueAccessToken(ctx context.Context, ar fosite.AccessRequester, sess *grantSession, resp fosite.AccessResponder, requested string) error {
	var token, sig string
	var err error
	if requested == tokenTypeJWT {
		token, sig, err = g.strategy.generateJWT(ctx, ar)
	} else {
		token, sig, err = g.strategy.GenerateAccessToken(ctx, ar)
	}
	if err != nil {
		return err
	}
	if err := g.store.CreateAccessTokenSession(ctx, sig, ar.Sanitize(nil)); err != nil {
		return err
	}
	respond(resp, token, "bearer", requested, sess.GetExpiresAt(fosite.AccessToken), ar.GetGrantedScopes())
	return nil
}

func (g *tokenExchangeGrant) issueRefreshToken(ctx context.Context, ar fosite.AccessRequester, sess *grantSession, resp fosite.AccessResponder) error {
	token, sig, err := g.strategy.GenerateRefreshToken(ctx, ar)
	if err != nil {
		return err
	}
	if err := g.store.CreateRefreshTokenSession(ctx, sig, "", ar.Sanitize(nil)); err != nil {
		return err
	}
	respond(resp, token, tokenTypeNA, tokenTypeRefresh, sess.GetExpiresAt(fosite.RefreshToken), ar.GetGrantedScopes())
	return nil
}

// issueIDToken signs an ID token for the subject: audience the requested
// targets, or else the client; azp the client (OIDC Core §2). It is not
// stored: ID tokens never are.
func (g *tokenExchangeGrant) issueIDToken(ctx context.Context, ar fosite.AccessRequester, sess *grantSession, resp fosite.AccessResponder) error {
	now := time.Now().UTC()
	exp := sess.GetExpiresAt(fosite.IDToken)
	clientID := ar.GetClient().GetID()
	aud := []string(ar.GetGrantedAudience())
	if len(aud) == 0 {
		aud = []string{clientID}
	}
	claims := jwt.MapClaims{
		"iss": g.issuer, "sub": sess.GetSubject(), "aud": aud, "azp": clientID,
		"iat": now.Unix(), "exp": exp.Unix(),
	}
	if at := authTime(sess); !at.IsZero() {
		claims["auth_time"] = at.Unix()
	}
	if sess.Act != nil {
		claims["act"] = sess.Act
	}
	token, _, err := g.signer.Generate(ctx, claims, &jwt.Headers{})
	if err != nil {
		return err
	}
	respond(resp, token, tokenTypeNA, tokenTypeIDToken, exp, ar.GetGrantedScopes())
	return nil
}

// respond fills the answer of §2.2.1.
func respond(resp fosite.AccessResponder, token, tokenType, issued string, exp time.Time, scopes fosite.Arguments) {
	resp.SetAccessToken(token)
	resp.SetTokenType(tokenType)
	resp.SetExpiresIn(time.Until(exp).Round(time.Second))
	resp.SetScopes(scopes)
	resp.SetExtra("issued_token_type", issued)
}
