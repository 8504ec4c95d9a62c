package server_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestJWTBearerAssertionTimeCaps: a grant assertion with iat far ahead
// (and exp a minute after it, which passes fosite's exp - iat check) is
// invalid_grant, as is one whose exp is more than an hour ahead; one
// within the clock leeway passes.
func TestJWTBearerAssertionTimeCaps(t *testing.T) {
	f := newJWTBearerFixture(t)
	now := time.Now()
	tenYears := now.AddDate(10, 0, 0)
	for _, tc := range []struct {
		name     string
		iat, exp time.Time
		why      string
	}{
		{"iat ten years ahead", tenYears, tenYears.Add(time.Minute), "'iat' is more than 1m0s ahead"},
		{"iat five minutes ahead", now.Add(5 * time.Minute), now.Add(6 * time.Minute), "'iat' is more than 1m0s ahead"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			claims := with(f.assertionClaims(ciIssuer, ciSubject), map[string]any{"iat": tc.iat.Unix(), "exp": tc.exp.Unix()})
			r := f.grant(t, f.ci.sign(t, claims), "deploy")
			requireError(t, r, http.StatusBadRequest, "invalid_grant")
			require.Contains(t, r.json(t)["error_description"], tc.why)
		})
	}
	t.Run("iat within the leeway", func(t *testing.T) {
		claims := with(f.assertionClaims(ciIssuer, ciSubject), map[string]any{"iat": now.Add(20 * time.Second).Unix()})
		r := f.grant(t, f.ci.sign(t, claims), "deploy")
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	})
}

// TestPrivateKeyJWTExpCapped: a client assertion whose exp is more than
// ten minutes ahead is 401 invalid_client at every endpoint that
// authenticates clients; one of five minutes passes.
func TestPrivateKeyJWTExpCapped(t *testing.T) {
	f := newPrivateKeyJWTFixture(t)
	now := time.Now()
	for _, exp := range []time.Time{now.AddDate(10, 0, 0), now.Add(15 * time.Minute)} {
		claims := with(f.clientClaims(pkjRSAClient), map[string]any{"exp": exp.Unix()})
		r := f.token(t, f.rsa.sign(t, claims))
		requireError(t, r, http.StatusUnauthorized, "invalid_client")
		require.Contains(t, r.json(t)["error_description"], "'exp' is more than 10m0s ahead")

		tok := f.clientCredentials(t, "basic-client", "read")
		r = f.post(t, "/oauth2/introspect", "form", assertionAuth(map[string]string{"token": tok}, f.rsa.sign(t, with(claims, map[string]any{"jti": "j-" + exp.String()}))), noAuth)
		requireError(t, r, http.StatusUnauthorized, "invalid_client")
	}
	r := f.token(t, f.rsa.sign(t, f.clientClaims(pkjRSAClient)))
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
}
