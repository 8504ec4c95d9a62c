package conformance

import (
	"errors"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/storage"
)

// codeTests cover what the authorization endpoint stores for the token
// endpoint: codes, PKCE and OpenID Connect sessions, and PAR contexts.
func codeTests() []subtest {
	return []subtest{
		{"AuthorizeCode", testAuthorizeCode},
		{"AuthorizeCodeInvalidate", testAuthorizeCodeInvalidate},
		{"OpenIDConnectSession", testOpenIDConnectSession},
		{"PKCESession", testPKCESession},
		{"PARSession", testPARSession},
	}
}

func testAuthorizeCode(t *testing.T, s storage.Store) {
	c := createClient(t, s, "app")
	areq := newAuthorizeRequest(c, "req-1", "alice", now().Add(10*time.Minute))
	require.NoError(t, s.CreateAuthorizeCodeSession(ctx(t), "code-1", areq))

	// The token endpoint validates the code's expiry on the session it
	// handed in, right after this read: it must be hydrated.
	sess := openid.NewDefaultSession()
	got, err := s.GetAuthorizeCodeSession(ctx(t), "code-1", sess)
	require.NoError(t, err)
	requireRequest(t, areq, got, fosite.AuthorizeCode)
	requireSession(t, areq.Session, sess, fosite.AuthorizeCode)
	require.Equal(t, "https://app.example.com/callback", got.GetRequestForm().Get("redirect_uri"),
		"the token endpoint compares redirect_uri with the authorize request's")

	_, err = s.GetAuthorizeCodeSession(ctx(t), "code-unknown", openid.NewDefaultSession())
	requireNotFound(t, err, "GetAuthorizeCodeSession unknown")

	err = s.CreateAuthorizeCodeSession(ctx(t), "code-1", newAuthorizeRequest(c, "req-2", "bob", now().Add(time.Hour)))
	require.Truef(t, errors.Is(err, storage.ErrAlreadyExists), "CreateAuthorizeCodeSession twice: want ErrAlreadyExists, got %v", err)
}

func testAuthorizeCodeInvalidate(t *testing.T, s storage.Store) {
	c := createClient(t, s, "app")
	areq := newAuthorizeRequest(c, "req-1", "alice", now().Add(10*time.Minute))
	require.NoError(t, s.CreateAuthorizeCodeSession(ctx(t), "code-1", areq))
	require.NoError(t, s.CreateAuthorizeCodeSession(ctx(t), "code-2", newAuthorizeRequest(c, "req-2", "alice", now().Add(10*time.Minute))))

	require.NoError(t, s.InvalidateAuthorizeCodeSession(ctx(t), "code-1"))
	// A used code answers ErrInvalidatedAuthorizeCode with its request, so
	// fosite can revoke every token the first use issued.
	got, err := s.GetAuthorizeCodeSession(ctx(t), "code-1", openid.NewDefaultSession())
	require.Truef(t, errors.Is(err, fosite.ErrInvalidatedAuthorizeCode), "used code: want ErrInvalidatedAuthorizeCode, got %v", err)
	require.NotNil(t, got, "ErrInvalidatedAuthorizeCode must come with the request")
	require.Equal(t, "req-1", got.GetID())
	require.Equal(t, "app", got.GetClient().GetID())

	_, err = s.GetAuthorizeCodeSession(ctx(t), "code-2", openid.NewDefaultSession())
	require.NoError(t, err, "invalidating one code leaves the others")

	err = s.InvalidateAuthorizeCodeSession(ctx(t), "code-1")
	require.Truef(t, errors.Is(err, fosite.ErrInvalidatedAuthorizeCode), "invalidating a used code: want ErrInvalidatedAuthorizeCode, got %v", err)
	requireNotFound(t, s.InvalidateAuthorizeCodeSession(ctx(t), "code-unknown"), "InvalidateAuthorizeCodeSession unknown")
}

func testOpenIDConnectSession(t *testing.T, s storage.Store) {
	c := createClient(t, s, "app")
	areq := newAuthorizeRequest(c, "req-1", "alice", now().Add(10*time.Minute))
	areq.Session.(*openid.DefaultSession).Claims.Nonce = "n-0S6_WzA2Mj"
	authTime := now().Add(-time.Minute)
	areq.Session.(*openid.DefaultSession).Claims.AuthTime = authTime
	require.NoError(t, s.CreateOpenIDConnectSession(ctx(t), "code-1", areq))

	// fosite passes the token request and reads the ID token claims from
	// the session of what comes back.
	tokenReq := &fosite.Request{Session: openid.NewDefaultSession()}
	got, err := s.GetOpenIDConnectSession(ctx(t), "code-1", tokenReq)
	require.NoError(t, err)
	requireRequest(t, areq, got, fosite.AuthorizeCode)
	require.True(t, got.GetGrantedScopes().Has("openid"), "fosite refuses an OIDC session without the openid scope")
	sess, ok := got.GetSession().(openid.Session)
	require.Truef(t, ok, "the session is %T, want an openid.Session", got.GetSession())
	claims := sess.IDTokenClaims()
	require.Equal(t, "alice", claims.Subject, "ID token subject")
	require.Equal(t, "n-0S6_WzA2Mj", claims.Nonce, "ID token nonce")
	require.Equal(t, "https://latch.example.com", claims.Issuer)
	require.Truef(t, claims.AuthTime.Equal(authTime), "auth_time: want %v, got %v", authTime, claims.AuthTime)

	_, err = s.GetOpenIDConnectSession(ctx(t), "code-unknown", &fosite.Request{Session: openid.NewDefaultSession()})
	requireNotFound(t, err, "GetOpenIDConnectSession unknown")

	require.NoError(t, s.DeleteOpenIDConnectSession(ctx(t), "code-1"))
	_, err = s.GetOpenIDConnectSession(ctx(t), "code-1", &fosite.Request{Session: openid.NewDefaultSession()})
	requireNotFound(t, err, "GetOpenIDConnectSession after delete")
	requireNilOrNotFound(t, s.DeleteOpenIDConnectSession(ctx(t), "code-1"), "DeleteOpenIDConnectSession of a deleted session")
}

func testPKCESession(t *testing.T, s storage.Store) {
	c := createClient(t, s, "app")
	areq := newAuthorizeRequest(c, "req-1", "alice", now().Add(10*time.Minute))
	require.NoError(t, s.CreatePKCERequestSession(ctx(t), "sig-1", areq))

	sess := openid.NewDefaultSession()
	got, err := s.GetPKCERequestSession(ctx(t), "sig-1", sess)
	require.NoError(t, err)
	requireRequest(t, areq, got, fosite.AuthorizeCode)
	require.Equal(t, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", got.GetRequestForm().Get("code_challenge"))
	require.Equal(t, "S256", got.GetRequestForm().Get("code_challenge_method"))

	_, err = s.GetPKCERequestSession(ctx(t), "sig-unknown", openid.NewDefaultSession())
	requireNotFound(t, err, "GetPKCERequestSession unknown")

	// fosite deletes the PKCE session before the code exchange's
	// transaction; it must outlive an exchange that fails after that, and
	// a concurrent exchange must find it so that it reaches the code's
	// single-use check: it goes when it expires with its code.
	require.NoError(t, s.DeletePKCERequestSession(ctx(t), "sig-1"))
	_, err = s.GetPKCERequestSession(ctx(t), "sig-1", openid.NewDefaultSession())
	require.NoError(t, err, "the PKCE session stays after fosite's delete")
	require.NoError(t, s.CreateAuthorizeCodeSession(ctx(t), "sig-1", areq))
	require.NoError(t, s.InvalidateAuthorizeCodeSession(ctx(t), "sig-1"))
	_, err = s.GetPKCERequestSession(ctx(t), "sig-1", openid.NewDefaultSession())
	require.NoError(t, err, "the PKCE session stays after its code was used")
	n, err := s.DeleteExpired(ctx(t), now().Add(11*time.Minute))
	require.NoError(t, err)
	require.Positive(t, n, "the clean-up after the expiry")
	_, err = s.GetPKCERequestSession(ctx(t), "sig-1", openid.NewDefaultSession())
	requireNotFound(t, err, "GetPKCERequestSession after its expiry")
}

func testPARSession(t *testing.T, s storage.Store) {
	c := createClient(t, s, "app")
	areq := newAuthorizeRequest(c, "req-1", "", now().Add(time.Minute))
	areq.ResponseMode = fosite.ResponseModeFormPost
	const uri = "urn:ietf:params:oauth:request_uri:bwc4JK-ESC0w8acc191e-Y1LTC2"
	require.NoError(t, s.CreatePARSession(ctx(t), uri, areq))

	got, err := s.GetPARSession(ctx(t), uri)
	require.NoError(t, err)
	require.NotNil(t, got)
	// What fosite's authorize handler copies out of the stored request.
	require.Equal(t, areq.RedirectURI.String(), got.GetRedirectURI().String(), "redirect URI")
	require.Equal(t, areq.ResponseTypes, got.GetResponseTypes(), "response types")
	require.Equal(t, areq.State, got.GetState(), "state")
	require.Equal(t, areq.ResponseMode, got.GetResponseMode(), "response mode")
	require.Equal(t, "req-1", got.GetID())
	require.Equal(t, "app", got.GetClient().GetID())
	require.ElementsMatch(t, areq.RequestedScope, got.GetRequestedScopes(), "requested scopes")
	require.ElementsMatch(t, areq.RequestedAudience, got.GetRequestedAudience(), "requested audience")
	require.Equal(t, areq.Form, got.GetRequestForm(), "form")
	require.NotNil(t, got.GetSession(), "session")
	require.True(t, got.GetSession().GetExpiresAt(fosite.PushedAuthorizeRequestContext).Equal(areq.Session.GetExpiresAt(fosite.PushedAuthorizeRequestContext)),
		"PAR context expiry")

	_, err = s.GetPARSession(ctx(t), "urn:ietf:params:oauth:request_uri:unknown")
	requireNotFound(t, err, "GetPARSession unknown")

	require.NoError(t, s.DeletePARSession(ctx(t), uri))
	_, err = s.GetPARSession(ctx(t), uri)
	requireNotFound(t, err, "GetPARSession after delete")
	requireNilOrNotFound(t, s.DeletePARSession(ctx(t), uri), "DeletePARSession of a deleted session")
}
