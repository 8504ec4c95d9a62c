package oauth2_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/connector"
	"github.com/latchauth/latch/connector/oauth2"
	"github.com/latchauth/latch/connector/oauth2/githubtest"
)

// signIn runs the browser's part: the login URL, the stand-in's
// redirect, and the callback request it leads to.
func signIn(t *testing.T, c *oauth2.Connector, state, verifier string) (*http.Request, error) {
	t.Helper()
	login, err := c.LoginURL(state, "", verifier)
	require.NoError(t, err)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(login)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	return httptest.NewRequest(http.MethodGet, resp.Header.Get("Location"), nil), nil
}

func TestGitHubPreset(t *testing.T) {
	g := githubtest.New(t)
	ctx := context.Background()
	c, err := oauth2.NewGitHub(oauth2.GitHubConfig{BaseURL: g.URL, ClientID: githubtest.ClientID, ClientSecret: githubtest.ClientSecret,
		RedirectURL: "http://127.0.0.1:9/login/gh/callback"})
	require.NoError(t, err)

	verifier := strings.Repeat("v", 43)
	cb, err := signIn(t, c, "state-0123456789", verifier)
	require.NoError(t, err)
	require.Equal(t, "state-0123456789", cb.URL.Query().Get("state"))
	id, err := c.HandleCallback(ctx, cb, "", verifier)
	require.NoError(t, err)
	require.Equal(t, "583231", id.Subject, "the numeric id, not the login, is the subject")
	require.Equal(t, "octocat", id.Username)
	require.Equal(t, "The Octocat", id.Name)
	require.Equal(t, "octo@example.com", id.Email, "the primary verified email")
	require.True(t, id.EmailVerified)
	require.Equal(t, []string{"acme:platform", "acme:sre"}, id.Groups)
	require.Equal(t, []string{"http://127.0.0.1:9/login/gh/callback"}, g.Redirects())

	// The code is spent: the same callback again fails.
	_, err = c.HandleCallback(ctx, cb, "", verifier)
	require.Error(t, err)

	// Refresh reads /user with the kept token; a revoked token is ErrGone.
	again, err := c.Refresh(ctx, id)
	require.NoError(t, err)
	require.Equal(t, id.Subject, again.Subject)
	g.RevokeAll()
	_, err = c.Refresh(ctx, id)
	require.ErrorIs(t, err, connector.ErrGone)
}

func TestGitHubPresetRules(t *testing.T) {
	g := githubtest.New(t)
	ctx := context.Background()
	tests := []struct {
		name   string
		rules  connector.Rules
		emails []map[string]any
		denied bool
	}{
		{"allowed team", connector.Rules{AllowedGroups: []string{"acme:sre"}}, nil, false},
		{"no allowed team", connector.Rules{AllowedGroups: []string{"acme:admins"}}, nil, true},
		{"allowed domain", connector.Rules{AllowedDomains: []string{"example.com"}}, nil, false},
		{"other domain", connector.Rules{AllowedDomains: []string{"example.org"}}, nil, true},
		{"primary email unverified", connector.Rules{AllowedDomains: []string{"example.com"}},
			[]map[string]any{{"email": "octo@example.com", "primary": true, "verified": false}}, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.emails != nil {
				g.SetEmails(tt.emails)
			}
			c, err := oauth2.NewGitHub(oauth2.GitHubConfig{BaseURL: g.URL, ClientID: githubtest.ClientID, ClientSecret: githubtest.ClientSecret,
				RedirectURL: "http://127.0.0.1:9/cb", Rules: tt.rules})
			require.NoError(t, err)
			verifier := strings.Repeat("w", 43)
			cb, err := signIn(t, c, "state-rule-"+string(rune('a'+i))+"-0123", verifier)
			require.NoError(t, err)
			_, err = c.HandleCallback(ctx, cb, "", verifier)
			var denied *connector.ErrDenied
			require.Equal(t, tt.denied, errors.As(err, &denied), "error: %v", err)
		})
	}
}

func TestCallbackErrors(t *testing.T) {
	g := githubtest.New(t)
	c, err := oauth2.NewGitHub(oauth2.GitHubConfig{BaseURL: g.URL, ClientID: githubtest.ClientID, ClientSecret: githubtest.ClientSecret, RedirectURL: "http://127.0.0.1:9/cb"})
	require.NoError(t, err)
	ctx := context.Background()
	var upstream *connector.UpstreamError
	_, err = c.HandleCallback(ctx, httptest.NewRequest(http.MethodGet, "/cb?error=access_denied&state=x", nil), "", "v")
	require.True(t, errors.As(err, &upstream))
	require.Equal(t, "access_denied", upstream.Code)
	_, err = c.HandleCallback(ctx, httptest.NewRequest(http.MethodGet, "/cb?state=x", nil), "", "v")
	require.True(t, errors.As(err, &upstream))
	// A wrong PKCE verifier: the code is refused.
	cb, err := signIn(t, c, "state-pkce-0123456", strings.Repeat("a", 43))
	require.NoError(t, err)
	_, err = c.HandleCallback(ctx, cb, "", strings.Repeat("b", 43))
	require.Error(t, err)
}
