// Package conformance is the one test suite every storage.Store backend must
// pass (dex's storage/conformance model). It states the contract fosite and
// Latch rely on: which sentinel each failure is, what a read returns after a
// rotation, revocation or invalidation, and what survives a clean-up.
//
// A backend's test calls Run with a constructor that returns a fresh,
// migrated and empty store and registers its own cleanup.
package conformance

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/storage"
)

type subtest struct {
	name string
	run  func(t *testing.T, s storage.Store)
}

// Run runs every conformance subtest, each against a fresh store from
// newStore.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store) {
	var all []subtest
	for _, group := range [][]subtest{
		recordTests(),
		keyTests(),
		tokenTests(),
		revocationTests(),
		codeTests(),
		expiryTests(),
		concurrencyTests(),
		singleUseTests(),
		browserTests(),
		throttleTests(),
		pagingTests(),
		deviceTests(),
		fixtureTests(),
		pendingTests(),
		factorTests(),
		backchannelTests(),
		connectorTests(),
		exchangeTests(),
	} {
		all = append(all, group...)
	}
	for _, st := range all {
		t.Run(st.name, func(t *testing.T) {
			st.run(t, newStore(t))
		})
	}
}

// now is the suite's reference instant. fosite rounds every expiry to the
// second and works in UTC, so the suite does too: a backend must give back
// what fosite gives it, not more precision than it was handed.
func now() time.Time { return time.Now().UTC().Round(time.Second) }

// requireNotFound fails unless err is fosite.ErrNotFound (which is
// storage.ErrNotFound).
func requireNotFound(t *testing.T, err error, what string) {
	t.Helper()
	require.Errorf(t, err, "%s: want ErrNotFound, got nil", what)
	require.Truef(t, errors.Is(err, fosite.ErrNotFound), "%s: want ErrNotFound, got %v", what, err)
}

// requireNilOrNotFound accepts either answer: the contract leaves open
// whether deleting something absent is an error, but it must not be any
// other error.
func requireNilOrNotFound(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		require.Truef(t, errors.Is(err, fosite.ErrNotFound), "%s: want nil or ErrNotFound, got %v", what, err)
	}
}

// testClient is a client with every field set, so a backend that drops one
// is caught by an equality check.
func testClient(id string) *clients.Client {
	t0 := now().Add(-time.Hour)
	return &clients.Client{
		ID:                      id,
		Name:                    "Client " + id,
		SecretHash:              "$2a$10$IxMdI6d.LIRZPpSfEwNoeu4rY3FhDREsxFJXikcgdRRAStxUlsuEO",
		RedirectURIs:            []string{"https://" + id + ".example.com/callback", "http://127.0.0.1:5555/cb"},
		PostLogoutRedirectURIs:  []string{"https://" + id + ".example.com/bye"},
		GrantTypes:              []string{clients.GrantAuthorizationCode, clients.GrantRefreshToken},
		ResponseTypes:           []string{"code"},
		Scopes:                  []string{"openid", "profile", "offline_access"},
		Audience:                []string{"https://api.example.com"},
		TokenEndpointAuthMethod: clients.AuthMethodBasic,
		AccessTokenFormat:       "jwt",
		RateLimit:               2.5,
		SkipConsent:             true,
		CreatedAt:               t0,
		UpdatedAt:               t0.Add(time.Minute),
	}
}

// createClient stores testClient(id) and returns it.
func createClient(t *testing.T, s storage.Store, id string) *clients.Client {
	t.Helper()
	c := testClient(id)
	require.NoError(t, s.CreateClient(t.Context(), c), "CreateClient %s", id)
	return c
}

// newSession is an OpenID Connect session for subject whose every expiry
// (access, refresh, authorize code, PAR context) is exp.
func newSession(subject string, exp time.Time) *openid.DefaultSession {
	sess := openid.NewDefaultSession()
	sess.Subject = subject
	sess.Username = subject + "-name"
	sess.Claims.Subject = subject
	sess.Claims.Issuer = "https://latch.example.com"
	for _, tt := range []fosite.TokenType{fosite.AccessToken, fosite.RefreshToken, fosite.AuthorizeCode, fosite.PushedAuthorizeRequestContext} {
		sess.SetExpiresAt(tt, exp)
	}
	return sess
}

// newRequest is the request of a token grant, as fosite hands it to the
// store.
func newRequest(c fosite.Client, requestID, subject string, exp time.Time) *fosite.Request {
	return &fosite.Request{
		ID:                requestID,
		RequestedAt:       now().Add(-time.Minute),
		Client:            c,
		RequestedScope:    fosite.Arguments{"openid", "profile", "offline_access"},
		GrantedScope:      fosite.Arguments{"openid", "offline_access"},
		RequestedAudience: fosite.Arguments{"https://api.example.com"},
		GrantedAudience:   fosite.Arguments{"https://api.example.com"},
		Form: url.Values{
			"grant_type":   {"authorization_code"},
			"redirect_uri": {"https://app.example.com/callback"},
		},
		Session: newSession(subject, exp),
	}
}

// newAuthorizeRequest is the request an authorize code, PKCE, OpenID Connect
// or PAR session is stored with.
func newAuthorizeRequest(c fosite.Client, requestID, subject string, exp time.Time) *fosite.AuthorizeRequest {
	req := newRequest(c, requestID, subject, exp)
	req.Form = url.Values{
		"response_type":         {"code"},
		"client_id":             {c.GetID()},
		"redirect_uri":          {"https://app.example.com/callback"},
		"scope":                 {"openid profile offline_access"},
		"state":                 {"state-" + requestID},
		"nonce":                 {"nonce-" + requestID},
		"code_challenge":        {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"},
		"code_challenge_method": {"S256"},
		// Values that need escaping, as real ones do.
		"claims":     {`{"id_token":{"email":{"essential":true}},"userinfo":{"name":null}}`},
		"ui_locales": {"de-CH fr &c=1"},
		"acr_values": {"urn:mace:incommon:iap:silver", "ünïcödé"},
	}
	return &fosite.AuthorizeRequest{
		ResponseTypes:        fosite.Arguments{"code"},
		RedirectURI:          &url.URL{Scheme: "https", Host: "app.example.com", Path: "/callback"},
		State:                "state-" + requestID,
		HandledResponseTypes: fosite.Arguments{},
		ResponseMode:         fosite.ResponseModeQuery,
		DefaultResponseMode:  fosite.ResponseModeQuery,
		Request:              *req,
	}
}

// requireRequest checks that got is the stored want: what fosite reads back
// from a stored request (ID, client, scopes, audience, form, session
// subject and the expiry of tt).
func requireRequest(t *testing.T, want fosite.Requester, got fosite.Requester, tt fosite.TokenType) {
	t.Helper()
	require.NotNil(t, got, "requester")
	require.Equal(t, want.GetID(), got.GetID(), "request ID")
	require.NotNil(t, got.GetClient(), "client")
	require.Equal(t, want.GetClient().GetID(), got.GetClient().GetID(), "client ID")
	require.IsType(t, &clients.Client{}, got.GetClient(), "the stored client comes back as *clients.Client")
	require.True(t, want.GetRequestedAt().Equal(got.GetRequestedAt()), "requested at: want %v, got %v", want.GetRequestedAt(), got.GetRequestedAt())
	require.ElementsMatch(t, want.GetRequestedScopes(), got.GetRequestedScopes(), "requested scopes")
	require.ElementsMatch(t, want.GetGrantedScopes(), got.GetGrantedScopes(), "granted scopes")
	require.ElementsMatch(t, want.GetRequestedAudience(), got.GetRequestedAudience(), "requested audience")
	require.ElementsMatch(t, want.GetGrantedAudience(), got.GetGrantedAudience(), "granted audience")
	require.Equal(t, want.GetRequestForm(), got.GetRequestForm(), "form")
	requireSession(t, want.GetSession(), got.GetSession(), tt)
}

// requireSession checks that got carries the subject and the expiry of tt
// that want has.
func requireSession(t *testing.T, want, got fosite.Session, tt fosite.TokenType) {
	t.Helper()
	require.NotNil(t, got, "session")
	require.Equal(t, want.GetSubject(), got.GetSubject(), "session subject")
	require.Equal(t, want.GetUsername(), got.GetUsername(), "session username")
	wantExp, gotExp := want.GetExpiresAt(tt), got.GetExpiresAt(tt)
	require.True(t, wantExp.Equal(gotExp), "session expiry of %s: want %v, got %v", tt, wantExp, gotExp)
}

// ctx is the context of one subtest.
func ctx(t *testing.T) context.Context { return t.Context() }
