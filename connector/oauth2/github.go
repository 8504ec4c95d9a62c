package oauth2

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/latchauth/latch/connector"
)

// GitHub's documented OAuth app endpoints
// (docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps)
// and REST API: GET /user, GET /user/emails (needs user:email), GET
// /user/teams (needs read:org).

// GitHubConfig is the github preset.
type GitHubConfig struct {
	// BaseURL is where people sign in: https://github.com, or a GitHub
	// Enterprise Server's address.
	BaseURL string
	// APIURL is the REST API: https://api.github.com, or for GitHub
	// Enterprise Server BaseURL + "/api/v3" (the default when BaseURL is
	// not github.com).
	APIURL       string
	ClientID     string
	ClientSecret string
	RedirectURL  string
	// Scopes default to user:email and read:org; without read:org GitHub
	// lists no teams, and the person has no groups.
	Scopes []string
	Rules  connector.Rules
	// Timeout bounds each call to GitHub (default 10 s).
	Timeout time.Duration
}

// NewGitHub makes the github preset: the user's numeric id is the subject
// (a login can be renamed and reused), the login the username, the
// primary verified email the email, and teams as "org:team-slug" groups.
func NewGitHub(cfg GitHubConfig) (*Connector, error) {
	if cfg.ClientID == "" || cfg.RedirectURL == "" {
		return nil, errors.New("github connector: client_id and the redirect URL are required")
	}
	base := strings.TrimSuffix(cfg.BaseURL, "/")
	if base == "" {
		base = "https://github.com"
	}
	api := strings.TrimSuffix(cfg.APIURL, "/")
	switch {
	case api != "":
	case base == "https://github.com":
		api = "https://api.github.com"
	default:
		api = base + "/api/v3"
	}
	scopes := cfg.Scopes
	if len(scopes) == 0 {
		scopes = []string{"user:email", "read:org"}
	}
	c := newConnector(cfg.ClientID, cfg.ClientSecret, cfg.RedirectURL,
		base+"/login/oauth/authorize", base+"/login/oauth/access_token", scopes, cfg.Rules, cfg.Timeout)
	c.person = func(ctx context.Context, client *http.Client) (connector.Identity, error) {
		return githubPerson(ctx, client, api)
	}
	return c, nil
}

type githubUser struct {
	ID    int64  `json:"id"`
	Login string `json:"login"`
	Name  string `json:"name"`
}

type githubEmail struct {
	Email    string `json:"email"`
	Primary  bool   `json:"primary"`
	Verified bool   `json:"verified"`
}

type githubTeam struct {
	Slug         string `json:"slug"`
	Organization struct {
		Login string `json:"login"`
	} `json:"organization"`
}

// maxTeams bounds the teams read (GitHub pages them 100 at a time).
const maxTeams = 100

func githubPerson(ctx context.Context, client *http.Client, api string) (connector.Identity, error) {
	var u githubUser
	if err := getJSON(ctx, client, api+"/user", &u); err != nil {
		return connector.Identity{}, err
	}
	if u.ID == 0 {
		return connector.Identity{}, errors.New("github connector: /user has no id")
	}
	id := connector.Identity{Subject: strconv.FormatInt(u.ID, 10), Username: u.Login, Name: u.Name}
	var emails []githubEmail
	if err := getJSON(ctx, client, api+"/user/emails", &emails); err != nil {
		return connector.Identity{}, err
	}
	for _, e := range emails {
		// The primary address, and only when GitHub verified it: an
		// unverified one is whatever someone typed.
		if e.Primary && e.Verified {
			id.Email, id.EmailVerified = e.Email, true
		}
	}
	var teams []githubTeam
	if err := getJSON(ctx, client, api+"/user/teams?per_page="+strconv.Itoa(maxTeams), &teams); err != nil {
		return connector.Identity{}, err
	}
	for _, t := range teams {
		id.Groups = append(id.Groups, t.Organization.Login+":"+t.Slug)
	}
	return id, nil
}
