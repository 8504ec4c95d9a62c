package server_test

import (
	"context"
	"crypto/sha256"
	"net/url"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/hmac"
	"github.com/stretchr/testify/require"
)

// grant is one access and refresh token pair of one grant.
type grant struct {
	Access, Refresh string
}

// issueGrant mints the tokens an authorization code exchange would, for a
// user "alice" who granted scopes to clientID, and stores them the way
// fosite's authorize code flow does (PopulateTokenEndpointResponse). It
// uses the server's own strategy and key, so the server takes them as its
// own.
func issueGrant(t *testing.T, ts *testServer, clientID string, scopes ...string) grant {
	t.Helper()
	return mintGrant(t, ts, clientID, time.Now().UTC(), scopes...)
}

// mintGrant is issueGrant as of issuedAt: expiries follow from it, so an
// old issuedAt gives expired tokens.
func mintGrant(t *testing.T, ts *testServer, clientID string, issuedAt time.Time, scopes ...string) grant {
	t.Helper()
	ctx := context.Background()
	key := sha256.Sum256(ts.secret)
	fc := &fosite.Config{
		GlobalSecret:         key[:],
		AccessTokenLifespan:  lifespan(ts.opts.cfg.AccessTokenLifespan, time.Hour),
		RefreshTokenLifespan: lifespan(ts.opts.cfg.RefreshTokenLifespan, 720*time.Hour),
	}
	strategy := oauth2.NewHMACSHAStrategy(&hmac.HMACStrategy{Config: fc}, fc)

	client, err := ts.Store.GetClient(ctx, clientID)
	require.NoError(t, err)
	sess := openid.NewDefaultSession()
	sess.Subject = "alice"
	sess.Username = "alice" // as userSession sets it after alice signs in
	sess.SetExpiresAt(fosite.AccessToken, issuedAt.Add(fc.AccessTokenLifespan).Round(time.Second))
	sess.SetExpiresAt(fosite.RefreshToken, issuedAt.Add(fc.RefreshTokenLifespan).Round(time.Second))
	req := fosite.NewAccessRequest(sess)
	req.RequestedAt = issuedAt
	req.Client = client
	req.GrantTypes = fosite.Arguments{"authorization_code"}
	req.Form = url.Values{"grant_type": {"authorization_code"}}
	req.SetRequestedScopes(scopes)
	for _, s := range scopes {
		req.GrantScope(s)
	}

	access, accessSig, err := strategy.GenerateAccessToken(ctx, req)
	require.NoError(t, err)
	refresh, refreshSig, err := strategy.GenerateRefreshToken(ctx, req)
	require.NoError(t, err)
	require.NoError(t, ts.Store.CreateAccessTokenSession(ctx, accessSig, req.Sanitize(nil)))
	require.NoError(t, ts.Store.CreateRefreshTokenSession(ctx, refreshSig, accessSig, req.Sanitize(nil)))
	return grant{Access: access, Refresh: refresh}
}

func lifespan(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
