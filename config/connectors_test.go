package config

import (
	"strings"
	"testing"
)

func TestConnectorsValid(t *testing.T) {
	f := parse(t, `
login: {password_form: false}
connectors:
  - {id: corp, type: oidc, name: Corp SSO, issuer: "https://sso.example.com", client_id: latch, client_secret: s,
     scopes: [openid, email], claims: {groups: realm_access.roles}, prompt: login, allowed_domains: [example.com]}
  - {id: gh, type: oauth2, preset: github, name: GitHub, client_id: c, client_secret: s}
  - {id: ghe, type: oauth2, preset: github, name: GHE, base_url: "https://git.example.com", client_id: c}
  - {id: other, type: oauth2, name: Other, client_id: c, auth_url: "https://o.example/a", token_url: "https://o.example/t",
     userinfo_url: "https://o.example/me", claims: {subject: id, username: login}, refresh_check: false}
`)
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	if f.Login.PasswordForm || !f.Connectors[0].ChecksRefresh() || f.Connectors[3].ChecksRefresh() {
		t.Errorf("decoded %+v", f)
	}
}

func TestConnectorsInvalid(t *testing.T) {
	f := parse(t, `
connectors:
  - {id: Corp, type: oidc, name: Corp, issuer: "ftp://x", client_id: c}
  - {id: corp, type: oidc, name: "", client_id: "", issuer: "https://x.example", prompt: always, claims: {subject: id}}
  - {id: corp, type: saml, name: Dup}
  - {id: mfa, type: oauth2, name: M, client_id: c}
  - {id: gh, type: oauth2, preset: gitlab, name: G, client_id: c}
  - {id: dir, type: ldap, name: Directory}
  - {id: sc, type: oauth2, preset: github, name: S, client_id: c, base_url: "not a url", scopes: ["two words"]}
`)
	err := f.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"connectors[0].id: must be 1 to 64 of a-z",
		"connectors[0].issuer: must be an absolute http(s) URL",
		"connectors[1].name: must be set",
		"connectors[1].client_id: must be set",
		"connectors[1].prompt: must be one of",
		"connectors[1].claims.subject: is for type oauth2",
		`connectors[2].id: "corp" is already the id of connectors[1]`,
		`connectors[2].type: must be one of oidc | oauth2 | ldap, got "saml"`,
		"connectors[3].id: mfa is taken",
		"connectors[3].auth_url: must be an absolute http(s) URL",
		"connectors[4].preset: must be github or empty",
		"connectors[5].type: type ldap is not built in",
		"connectors[6].base_url: must be an absolute http(s) URL",
		"connectors[6].scopes[0]: must be non-empty and without spaces",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("no problem %q in:\n%v", want, err)
		}
	}
}

func TestParseConnectorStrict(t *testing.T) {
	if _, err := ParseConnector([]byte(`{"id":"x","type":"oidc","name":"X","issuer":"https://x.example","client_id":"c","colour":"red"}`)); err == nil ||
		!strings.Contains(err.Error(), "colour") {
		t.Errorf("unknown key: %v", err)
	}
	c, err := ParseConnector([]byte(`{"id":"x","type":"oidc","name":"X","issuer":"https://x.example","client_id":"c"}`))
	if err != nil || c.Issuer != "https://x.example" {
		t.Errorf("JSON connector: %+v %v", c, err)
	}
}
