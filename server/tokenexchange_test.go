package server_test

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/storage"
)

// RFC 8693 token exchange, through real HTTP: golang.org/x/oauth2's
// client credentials client (which lets a caller set grant_type and add
// parameters) where a library fits, plain form posts for the rest.

const (
	grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	ttAccess           = "urn:ietf:params:oauth:token-type:access_token"
	ttRefresh          = "urn:ietf:params:oauth:token-type:refresh_token"
	ttIDToken          = "urn:ietf:params:oauth:token-type:id_token"
	ttJWT              = "urn:ietf:params:oauth:token-type:jwt"
	billingAPI         = "https://billing.example.com"
)

// newExchangeFixture is a server with two exchanging clients besides the
// usual ones:
//
//	gateway  a web app (code flow, client credentials) that may delegate
//	         to "api" and billingAPI; no impersonation, no refresh tokens
//	api      a service that may delegate or impersonate to billingAPI and
//	         obtain refresh tokens
func newExchangeFixture(t *testing.T, opts ...option) *testServer {
	t.Helper()
	ts := newTestServer(t, opts...)
	ts.addClient(t, &clients.Client{ID: "gateway", TokenEndpointAuthMethod: clients.AuthMethodBasic,
		GrantTypes:    []string{"authorization_code", "refresh_token", "client_credentials", grantTokenExchange},
		ResponseTypes: []string{"code"}, RedirectURIs: []string{callback}, SkipConsent: true,
		Scopes:        []string{"openid", "profile", "email", "offline_access", "read", "write"},
		TokenExchange: &clients.TokenExchangePolicy{Audiences: []string{"api", billingAPI}}})
	ts.addClient(t, &clients.Client{ID: "api", TokenEndpointAuthMethod: clients.AuthMethodBasic,
		GrantTypes:    []string{"client_credentials", "refresh_token", grantTokenExchange},
		Scopes:        []string{"read", "offline_access"},
		TokenExchange: &clients.TokenExchangePolicy{Audiences: []string{billingAPI}, Impersonation: true, RefreshTokens: true}})
	return ts
}

// exchangeAs posts a token exchange request as clientID.
func (ts *testServer) exchangeAs(t *testing.T, clientID string, fields map[string]string) response {
	t.Helper()
	all := map[string]string{"grant_type": grantTokenExchange}
	for k, v := range fields {
		all[k] = v
	}
	return ts.post(t, "/oauth2/token", "form", all, ts.as(clientID))
}

// exchangeOK is exchangeAs that must succeed; it returns the answer.
func (ts *testServer) exchangeOK(t *testing.T, clientID string, fields map[string]string) map[string]any {
	t.Helper()
	r := ts.exchangeAs(t, clientID, fields)
	require.Equal(t, http.StatusOK, r.Status, "token exchange: %s", r.Body)
	require.Contains(t, r.Header.Get("Cache-Control"), "no-store")
	return r.json(t)
}

// fieldsWith is a copy of base with changes; an empty value removes a
// field.
func fieldsWith(base, changes map[string]string) map[string]string {
	out := maps.Clone(base)
	for k, v := range changes {
		if v == "" {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// introspected is the introspection of an active token.
func (ts *testServer) introspected(t *testing.T, token string) map[string]any {
	t.Helper()
	r := ts.introspect(t, token)
	require.Equal(t, http.StatusOK, r.Status, "introspect: %s", r.Body)
	got := r.json(t)
	require.Equal(t, true, got["active"], "active: %s", r.Body)
	return got
}

// exchangeConfig is x/oauth2's client credentials client doing a token
// exchange as clientID.
func (ts *testServer) exchangeConfig(clientID string, params url.Values) *clientcredentials.Config {
	params.Set("grant_type", grantTokenExchange)
	return &clientcredentials.Config{ClientID: clientID, ClientSecret: ts.secrets[clientID], TokenURL: ts.URL + "/oauth2/token",
		AuthStyle: oauth2.AuthStyleInHeader, EndpointParams: params}
}

// Delegation (§1.1): the gateway hands in alice's token and its own; the
// new token is alice's, for billingAPI, with act naming the gateway.
func TestTokenExchangeDelegationWithOAuth2Client(t *testing.T) {
	ts := newExchangeFixture(t)
	alice := issueGrant(t, ts, "gateway", "read", "write")
	actor := ts.clientCredentials(t, "gateway", "read")

	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, ts.http)
	tok, err := ts.exchangeConfig("gateway", url.Values{
		"subject_token": {alice.Access}, "subject_token_type": {ttAccess},
		"actor_token": {actor}, "actor_token_type": {ttAccess},
		"audience": {billingAPI}, "scope": {"read"},
	}).Token(ctx)
	require.NoError(t, err)
	require.Equal(t, "Bearer", tok.Type())
	require.Equal(t, ttAccess, tok.Extra("issued_token_type"))
	require.Equal(t, "read", tok.Extra("scope"))
	require.WithinDuration(t, time.Now().Add(time.Hour), tok.Expiry, 10*time.Second)

	got := ts.introspected(t, tok.AccessToken)
	require.Equal(t, "alice", got["sub"])
	require.Equal(t, "gateway", got["client_id"])
	require.Equal(t, "read", got["scope"])
	require.Equal(t, []any{billingAPI}, got["aud"])
	require.Equal(t, map[string]any{"sub": "gateway"}, got["act"], "RFC 8693 §4.1: the actor")
	require.True(t, ts.active(t, alice.Access), "the subject token is not spent")

	t.Run("an x/oauth2 error is the RFC's", func(t *testing.T) {
		_, err := ts.exchangeConfig("gateway", url.Values{
			"subject_token": {alice.Access}, "subject_token_type": {ttAccess},
			"actor_token": {actor}, "actor_token_type": {ttAccess}, "audience": {"https://elsewhere.example.com"},
		}).Token(ctx)
		var re *oauth2.RetrieveError
		require.True(t, errors.As(err, &re), "a RetrieveError: %v", err)
		require.Equal(t, "invalid_target", re.ErrorCode)
		require.Equal(t, http.StatusBadRequest, re.Response.StatusCode)
	})
}

// A chain of delegations nests act (§4.1): the current actor on top, the
// earlier one inside.
func TestTokenExchangeNestedAct(t *testing.T) {
	ts := newExchangeFixture(t)
	alice := issueGrant(t, ts, "gateway", "read")
	first := ts.exchangeOK(t, "gateway", map[string]string{
		"subject_token": alice.Access, "subject_token_type": ttAccess,
		"actor_token": ts.clientCredentials(t, "gateway", "read"), "actor_token_type": ttAccess,
		"audience": "api",
	})["access_token"].(string)

	// The first exchanged token names "api" in its audience, so api may
	// exchange it in turn.
	second := ts.exchangeOK(t, "api", map[string]string{
		"subject_token": first, "subject_token_type": ttAccess,
		"actor_token": ts.clientCredentials(t, "api", "read"), "actor_token_type": ttAccess,
		"audience": billingAPI,
	})["access_token"].(string)
	got := ts.introspected(t, second)
	require.Equal(t, "alice", got["sub"])
	require.Equal(t, map[string]any{"sub": "api", "act": map[string]any{"sub": "gateway"}}, got["act"])

	// Impersonating a delegated token keeps who acted before.
	third := ts.exchangeOK(t, "api", map[string]string{"subject_token": first, "subject_token_type": ttAccess})["access_token"].(string)
	require.Equal(t, map[string]any{"sub": "gateway"}, ts.introspected(t, third)["act"])
}

// Without an actor_token the exchange is impersonation: refused unless the
// client's policy allows it, and then the token carries no act.
func TestTokenExchangeImpersonation(t *testing.T) {
	ts := newExchangeFixture(t)
	r := ts.exchangeAs(t, "gateway", map[string]string{"subject_token": issueGrant(t, ts, "gateway", "read").Access, "subject_token_type": ttAccess})
	requireError(t, r, http.StatusBadRequest, "invalid_request")
	require.Contains(t, r.json(t)["error_description"], "impersonate")

	// api may impersonate; alice's token names api in its audience.
	subject := ts.exchangeOK(t, "gateway", map[string]string{
		"subject_token": issueGrant(t, ts, "gateway", "read").Access, "subject_token_type": ttAccess,
		"actor_token": ts.clientCredentials(t, "gateway", "read"), "actor_token_type": ttAccess, "audience": "api",
	})["access_token"].(string)
	reissue := issueGrant(t, ts, "api", "read").Access // a token api holds for alice, without act
	for _, tok := range []string{reissue} {
		out := ts.exchangeOK(t, "api", map[string]string{"subject_token": tok, "subject_token_type": ttAccess, "resource": billingAPI})
		got := ts.introspected(t, out["access_token"].(string))
		require.Equal(t, "alice", got["sub"])
		require.NotContains(t, got, "act", "impersonation leaves no trace of the actor")
		require.Equal(t, []any{billingAPI}, got["aud"], "resource is a target like audience")
	}
	require.True(t, ts.active(t, subject))
}

// Scopes never widen (§5): asked scopes must be the subject token's and
// the client's; none asked gives their intersection.
func TestTokenExchangeScopes(t *testing.T) {
	ts := newExchangeFixture(t)
	alice := issueGrant(t, ts, "gateway", "read", "write", "openid")
	actor := ts.clientCredentials(t, "gateway", "read")
	base := map[string]string{"subject_token": alice.Access, "subject_token_type": ttAccess, "actor_token": actor, "actor_token_type": ttAccess}
	with := func(k, v string) map[string]string { return fieldsWith(base, map[string]string{k: v}) }
	requireError(t, ts.exchangeAs(t, "gateway", with("scope", "read offline_access")), http.StatusBadRequest, "invalid_scope")
	requireError(t, ts.exchangeAs(t, "gateway", with("scope", "admin")), http.StatusBadRequest, "invalid_scope")
	require.Equal(t, "read write openid", ts.exchangeOK(t, "gateway", base)["scope"])

	// api is allowed read and offline_access only: of alice's read and
	// write, it gets read.
	sub := ts.exchangeOK(t, "gateway", with("audience", "api"))["access_token"].(string)
	require.Equal(t, "read", ts.exchangeOK(t, "api", map[string]string{"subject_token": sub, "subject_token_type": ttAccess})["scope"])
	requireError(t, ts.exchangeAs(t, "api", map[string]string{"subject_token": sub, "subject_token_type": ttAccess, "scope": "write"}),
		http.StatusBadRequest, "invalid_scope")
}

// Targets (§2.1 audience and resource) must each be in the policy:
// otherwise invalid_target (§2.2.2), as is a resource that is not an
// absolute URI.
func TestTokenExchangeInvalidTarget(t *testing.T) {
	ts := newExchangeFixture(t)
	alice := issueGrant(t, ts, "gateway", "read")
	actor := ts.clientCredentials(t, "gateway", "read")
	for name, target := range map[string][2]string{
		"audience not in the policy":    {"audience", "https://other.example.com"},
		"resource not in the policy":    {"resource", "https://other.example.com/"},
		"resource not absolute":         {"resource", "billing"},
		"resource with a fragment":      {"resource", billingAPI + "#x"},
		"the client's own registration": {"audience", "https://api.example.com"},
	} {
		t.Run(name, func(t *testing.T) {
			r := ts.exchangeAs(t, "gateway", map[string]string{"subject_token": alice.Access, "subject_token_type": ttAccess,
				"actor_token": actor, "actor_token_type": ttAccess, target[0]: target[1]})
			requireError(t, r, http.StatusBadRequest, "invalid_target")
		})
	}
	// Several targets at once, each allowed, repeated parameters.
	form := url.Values{"grant_type": {grantTokenExchange}, "subject_token": {alice.Access}, "subject_token_type": {ttAccess},
		"actor_token": {actor}, "actor_token_type": {ttAccess}, "audience": {"api", billingAPI}, "resource": {billingAPI}}
	r := ts.raw(t, http.MethodPost, "/oauth2/token", "application/x-www-form-urlencoded", form.Encode(), ts.as("gateway"))
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, []any{"api", billingAPI}, ts.introspected(t, r.json(t)["access_token"].(string))["aud"])
}

// The requested token types (§2.1, §3): a JWT access token (RFC 9068)
// with act; an ID token (token_type N_A) that go-oidc verifies; a
// refresh token only where the policy allows.
func TestTokenExchangeRequestedTokenTypes(t *testing.T) {
	ts := newExchangeFixture(t)
	alice := issueGrant(t, ts, "gateway", "read", "openid")
	delegate := map[string]string{"subject_token": alice.Access, "subject_token_type": ttAccess,
		"actor_token": ts.clientCredentials(t, "gateway", "read"), "actor_token_type": ttAccess}
	with := func(extra map[string]string) map[string]string { return fieldsWith(delegate, extra) }

	t.Run("jwt", func(t *testing.T) {
		out := ts.exchangeOK(t, "gateway", with(map[string]string{"requested_token_type": ttJWT, "audience": billingAPI}))
		require.Equal(t, ttJWT, out["issued_token_type"])
		require.Equal(t, "bearer", strings.ToLower(out["token_type"].(string)))
		tok := out["access_token"].(string)
		claims := verifyAccessJWT(t, ts, tok).claims
		require.Equal(t, "alice", claims["sub"])
		require.Equal(t, map[string]any{"sub": "gateway"}, claims["act"])
		require.Equal(t, []any{billingAPI}, claims["aud"])
		require.Equal(t, map[string]any{"sub": "gateway"}, ts.introspected(t, tok)["act"], "stored like any token")

		// A JWT access token of Latch's is a subject token too, as either
		// type; gateway is its client.
		for _, typ := range []string{ttAccess, ttJWT} {
			again := ts.exchangeOK(t, "gateway", map[string]string{"subject_token": tok, "subject_token_type": typ,
				"actor_token": delegate["actor_token"], "actor_token_type": ttAccess, "audience": "api"})
			got := ts.introspected(t, again["access_token"].(string))
			require.Equal(t, "alice", got["sub"])
			require.Equal(t, map[string]any{"sub": "gateway", "act": map[string]any{"sub": "gateway"}}, got["act"])
		}
	})
	t.Run("id_token", func(t *testing.T) {
		out := ts.exchangeOK(t, "gateway", with(map[string]string{"requested_token_type": ttIDToken}))
		require.Equal(t, ttIDToken, out["issued_token_type"])
		require.Equal(t, "N_A", out["token_type"], "§2.2.1: not an access token")
		_, claims := ts.verifyIDToken(t, out["access_token"].(string), "gateway")
		require.Equal(t, "alice", claims["sub"])
		require.Equal(t, map[string]any{"sub": "gateway"}, claims["act"])
	})
	t.Run("refresh_token refused by the policy", func(t *testing.T) {
		r := ts.exchangeAs(t, "gateway", with(map[string]string{"requested_token_type": ttRefresh}))
		requireError(t, r, http.StatusBadRequest, "invalid_request")
	})
	t.Run("refresh_token where the policy allows", func(t *testing.T) {
		sub := issueGrant(t, ts, "api", "read", "offline_access")
		out := ts.exchangeOK(t, "api", map[string]string{"subject_token": sub.Access, "subject_token_type": ttAccess, "requested_token_type": ttRefresh})
		require.Equal(t, ttRefresh, out["issued_token_type"])
		require.Equal(t, "N_A", out["token_type"])
		refreshed := ts.refreshOK(t, "api", out["access_token"].(string))
		require.Equal(t, "alice", ts.introspected(t, refreshed.Access)["sub"])
	})
	t.Run("unknown type", func(t *testing.T) {
		r := ts.exchangeAs(t, "gateway", with(map[string]string{"requested_token_type": "urn:ietf:params:oauth:token-type:saml2"}))
		requireError(t, r, http.StatusBadRequest, "invalid_request")
	})
}

// An ID token Latch issued is a subject token: alice signs in to the
// gateway, which exchanges her ID token. It says who she is, not what
// she allowed: the new token carries openid alone.
func TestTokenExchangeIDTokenSubject(t *testing.T) {
	ts := newExchangeFixture(t)
	tk := codeFlow(t, ts.newBrowser(t), "gateway", nil)
	actor := ts.clientCredentials(t, "gateway", "read")
	for _, typ := range []string{ttIDToken, ttJWT} {
		out := ts.exchangeOK(t, "gateway", map[string]string{"subject_token": tk.ID, "subject_token_type": typ,
			"actor_token": actor, "actor_token_type": ttAccess, "audience": billingAPI})
		got := ts.introspected(t, out["access_token"].(string))
		require.Equal(t, "alice", got["sub"])
		require.Equal(t, "openid", got["scope"])
	}
	// Another client's ID token is not the gateway's to exchange.
	other := codeFlow(t, ts.newBrowser(t), "skip-client", nil)
	r := ts.exchangeAs(t, "gateway", map[string]string{"subject_token": other.ID, "subject_token_type": ttIDToken,
		"actor_token": actor, "actor_token_type": ttAccess})
	requireError(t, r, http.StatusBadRequest, "invalid_request")
	// A tampered ID token.
	parts := strings.Split(tk.ID, ".")
	r = ts.exchangeAs(t, "gateway", map[string]string{"subject_token": parts[0] + "." + parts[1] + ".AAAA", "subject_token_type": ttIDToken,
		"actor_token": actor, "actor_token_type": ttAccess})
	requireError(t, r, http.StatusBadRequest, "invalid_request")
	// An access token presented as an ID token.
	r = ts.exchangeAs(t, "gateway", map[string]string{"subject_token": tk.Access, "subject_token_type": ttIDToken,
		"actor_token": actor, "actor_token_type": ttAccess})
	requireError(t, r, http.StatusBadRequest, "invalid_request")
}

// A JWT of a trusted_issuers entry is a subject token, checked as an RFC
// 7523 assertion: signature, aud, exp, and a jti used once. Its scopes
// are those the entry grants.
func TestTokenExchangeTrustedIssuerSubject(t *testing.T) {
	ts := newExchangeFixture(t)
	ci := newTestKey(t, jose.ES256, "ci-1")
	ts.trust(t, storage.TrustedIssuer{Issuer: ciIssuer, Subject: ciSubject, Scopes: []string{"read"}, JWKS: ci.jwks(t)})
	actor := ts.clientCredentials(t, "gateway", "read")
	fields := func(subject string) map[string]string {
		return map[string]string{"subject_token": subject, "subject_token_type": ttJWT,
			"actor_token": actor, "actor_token_type": ttAccess, "audience": billingAPI}
	}
	jwt := ci.sign(t, ts.assertionClaims(ciIssuer, ciSubject))
	out := ts.exchangeOK(t, "gateway", fields(jwt))
	got := ts.introspected(t, out["access_token"].(string))
	require.Equal(t, ciSubject, got["sub"])
	require.Equal(t, "read", got["scope"], "the entry's scopes, not the client's")

	requireError(t, ts.exchangeAs(t, "gateway", fields(jwt)), http.StatusBadRequest, "invalid_request") // jti replayed

	// As the actor, a trusted JWT names its issuer in act.
	byCI := ts.exchangeOK(t, "gateway", map[string]string{"subject_token": issueGrant(t, ts, "gateway", "read").Access,
		"subject_token_type": ttAccess, "actor_token": ci.sign(t, ts.assertionClaims(ciIssuer, ciSubject)), "actor_token_type": ttJWT})
	require.Equal(t, map[string]any{"sub": ciSubject, "iss": ciIssuer}, ts.introspected(t, byCI["access_token"].(string))["act"])

	// Used once under concurrency: of 8 exchanges of one JWT, one wins.
	once := ci.sign(t, ts.assertionClaims(ciIssuer, ciSubject))
	won := 0
	for _, r := range ts.raceForm(t, 8, "/oauth2/token", fieldsWith(fields(once), map[string]string{"grant_type": grantTokenExchange}), ts.as("gateway")) {
		if r.Status == http.StatusOK {
			won++
			continue
		}
		requireError(t, r, http.StatusBadRequest, "invalid_request")
	}
	require.Equal(t, 1, won, "exactly one concurrent exchange of one jti succeeds")
	stranger := newTestKey(t, jose.ES256, "x")
	requireError(t, ts.exchangeAs(t, "gateway", fields(stranger.sign(t, ts.assertionClaims("https://stranger.example.com", "x")))),
		http.StatusBadRequest, "invalid_request")
	requireError(t, ts.exchangeAs(t, "gateway", fields(ci.sign(t, with(ts.assertionClaims(ciIssuer, ciSubject), map[string]any{"aud": "https://elsewhere"})))),
		http.StatusBadRequest, "invalid_request")
	requireError(t, ts.exchangeAs(t, "gateway", fields(ci.sign(t, with(ts.assertionClaims(ciIssuer, ciSubject), map[string]any{"exp": time.Now().Add(-time.Minute).Unix()})))),
		http.StatusBadRequest, "invalid_request")
	requireError(t, ts.exchangeAs(t, "gateway", map[string]string{"subject_token": ci.sign(t, ts.assertionClaims(ciIssuer, ciSubject)),
		"subject_token_type": ttJWT, "actor_token": actor, "actor_token_type": ttAccess, "scope": "write"}),
		http.StatusBadRequest, "invalid_scope")
}

// Discovery lists the grant only while some client may use it.
func TestTokenExchangeDiscovery(t *testing.T) {
	ts := newTestServer(t)
	grants := func() []any {
		r := ts.get(t, "/.well-known/openid-configuration")
		require.Equal(t, http.StatusOK, r.Status)
		return r.json(t)["grant_types_supported"].([]any)
	}
	require.NotContains(t, grants(), grantTokenExchange)
	ts2 := newExchangeFixture(t)
	r := ts2.get(t, "/.well-known/oauth-authorization-server")
	require.Contains(t, r.json(t)["grant_types_supported"], grantTokenExchange)
}
