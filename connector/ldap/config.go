package ldap

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/latchauth/latch/connector"
)

// Config is the ldap part of a connector's configuration, decoded strictly
// from YAML by the config package. Its keys are omitted when empty, so a
// connector of another type, written back as YAML, carries none.
type Config struct {
	// Host is host:port of the directory.
	Host string `yaml:"host,omitempty"`
	// StartTLS connects in plain LDAP and upgrades with the StartTLS
	// extended operation (RFC 4511 §4.14) before anything is sent. Without
	// it and without InsecureNoSSL, the connection is LDAPS (TLS from the
	// first byte).
	StartTLS bool `yaml:"start_tls,omitempty"`
	// InsecureNoSSL sends the service and user passwords in the clear:
	// allowed only to a loopback host (a local directory or a tunnel).
	InsecureNoSSL bool `yaml:"insecure_no_ssl,omitempty"`
	// InsecureSkipVerify accepts any server certificate.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify,omitempty"`
	// RootCA is a PEM file of the certificate authorities to trust instead
	// of the system's.
	RootCA string `yaml:"root_ca,omitempty"`
	// BindDN and BindPassword are the service account that searches; both
	// empty searches anonymously.
	BindDN       string `yaml:"bind_dn,omitempty"`
	BindPassword string `yaml:"bind_password,omitempty"`

	UserSearch  UserSearch  `yaml:"user_search,omitempty"`
	GroupSearch GroupSearch `yaml:"group_search,omitempty"`
	Timeouts    Timeouts    `yaml:"timeouts,omitempty"`

	// Rules are the connector's allowed_groups and allowed_domains, keys
	// every connector type has: whoever builds the connector sets them.
	Rules connector.Rules `yaml:"-"`
}

// UserSearch finds the entry of the username typed on the login page.
type UserSearch struct {
	BaseDN string `yaml:"base_dn,omitempty"`
	// Filter is ANDed with (Username=typed), e.g. (objectClass=person).
	Filter string `yaml:"filter,omitempty"`
	// Username is the attribute the typed username must equal, e.g. uid.
	Username string `yaml:"username,omitempty"`
	// IDAttr is the stable subject: DN, or an attribute such as entryUUID
	// that survives a rename.
	IDAttr    string `yaml:"id_attr,omitempty"`
	EmailAttr string `yaml:"email_attr,omitempty"`
	NameAttr  string `yaml:"name_attr,omitempty"`
	// EmailVerified is what Latch asserts of every email of this
	// directory: LDAP has no such flag, so it is false unless an
	// administrator who knows how the directory is fed says otherwise.
	EmailVerified bool `yaml:"email_verified,omitempty"`
}

// GroupSearch finds the groups of a user; an empty BaseDN turns it off.
type GroupSearch struct {
	BaseDN       string        `yaml:"base_dn,omitempty"`
	Filter       string        `yaml:"filter,omitempty"`
	UserMatchers []UserMatcher `yaml:"user_matchers,omitempty"`
	// NameAttr is the group's name in the groups claim, e.g. cn.
	NameAttr string `yaml:"name_attr,omitempty"`
}

// UserMatcher says a group holds a user when the group's GroupAttr equals
// the user's UserAttr: DN→member for groupOfNames, uid→memberUid for
// posixGroup.
type UserMatcher struct {
	UserAttr  string `yaml:"user_attr,omitempty"`
	GroupAttr string `yaml:"group_attr,omitempty"`
}

// Timeouts bound each sign-in and refresh, so that a directory that stops
// answering holds a login request for seconds, not forever.
type Timeouts struct {
	// Connect bounds the TCP connection and the TLS handshake; 5s when 0.
	Connect time.Duration `yaml:"connect,omitempty"`
	// Operation bounds everything after it (binds and searches); 10s when 0.
	Operation time.Duration `yaml:"operation,omitempty"`
}

const (
	defaultConnectTimeout   = 5 * time.Second
	defaultOperationTimeout = 10 * time.Second
	maxTimeout              = 5 * time.Minute
)

// dnAttr is the pseudo-attribute that names an entry's DN in id_attr and
// user_attr, as in Dex.
const dnAttr = "DN"

func isDN(attr string) bool { return strings.EqualFold(attr, dnAttr) }

// attrName is an attribute description of RFC 4512 §2.5: a name or an OID,
// with options. It is written into filters unescaped, so nothing else
// passes.
var attrName = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9-]{0,63}|[0-9]+(\.[0-9]+){0,31})(;[A-Za-z0-9-]{1,32}){0,4}$`)

// Validate reports every problem of c at once, each naming its key below
// the connector (e.g. "user_search.base_dn: ..."). It reads no files: New
// loads root_ca.
func (c Config) Validate() []error {
	var p problems
	p.connection(c)
	p.userSearch(c.UserSearch)
	p.groupSearch(c.GroupSearch)
	if len(c.Rules.AllowedGroups) > 0 && c.GroupSearch.BaseDN == "" {
		p.add("allowed_groups", "needs group_search.base_dn: without a group search nobody is in a group")
	}
	if len(c.Rules.AllowedDomains) > 0 && !c.UserSearch.EmailVerified {
		p.add("allowed_domains", "needs user_search.email_verified: true: a domain rule trusts verified emails only, so it would refuse everyone")
	}
	p.timeout("timeouts.connect", c.Timeouts.Connect)
	p.timeout("timeouts.operation", c.Timeouts.Operation)
	return p
}

type problems []error

func (p *problems) add(key, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
}

func (p *problems) connection(c Config) {
	host, port, err := net.SplitHostPort(c.Host)
	if err != nil || host == "" {
		p.add("host", "must be host:port (e.g. ldap.example.com:636), got %q", c.Host)
	} else if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		p.add("host", "port must be a number from 1 to 65535, got %q", port)
	}
	switch {
	case c.StartTLS && c.InsecureNoSSL:
		p.add("start_tls", "and insecure_no_ssl contradict each other: choose one")
	case c.InsecureNoSSL && err == nil && !isLoopback(host):
		p.add("insecure_no_ssl", "plain LDAP sends passwords in the clear; it is allowed only to a loopback host, not %q (use start_tls, or LDAPS)", host)
	}
	if c.InsecureNoSSL && (c.InsecureSkipVerify || c.RootCA != "") {
		p.add("insecure_no_ssl", "has no TLS for insecure_skip_verify or root_ca to apply to")
	}
	if c.InsecureSkipVerify && c.RootCA != "" {
		p.add("insecure_skip_verify", "ignores root_ca: set one or the other")
	}
	if c.BindDN == "" && c.BindPassword != "" {
		p.add("bind_dn", "must be set when bind_password is")
	}
	if c.BindDN != "" {
		p.dn("bind_dn", c.BindDN)
		if c.BindPassword == "" {
			// An empty password makes the bind unauthenticated (RFC 4513
			// §5.1.2): it "succeeds" and searches anonymously.
			p.add("bind_password", "must be set when bind_dn is")
		}
	}
}

func (p *problems) userSearch(u UserSearch) {
	if u.BaseDN == "" {
		p.add("user_search.base_dn", "must be set")
	} else {
		p.dn("user_search.base_dn", u.BaseDN)
	}
	p.filter("user_search.filter", u.Filter)
	p.attr("user_search.username", u.Username, true, false)
	p.attr("user_search.id_attr", u.IDAttr, true, true)
	p.attr("user_search.email_attr", u.EmailAttr, false, false)
	p.attr("user_search.name_attr", u.NameAttr, false, false)
}

func (p *problems) groupSearch(g GroupSearch) {
	if g.BaseDN == "" {
		if g.Filter != "" || len(g.UserMatchers) > 0 || g.NameAttr != "" {
			p.add("group_search.base_dn", "must be set when any other group_search key is")
		}
		return
	}
	p.dn("group_search.base_dn", g.BaseDN)
	p.filter("group_search.filter", g.Filter)
	p.attr("group_search.name_attr", g.NameAttr, true, false)
	if len(g.UserMatchers) == 0 {
		p.add("group_search.user_matchers", "must list at least one {user_attr, group_attr}, e.g. {user_attr: DN, group_attr: member}")
	}
	if len(g.UserMatchers) > 8 {
		p.add("group_search.user_matchers", "at most 8, got %d", len(g.UserMatchers))
	}
	for i, m := range g.UserMatchers {
		key := fmt.Sprintf("group_search.user_matchers[%d]", i)
		p.attr(key+".user_attr", m.UserAttr, true, true)
		p.attr(key+".group_attr", m.GroupAttr, true, false)
	}
}

func (p *problems) dn(key, s string) {
	if _, err := goldap.ParseDN(s); err != nil {
		p.add(key, "is not a distinguished name: %v", err)
	}
}

func (p *problems) filter(key, s string) {
	if s == "" {
		return
	}
	if _, err := goldap.CompileFilter(s); err != nil {
		p.add(key, "is not an LDAP filter (RFC 4515), e.g. (objectClass=person): %v", err)
	}
}

func (p *problems) attr(key, s string, required, dnAllowed bool) {
	switch {
	case s == "" && required:
		p.add(key, "must be set")
	case s == "", dnAllowed && isDN(s):
	case isDN(s):
		p.add(key, "cannot be DN")
	case !attrName.MatchString(s):
		p.add(key, "is not an attribute name, got %q", s)
	}
}

func (p *problems) timeout(key string, d time.Duration) {
	if d < 0 || d > maxTimeout {
		p.add(key, "must be from 0s (the default) to %s, got %s", maxTimeout, d)
	}
}

// isLoopback is true for localhost and loopback addresses: plain LDAP to
// them never leaves the machine.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
