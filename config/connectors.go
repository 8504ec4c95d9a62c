package config

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/latchauth/latch/connector"
	"github.com/latchauth/latch/connector/ldap"
)

// Login is the login page's policy.
type Login struct {
	// PasswordForm shows the username and password form. Turn it off when
	// every person signs in through a connector: the page then offers
	// only the connectors' buttons (and passkeys).
	PasswordForm bool `yaml:"password_form"`
}

// Connector is one upstream identity provider (connectors:), shown as a
// "Sign in with NAME" button on the login page. Its redirect URI at the
// upstream is ISSUER/login/ID/callback.
type Connector struct {
	ID   string `yaml:"id"`
	Type string `yaml:"type"` // oidc | oauth2 | ldap
	Name string `yaml:"name"`
	// LinkByEmail links a first sign-in to the existing local user with
	// the same email, only when the upstream says the email is verified.
	LinkByEmail bool `yaml:"link_by_email"`
	// RefreshCheck asks the upstream again at every refresh of a grant
	// from a sign-in through this connector; default true.
	RefreshCheck   *bool    `yaml:"refresh_check"`
	AllowedDomains []string `yaml:"allowed_domains"`
	AllowedGroups  []string `yaml:"allowed_groups"`

	// oidc and oauth2.
	ClientID     string   `yaml:"client_id"`
	ClientSecret string   `yaml:"client_secret"` // stored encrypted at rest, never returned by the admin API
	Scopes       []string `yaml:"scopes"`
	Claims       Claims   `yaml:"claims"`

	// oidc.
	Issuer   string `yaml:"issuer"`
	UserInfo bool   `yaml:"userinfo"` // also read the upstream's userinfo endpoint
	Prompt   string `yaml:"prompt"`   // passed upstream (login, consent, select_account)

	// oauth2: a preset (github), or the three URLs.
	Preset      string `yaml:"preset"`
	BaseURL     string `yaml:"base_url"` // github: https://github.com or a GitHub Enterprise Server
	APIURL      string `yaml:"api_url"`  // github: default https://api.github.com, or BASE_URL/api/v3
	AuthURL     string `yaml:"auth_url"`
	TokenURL    string `yaml:"token_url"`
	UserInfoURL string `yaml:"userinfo_url"`

	// ldap: the directory, its searches and timeouts, as keys beside
	// these (allowed_groups and allowed_domains above become its Rules).
	LDAP ldap.Config `yaml:",inline"`
}

// Claims maps an upstream's claims (or user-info JSON) to a person: a
// claim path per field, keys joined by dots ("realm_access.roles").
type Claims struct {
	Subject       string `yaml:"subject"` // oauth2 only: OIDC's subject is always sub
	Username      string `yaml:"username"`
	Email         string `yaml:"email"`
	EmailVerified string `yaml:"email_verified"`
	Name          string `yaml:"name"`
	Groups        string `yaml:"groups"`
}

// ChecksRefresh is refresh_check with its default.
func (c Connector) ChecksRefresh() bool { return c.RefreshCheck == nil || *c.RefreshCheck }

// ConnectorTypes are the types a connector may have.
var ConnectorTypes = []string{"oidc", "oauth2", "ldap"}

var connectorIDRe = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)

// ParseConnector decodes one connector written as YAML or JSON (the CLI's
// file, the admin API's body), strictly, and validates it.
func ParseConnector(data []byte) (Connector, error) {
	var c Connector
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return Connector{}, fmt.Errorf("connector: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var p problems
	p.connector("connector", c)
	return c, errors.Join(p...)
}

// connectors checks each connector, and that ids are unique.
func (p *problems) connectors(list []Connector) {
	seen := map[string]int{}
	for i, c := range list {
		key := fmt.Sprintf("connectors[%d]", i)
		if j, dup := seen[c.ID]; dup && c.ID != "" {
			p.add(key+".id", "%q is already the id of connectors[%d]", c.ID, j)
		} else {
			seen[c.ID] = i
		}
		p.connector(key, c)
	}
}

func (p *problems) connector(key string, c Connector) {
	if !connectorIDRe.MatchString(c.ID) {
		p.add(key+".id", "must be 1 to 64 of a-z, 0-9 and -, got %q (it is part of the redirect URI)", c.ID)
	} else if c.ID == "mfa" {
		p.add(key+".id", "mfa is taken: /login/mfa is the second-factor page")
	}
	if c.Name == "" || len(c.Name) > 64 {
		p.add(key+".name", "must be set, at most 64 bytes (the button says \"Sign in with NAME\")")
	}
	p.words(key+".scopes", c.Scopes)
	p.words(key+".allowed_groups", c.AllowedGroups)
	p.words(key+".allowed_domains", c.AllowedDomains)
	switch c.Type {
	case "oidc":
		p.needURL(key+".issuer", c.Issuer)
		p.needClient(key, c)
		p.oneOf(key+".prompt", c.Prompt, "", "login", "consent", "select_account", "none")
		if c.Claims.Subject != "" {
			p.add(key+".claims.subject", "is for type oauth2; an OpenID Connect subject is always the ID token's sub")
		}
	case "oauth2":
		p.needClient(key, c)
		switch c.Preset {
		case "github":
			p.optionalURL(key+".base_url", c.BaseURL)
			p.optionalURL(key+".api_url", c.APIURL)
		case "":
			p.needURL(key+".auth_url", c.AuthURL)
			p.needURL(key+".token_url", c.TokenURL)
			p.needURL(key+".userinfo_url", c.UserInfoURL)
		default:
			p.add(key+".preset", "must be github or empty, got %q", c.Preset)
		}
	case "ldap":
		p.ldapConnector(key, c)
	default:
		p.add(key+".type", "must be one of %s, got %q", strings.Join(ConnectorTypes, " | "), c.Type)
	}
	if c.Type != "ldap" && !reflect.ValueOf(c.LDAP).IsZero() {
		p.add(key, "host, bind_dn, bind_password, user_search, group_search and the other directory keys are for type ldap")
	}
}

// LDAPConfig is the connector/ldap config of a type ldap connector, with
// the allow rules every type shares.
func (c Connector) LDAPConfig() ldap.Config {
	lc := c.LDAP
	lc.Rules = connector.Rules{AllowedDomains: c.AllowedDomains, AllowedGroups: c.AllowedGroups}
	return lc
}

// ldapConnector reports connector/ldap's problems under key, and the keys
// of an upstream client that a directory has no use for.
func (p *problems) ldapConnector(key string, c Connector) {
	for _, err := range c.LDAPConfig().Validate() {
		*p = append(*p, fmt.Errorf("%s.%w", key, err))
	}
	if c.ClientID != "" || c.ClientSecret != "" || len(c.Scopes) > 0 || c.Claims != (Claims{}) || c.Issuer != "" || c.UserInfo ||
		c.Prompt != "" || c.Preset != "" || c.BaseURL+c.APIURL+c.AuthURL+c.TokenURL+c.UserInfoURL != "" {
		p.add(key, "client_id, client_secret, scopes, claims, issuer, userinfo, prompt, preset and the URLs are for types oidc and oauth2, not ldap")
	}
}

func (p *problems) needClient(key string, c Connector) {
	if c.ClientID == "" {
		p.add(key+".client_id", "must be set (the client Latch is registered as at the upstream)")
	}
}

// needURL insists on an http(s) URL with a host; optionalURL too, unless
// it is empty.
func (p *problems) needURL(key, s string) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Fragment != "" {
		p.add(key, "must be an absolute http(s) URL, got %q", s)
	}
}

func (p *problems) optionalURL(key, s string) {
	if s != "" {
		p.needURL(key, s)
	}
}
