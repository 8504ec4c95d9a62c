package config

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
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
  - id: dir
    type: ldap
    name: Directory
    host: ldap.example.com:389
    start_tls: true
    root_ca: /etc/latch/ldap-ca.pem
    bind_dn: cn=latch,ou=services,dc=example,dc=org
    bind_password: s
    user_search: {base_dn: "ou=people,dc=example,dc=org", filter: "(objectClass=person)", username: uid, id_attr: entryUUID, email_attr: mail}
    group_search: {base_dn: "ou=groups,dc=example,dc=org", user_matchers: [{user_attr: DN, group_attr: member}], name_attr: cn}
    allowed_groups: [staff]
    timeouts: {operation: 5s}
`)
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	if f.Login.PasswordForm || !f.Connectors[0].ChecksRefresh() || f.Connectors[3].ChecksRefresh() {
		t.Errorf("decoded %+v", f)
	}
	if lc := f.Connectors[4].LDAPConfig(); lc.Host != "ldap.example.com:389" || !lc.StartTLS || lc.UserSearch.IDAttr != "entryUUID" ||
		lc.Timeouts.Operation != 5*time.Second || len(lc.Rules.AllowedGroups) != 1 {
		t.Errorf("ldap connector decoded %+v", lc)
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
  - {id: dir2, type: ldap, name: D, host: "ldap.example.com:636", user_search: {base_dn: "dc=x", username: uid, id_attr: DN},
     client_id: c, allowed_groups: [staff]}
  - {id: corp2, type: oidc, name: C, issuer: "https://x.example", client_id: c, bind_dn: "cn=x"}
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
		"connectors[5].host: must be host:port",
		"connectors[5].user_search.base_dn: must be set",
		"connectors[7].allowed_groups: needs group_search.base_dn",
		"connectors[7]: client_id, client_secret, scopes, claims, issuer, userinfo, prompt, preset and the URLs are for types oidc and oauth2, not ldap",
		"connectors[8]: host, bind_dn, bind_password, user_search, group_search and the other directory keys are for type ldap",
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

// TestConnectorRoundTrip: a connector written back as YAML (as the store
// keeps it) parses to the same connector, and one of another type carries
// no directory keys.
func TestConnectorRoundTrip(t *testing.T) {
	for _, src := range []string{
		`{"id":"corp","type":"oidc","name":"C","issuer":"https://x.example","client_id":"c"}`,
		`{"id":"dir","type":"ldap","name":"D","host":"ldap.example.com:636","bind_dn":"cn=x,dc=example,dc=org","bind_password":"p",
		  "user_search":{"base_dn":"dc=example,dc=org","username":"uid","id_attr":"DN"},
		  "group_search":{"base_dn":"dc=example,dc=org","name_attr":"cn","user_matchers":[{"user_attr":"DN","group_attr":"member"}]},
		  "allowed_groups":["staff"],"timeouts":{"operation":"3s"}}`,
	} {
		c, err := ParseConnector([]byte(src))
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseConnector(out)
		if err != nil {
			t.Fatalf("written back:\n%s\n%v", out, err)
		}
		if twice, _ := yaml.Marshal(again); string(twice) != string(out) || again.LDAPConfig().Host != c.LDAPConfig().Host {
			t.Errorf("round trip:\n%s\n%s", out, twice)
		}
		if c.Type != "ldap" && strings.Contains(string(out), "user_search") {
			t.Errorf("an %s connector written with directory keys:\n%s", c.Type, out)
		}
	}
}
