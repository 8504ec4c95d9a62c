// Package ldap is the LDAP connector: a username and password typed into
// Latch's own login form are checked against a directory (OpenLDAP, Active
// Directory, 389-ds) by searching the user with a service account and
// binding as the user, and the user's attributes and groups become the
// Identity. Refresh looks the user up again, so a person deleted from the
// directory loses their refresh tokens.
package ldap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/latchauth/latch/connector"
)

// Caps on what a person at the login form can make us send to the
// directory. No directory has usernames this long; passwords of 1 KiB are
// far beyond any passphrase.
const (
	MaxUsernameLen = 256
	MaxPasswordLen = 1024
	// maxConns bounds the connections open to the directory at once.
	maxConns = 8
	// maxGroups bounds the groups claim of one person.
	maxGroups = 500
)

// Connector checks passwords against an LDAP directory.
type Connector struct {
	cfg              Config
	tls              *tls.Config
	log              *slog.Logger
	slots            chan struct{}
	connectTimeout   time.Duration
	operationTimeout time.Duration
	userAttrs        []string
}

var (
	_ connector.PasswordConnector = (*Connector)(nil)
	_ connector.Refresher         = (*Connector)(nil)
)

// New checks cfg, loads its root_ca and returns the connector. It does not
// contact the directory: Latch starts while the directory is down, and
// sign-ins through it fail until it is back.
func New(cfg Config, logger *slog.Logger) (*Connector, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	tc, err := tlsConfig(cfg)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Connector{
		cfg:              cfg,
		tls:              tc,
		log:              logger,
		slots:            make(chan struct{}, maxConns),
		connectTimeout:   orDefault(cfg.Timeouts.Connect, defaultConnectTimeout),
		operationTimeout: orDefault(cfg.Timeouts.Operation, defaultOperationTimeout),
	}
	c.userAttrs = c.wantedUserAttrs()
	return c, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// wantedUserAttrs are the attributes a user search asks for: those mapped
// to the Identity and those the group matchers compare.
func (c *Connector) wantedUserAttrs() []string {
	u := c.cfg.UserSearch
	attrs := []string{u.Username}
	for _, a := range []string{u.IDAttr, u.EmailAttr, u.NameAttr} {
		if a != "" && !isDN(a) {
			attrs = append(attrs, a)
		}
	}
	for _, m := range c.cfg.GroupSearch.UserMatchers {
		if !isDN(m.UserAttr) {
			attrs = append(attrs, m.UserAttr)
		}
	}
	slices.Sort(attrs)
	return slices.Compact(attrs)
}

// Login searches the user by username with the service account, then binds
// as the entry found with password: the directory, not Latch, checks it.
func (c *Connector) Login(ctx context.Context, username, password string) (connector.Identity, bool, error) {
	// An empty password would make the bind unauthenticated (RFC 4513
	// §5.1.2), which many directories answer with success: refuse it
	// before anything is sent.
	if username == "" || password == "" || len(username) > MaxUsernameLen || len(password) > MaxPasswordLen ||
		!utf8.ValidString(username) {
		return connector.Identity{}, false, nil
	}
	var (
		id connector.Identity
		ok bool
	)
	err := c.withConn(ctx, func(conn *goldap.Conn) error {
		if err := c.bindService(conn); err != nil {
			return err
		}
		entry, err := c.findUser(conn, username)
		if err != nil || entry == nil {
			return err
		}
		if err := conn.Bind(entry.DN, password); err != nil {
			if goldap.IsErrorWithCode(err, goldap.LDAPResultInvalidCredentials) {
				return nil
			}
			return fmt.Errorf("ldap: bind as the user: %w", err)
		}
		// Groups are read by the service account, whose read rights the
		// administrator chose, not by the user.
		if err := c.bindService(conn); err != nil {
			return err
		}
		id, err = c.identity(conn, entry, username)
		ok = err == nil
		return err
	})
	if err != nil {
		return connector.Identity{}, false, err
	}
	if !ok {
		return connector.Identity{}, false, nil
	}
	if err := c.cfg.Rules.Check(id); err != nil {
		return connector.Identity{}, false, err
	}
	return id, true, nil
}

// findUser returns the one entry whose username attribute equals username,
// or nil when there is none or more than one (an ambiguous username must
// not sign in as whichever entry comes first).
func (c *Connector) findUser(conn *goldap.Conn, username string) (*goldap.Entry, error) {
	u := c.cfg.UserSearch
	// EscapeFilter keeps "*", "(" and ")" in a username literal (RFC 4515
	// §3): "a*" must not match "alice".
	filter := and(u.Filter, "("+u.Username+"="+goldap.EscapeFilter(username)+")")
	entries, err := c.search(conn, u.BaseDN, goldap.ScopeWholeSubtree, filter, c.userAttrs, 2)
	if goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded) || errors.Is(err, goldap.ErrSizeLimitExceeded) {
		c.log.Warn("ldap: a username matches several entries; refusing it", "base_dn", u.BaseDN)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	switch len(entries) {
	case 0:
		return nil, nil
	case 1:
		return entries[0], nil
	default:
		c.log.Warn("ldap: a username matches several entries; refusing it", "base_dn", u.BaseDN)
		return nil, nil
	}
}

// identity maps an entry and its groups; typed is the username as typed,
// kept when the entry holds it in another case.
func (c *Connector) identity(conn *goldap.Conn, e *goldap.Entry, typed string) (connector.Identity, error) {
	u := c.cfg.UserSearch
	id := connector.Identity{
		Subject:       e.DN,
		Username:      typed,
		EmailVerified: u.EmailVerified,
	}
	if !isDN(u.IDAttr) {
		id.Subject = e.GetAttributeValue(u.IDAttr)
		if id.Subject == "" || !utf8.ValidString(id.Subject) {
			return connector.Identity{}, fmt.Errorf("ldap: entry %s has no text value of id_attr %s", e.DN, u.IDAttr)
		}
	}
	names := e.GetEqualFoldAttributeValues(u.Username)
	if i := slices.IndexFunc(names, func(n string) bool { return strings.EqualFold(n, typed) }); i >= 0 {
		id.Username = names[i]
	} else if len(names) > 0 {
		id.Username = names[0]
	}
	if u.EmailAttr != "" {
		id.Email = e.GetEqualFoldAttributeValue(u.EmailAttr)
	}
	if u.NameAttr != "" {
		id.Name = e.GetEqualFoldAttributeValue(u.NameAttr)
	}
	groups, err := c.groups(conn, e)
	if err != nil {
		return connector.Identity{}, err
	}
	id.Groups = groups
	return id, nil
}

// groups are the NameAttr values of the groups that hold the entry by any
// user matcher, each once, in the order found.
func (c *Connector) groups(conn *goldap.Conn, e *goldap.Entry) ([]string, error) {
	g := c.cfg.GroupSearch
	if g.BaseDN == "" {
		return nil, nil
	}
	var names []string
	for _, m := range g.UserMatchers {
		values := []string{e.DN}
		if !isDN(m.UserAttr) {
			values = e.GetEqualFoldAttributeValues(m.UserAttr)
		}
		for _, v := range values {
			filter := and(g.Filter, "("+m.GroupAttr+"="+goldap.EscapeFilter(v)+")")
			entries, err := c.search(conn, g.BaseDN, goldap.ScopeWholeSubtree, filter, []string{g.NameAttr}, maxGroups)
			if err != nil {
				return nil, fmt.Errorf("ldap: group search: %w", err)
			}
			for _, ge := range entries {
				n := ge.GetEqualFoldAttributeValue(g.NameAttr)
				if n != "" && !slices.Contains(names, n) && len(names) < maxGroups {
					names = append(names, n)
				}
			}
		}
	}
	return names, nil
}

// Refresh looks the person up again by their subject: at their DN, or by
// id_attr under user_search.base_dn. An entry that is gone, moved out of
// base_dn or no longer matching user_search.filter answers ErrGone; one
// the rules now refuse (left every allowed group), ErrDenied. The groups
// are read afresh.
func (c *Connector) Refresh(ctx context.Context, id connector.Identity) (connector.Identity, error) {
	var fresh connector.Identity
	var found bool
	err := c.withConn(ctx, func(conn *goldap.Conn) error {
		if err := c.bindService(conn); err != nil {
			return err
		}
		entry, err := c.findSubject(conn, id.Subject)
		if err != nil || entry == nil {
			return err
		}
		found = true
		fresh, err = c.identity(conn, entry, id.Username)
		return err
	})
	if err != nil {
		return connector.Identity{}, err
	}
	if !found {
		return connector.Identity{}, connector.ErrGone
	}
	if err := c.cfg.Rules.Check(fresh); err != nil {
		return connector.Identity{}, err
	}
	fresh.Data = id.Data
	return fresh, nil
}

// findSubject is the user entry of subject, or nil when there is none.
func (c *Connector) findSubject(conn *goldap.Conn, subject string) (*goldap.Entry, error) {
	u := c.cfg.UserSearch
	base, scope := u.BaseDN, goldap.ScopeWholeSubtree
	filter := and(u.Filter, "("+u.IDAttr+"="+goldap.EscapeFilter(subject)+")")
	if isDN(u.IDAttr) {
		dn, err := goldap.ParseDN(subject)
		if err != nil {
			return nil, nil // not a DN this connector issued
		}
		if baseDN, _ := goldap.ParseDN(u.BaseDN); !baseDN.AncestorOfFold(dn) {
			return nil, nil
		}
		base, scope, filter = subject, goldap.ScopeBaseObject, and(u.Filter, "(objectClass=*)")
	}
	entries, err := c.search(conn, base, scope, filter, c.userAttrs, 2)
	if goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(entries) != 1 {
		return nil, nil
	}
	return entries[0], nil
}

// search runs one search; limit caps the entries on both sides (the
// server's size limit, and go-ldap's count should a server ignore it).
func (c *Connector) search(conn *goldap.Conn, base string, scope int, filter string, attrs []string, limit int) ([]*goldap.Entry, error) {
	req := goldap.NewSearchRequest(base, scope, goldap.NeverDerefAliases, limit, int(c.operationTimeout/time.Second), false, filter, attrs, nil)
	req.EnforceSizeLimit = true
	res, err := conn.Search(req)
	if err != nil {
		return nil, err
	}
	return res.Entries, nil
}

// and is (&extra f), or f alone when there is no extra filter.
func and(extra, f string) string {
	if extra == "" {
		return f
	}
	return "(&" + extra + f + ")"
}
