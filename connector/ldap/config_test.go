package ldap

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/latchauth/latch/connector"
)

func validConfig() Config {
	return Config{
		Host:         "ldap.example.com:636",
		BindDN:       "cn=latch,ou=services,dc=example,dc=org",
		BindPassword: "s",
		UserSearch:   UserSearch{BaseDN: "ou=people,dc=example,dc=org", Filter: "(objectClass=person)", Username: "uid", IDAttr: "entryUUID", EmailAttr: "mail", NameAttr: "cn"},
		GroupSearch: GroupSearch{BaseDN: "ou=groups,dc=example,dc=org", NameAttr: "cn",
			UserMatchers: []UserMatcher{{UserAttr: "DN", GroupAttr: "member"}, {UserAttr: "uid", GroupAttr: "memberUid"}}},
		Rules: connector.Rules{AllowedGroups: []string{"admins"}},
	}
}

func TestValidate(t *testing.T) {
	if errs := validConfig().Validate(); len(errs) != 0 {
		t.Fatalf("a valid config: %v", errs)
	}
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no port", func(c *Config) { c.Host = "ldap.example.com" }, "host: must be host:port"},
		{"port 0", func(c *Config) { c.Host = "ldap.example.com:0" }, "host: port must be a number"},
		{"plain LDAP off the machine", func(c *Config) { c.InsecureNoSSL = true }, "insecure_no_ssl: plain LDAP sends passwords in the clear"},
		{"StartTLS and plain", func(c *Config) { c.Host, c.InsecureNoSSL, c.StartTLS = "127.0.0.1:389", true, true }, "start_tls: and insecure_no_ssl contradict"},
		{"plain with a root CA", func(c *Config) { c.Host, c.InsecureNoSSL, c.RootCA = "127.0.0.1:389", true, "ca.pem" }, "insecure_no_ssl: has no TLS"},
		{"skip verify and a root CA", func(c *Config) { c.InsecureSkipVerify, c.RootCA = true, "ca.pem" }, "insecure_skip_verify: ignores root_ca"},
		{"bind DN without password", func(c *Config) { c.BindPassword = "" }, "bind_password: must be set when bind_dn is"},
		{"password without bind DN", func(c *Config) { c.BindDN = "" }, "bind_dn: must be set when bind_password is"},
		{"bad bind DN", func(c *Config) { c.BindDN = "latch" }, "bind_dn: is not a distinguished name"},
		{"no base", func(c *Config) { c.UserSearch.BaseDN = "" }, "user_search.base_dn: must be set"},
		{"bad filter", func(c *Config) { c.UserSearch.Filter = "objectClass=person" }, "user_search.filter: is not an LDAP filter"},
		{"filter with a tail", func(c *Config) { c.UserSearch.Filter = "(a=b))(|(c=*" }, "user_search.filter: is not an LDAP filter"},
		{"no username attribute", func(c *Config) { c.UserSearch.Username = "" }, "user_search.username: must be set"},
		{"username attribute that would inject", func(c *Config) { c.UserSearch.Username = "uid)(cn=*" }, "user_search.username: is not an attribute name"},
		{"username DN", func(c *Config) { c.UserSearch.Username = "dn" }, "user_search.username: cannot be DN"},
		{"no id attribute", func(c *Config) { c.UserSearch.IDAttr = "" }, "user_search.id_attr: must be set"},
		{"group keys without a base", func(c *Config) { c.GroupSearch.BaseDN, c.Rules.AllowedGroups = "", nil }, "group_search.base_dn: must be set when any other"},
		{"allowed groups without a group search", func(c *Config) { c.GroupSearch = GroupSearch{} }, "allowed_groups: needs group_search.base_dn"},
		{"no matchers", func(c *Config) { c.GroupSearch.UserMatchers = nil }, "group_search.user_matchers: must list at least one"},
		{"matcher without group attribute", func(c *Config) { c.GroupSearch.UserMatchers[1].GroupAttr = "" }, "group_search.user_matchers[1].group_attr: must be set"},
		{"no group name", func(c *Config) { c.GroupSearch.NameAttr = "" }, "group_search.name_attr: must be set"},
		{"domains without verified emails", func(c *Config) { c.Rules.AllowedDomains = []string{"example.org"} }, "allowed_domains: needs user_search.email_verified: true"},
		{"negative timeout", func(c *Config) { c.Timeouts.Connect = -time.Second }, "timeouts.connect: must be from 0s"},
		{"huge timeout", func(c *Config) { c.Timeouts.Operation = time.Hour }, "timeouts.operation: must be from 0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.edit(&c)
			errs := c.Validate()
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), tt.want) {
				t.Errorf("got %v, want one error with %q", errs, tt.want)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	errs := Config{}.Validate()
	got := fmt.Sprint(errs)
	for _, want := range []string{"host:", "user_search.base_dn:", "user_search.username:", "user_search.id_attr:"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in %v", want, errs)
		}
	}
}

func TestPlainLDAPToLoopback(t *testing.T) {
	for _, host := range []string{"127.0.0.1:389", "[::1]:389", "localhost:389"} {
		c := validConfig()
		c.Host, c.InsecureNoSSL = host, true
		if errs := c.Validate(); len(errs) != 0 {
			t.Errorf("%s: %v", host, errs)
		}
	}
}

// TestConfigYAML: the keys are snake_case and timeouts are Go durations.
func TestConfigYAML(t *testing.T) {
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(`
host: ldap.example.com:636
start_tls: false
root_ca: /etc/latch/ldap-ca.pem
bind_dn: cn=latch,ou=services,dc=example,dc=org
bind_password: s
user_search: {base_dn: "ou=people,dc=example,dc=org", filter: "(objectClass=person)", username: uid, id_attr: entryUUID, email_attr: mail, name_attr: cn, email_verified: true}
group_search: {base_dn: "ou=groups,dc=example,dc=org", filter: "(objectClass=groupOfNames)", user_matchers: [{user_attr: DN, group_attr: member}], name_attr: cn}
timeouts: {connect: 2s, operation: 15s}
`))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if errs := c.Validate(); len(errs) != 0 {
		t.Fatal(errs)
	}
	if c.Timeouts.Operation != 15*time.Second || !c.UserSearch.EmailVerified || c.GroupSearch.UserMatchers[0].GroupAttr != "member" {
		t.Errorf("decoded %+v", c)
	}
}
