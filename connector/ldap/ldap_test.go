package ldap

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/latchauth/latch/connector"
	"github.com/latchauth/latch/connector/ldap/slapdtest"
	"github.com/latchauth/latch/internal/skipnote"
)

// TestMain says, once, when the tests against slapd will skip.
func TestMain(m *testing.M) {
	if note := slapdtest.MissingNote(); note != "" {
		skipnote.Print("connector/ldap", note)
	}
	os.Exit(m.Run())
}

// fixtureConfig is a connector for the fixture's people, over plain LDAP to
// loopback, with groups by both matchers.
func fixtureConfig(d *slapdtest.Directory) Config {
	return Config{
		Host:          d.Addr,
		InsecureNoSSL: true,
		BindDN:        slapdtest.ServiceDN,
		BindPassword:  slapdtest.ServicePassword,
		UserSearch: UserSearch{
			BaseDN: slapdtest.PeopleDN, Filter: "(objectClass=inetOrgPerson)",
			Username: "uid", IDAttr: "entryUUID", EmailAttr: "mail", NameAttr: "cn",
		},
		GroupSearch: GroupSearch{
			BaseDN:       slapdtest.GroupsDN,
			UserMatchers: []UserMatcher{{UserAttr: "DN", GroupAttr: "member"}, {UserAttr: "uid", GroupAttr: "memberUid"}},
			NameAttr:     "cn",
		},
	}
}

// logged is a connector whose debug log the test can read.
func logged(t *testing.T, cfg Config) (*Connector, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	c, err := New(cfg, slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	return c, &buf
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestLogin(t *testing.T) {
	d := slapdtest.Start(t)
	c, logs := logged(t, fixtureConfig(d))
	tests := []struct {
		name, username, password string
		wantOK                   bool
		wantUsername             string
		wantGroups               []string
	}{
		{"right password", "alice", "alice-password", true, "alice", []string{"admins", "developers"}},
		{"username in another case", "ALICE", "alice-password", true, "alice", []string{"admins", "developers"}},
		{"wrong password", "alice", "bob-password", false, "", nil},
		{"empty password", "alice", "", false, "", nil},
		{"unknown user", "mallory", "alice-password", false, "", nil},
		{"empty username", "", "alice-password", false, "", nil},
		// Unescaped, (uid=ali*) would find alice alone and her password
		// would sign in.
		{"wildcard in the username", "ali*", "alice-password", false, "", nil},
		{"injected alternative", "nobody)(uid=alice", "alice-password", false, "", nil},
		{"injected or", "*)(|(uid=alice)", "alice-password", false, "", nil},
		{"metacharacters are a username like any other", "o(brien)*", "obrien-password", true, "o(brien)*", []string{"developers"}},
		{"a username held by two entries", "twin", "twin-password", false, "", nil},
		{"overlong username", strings.Repeat("a", MaxUsernameLen+1), "alice-password", false, "", nil},
		{"overlong password", "alice", strings.Repeat("p", MaxPasswordLen+1), false, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, ok, err := c.Login(ctx(t), tt.username, tt.password)
			if err != nil {
				t.Fatalf("Login: %v", err)
			}
			if ok != tt.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tt.wantOK)
			}
			if !ok {
				if id.Subject != "" {
					t.Errorf("a refused login returned %+v", id)
				}
				return
			}
			if id.Username != tt.wantUsername || !slices.Equal(id.Groups, tt.wantGroups) {
				t.Errorf("got username %q groups %q, want %q %q", id.Username, id.Groups, tt.wantUsername, tt.wantGroups)
			}
			if id.Subject == "" || strings.Contains(id.Subject, "=") {
				t.Errorf("subject %q: want the entryUUID", id.Subject)
			}
			if id.EmailVerified {
				t.Error("email_verified defaults to false")
			}
		})
	}
	if strings.Contains(logs.String(), "alice-password") {
		t.Errorf("a password reached the log:\n%s", logs)
	}
}

// TestEmptyPasswordWouldSucceedUpstream proves the empty-password check is
// needed: the fixture, like Active Directory, answers success to a DN with
// an empty password.
func TestEmptyPasswordWouldSucceedUpstream(t *testing.T) {
	d := slapdtest.Start(t)
	conn := d.Admin(t)
	if err := conn.UnauthenticatedBind("uid=alice," + slapdtest.PeopleDN); err != nil {
		t.Fatalf("the fixture should accept an unauthenticated bind: %v", err)
	}
	c, _ := logged(t, fixtureConfig(d))
	if _, ok, err := c.Login(ctx(t), "alice", ""); ok || err != nil {
		t.Fatalf("empty password: ok=%v err=%v", ok, err)
	}
}

func TestLoginMapsAttributes(t *testing.T) {
	d := slapdtest.Start(t)
	cfg := fixtureConfig(d)
	cfg.UserSearch.IDAttr = "DN"
	cfg.UserSearch.EmailVerified = true
	c, _ := logged(t, cfg)
	id, ok, err := c.Login(ctx(t), "alice", "alice-password")
	if err != nil || !ok {
		t.Fatalf("ok=%v err=%v", ok, err)
	}
	want := connector.Identity{
		Subject: "uid=alice," + slapdtest.PeopleDN, Username: "alice",
		Email: "alice@example.org", EmailVerified: true, Name: "Alice Example",
		Groups: []string{"admins", "developers"},
	}
	if id.Subject != want.Subject || id.Username != want.Username || id.Email != want.Email ||
		id.EmailVerified != want.EmailVerified || id.Name != want.Name || !slices.Equal(id.Groups, want.Groups) {
		t.Errorf("got %+v\nwant %+v", id, want)
	}
}

func TestGroupMatchers(t *testing.T) {
	d := slapdtest.Start(t)
	tests := []struct {
		name     string
		matchers []UserMatcher
		filter   string
		user     string
		want     []string
	}{
		{"by DN in member", []UserMatcher{{"DN", "member"}}, "", "alice", []string{"admins"}},
		{"by uid in memberUid", []UserMatcher{{"uid", "memberUid"}}, "", "alice", []string{"developers"}},
		{"both", []UserMatcher{{"DN", "member"}, {"uid", "memberUid"}}, "", "bob", []string{"ops", "developers"}},
		{"group filter", []UserMatcher{{"DN", "member"}, {"uid", "memberUid"}}, "(objectClass=posixGroup)", "bob", []string{"developers"}},
		{"no group", []UserMatcher{{"DN", "member"}, {"uid", "memberUid"}}, "", "carol", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := fixtureConfig(d)
			cfg.GroupSearch.UserMatchers = tt.matchers
			cfg.GroupSearch.Filter = tt.filter
			c, _ := logged(t, cfg)
			id, ok, err := c.Login(ctx(t), tt.user, tt.user+"-password")
			if err != nil || !ok {
				t.Fatalf("ok=%v err=%v", ok, err)
			}
			if !slices.Equal(id.Groups, tt.want) {
				t.Errorf("groups %q, want %q", id.Groups, tt.want)
			}
		})
	}
}

func TestAllowedGroups(t *testing.T) {
	d := slapdtest.Start(t)
	cfg := fixtureConfig(d)
	cfg.Rules.AllowedGroups = []string{"admins", "ops"}
	c, _ := logged(t, cfg)
	if _, ok, err := c.Login(ctx(t), "alice", "alice-password"); !ok || err != nil {
		t.Fatalf("alice (admins): ok=%v err=%v", ok, err)
	}
	_, ok, err := c.Login(ctx(t), "carol", "carol-password")
	var denied *connector.ErrDenied
	if ok || !errors.As(err, &denied) {
		t.Fatalf("carol (no group): ok=%v err=%v, want ErrDenied", ok, err)
	}
	// A wrong password says nothing about groups.
	if _, ok, err := c.Login(ctx(t), "carol", "wrong"); ok || err != nil {
		t.Fatalf("carol, wrong password: ok=%v err=%v", ok, err)
	}
}

func TestAnonymousSearch(t *testing.T) {
	d := slapdtest.Start(t)
	cfg := fixtureConfig(d)
	cfg.BindDN, cfg.BindPassword = "", ""
	c, _ := logged(t, cfg)
	if id, ok, err := c.Login(ctx(t), "bob", "bob-password"); !ok || err != nil || !slices.Equal(id.Groups, []string{"ops", "developers"}) {
		t.Fatalf("ok=%v err=%v groups=%q", ok, err, id.Groups)
	}
}

// TestServiceAccountRefused: a directory that refuses the service account
// cannot answer; that is an error, never "wrong password".
func TestServiceAccountRefused(t *testing.T) {
	d := slapdtest.Start(t)
	cfg := fixtureConfig(d)
	cfg.BindPassword = "not-the-service-password"
	c, logs := logged(t, cfg)
	_, ok, err := c.Login(ctx(t), "alice", "alice-password")
	if ok || err == nil || !goldap.IsErrorWithCode(err, goldap.LDAPResultInvalidCredentials) {
		t.Fatalf("ok=%v err=%v, want the service bind's error", ok, err)
	}
	for _, secret := range []string{"not-the-service-password", "alice-password"} {
		if strings.Contains(err.Error(), secret) || strings.Contains(logs.String(), secret) {
			t.Errorf("%q leaked: err %v, log %s", secret, err, logs)
		}
	}
}

func TestRefresh(t *testing.T) {
	d := slapdtest.Start(t)
	for _, idAttr := range []string{"entryUUID", "DN"} {
		t.Run(idAttr, func(t *testing.T) {
			cfg := fixtureConfig(d)
			cfg.UserSearch.IDAttr = idAttr
			c, _ := logged(t, cfg)
			uid := "dave-" + strings.ToLower(idAttr)
			dn := d.AddPerson(t, uid, "dave-password")
			id, ok, err := c.Login(ctx(t), uid, "dave-password")
			if err != nil || !ok || len(id.Groups) != 0 {
				t.Fatalf("ok=%v err=%v groups=%q", ok, err, id.Groups)
			}
			// Groups are read afresh.
			add := goldap.NewModifyRequest("cn=ops,"+slapdtest.GroupsDN, nil)
			add.Add("member", []string{dn})
			if err := d.Admin(t).Modify(add); err != nil {
				t.Fatal(err)
			}
			id.Data = []byte("kept")
			fresh, err := c.Refresh(ctx(t), id)
			if err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			if fresh.Subject != id.Subject || !slices.Equal(fresh.Groups, []string{"ops"}) || string(fresh.Data) != "kept" {
				t.Errorf("fresh %+v", fresh)
			}
			d.Delete(t, dn)
			if _, err := c.Refresh(ctx(t), id); !errors.Is(err, connector.ErrGone) {
				t.Fatalf("Refresh after delete: %v, want ErrGone", err)
			}
		})
	}
}

func TestRefreshAfterLeavingAllowedGroups(t *testing.T) {
	d := slapdtest.Start(t)
	cfg := fixtureConfig(d)
	cfg.Rules.AllowedGroups = []string{"ops"}
	c, _ := logged(t, cfg)
	dn := d.AddPerson(t, "erin", "erin-password")
	member := func(change func(*goldap.ModifyRequest)) {
		req := goldap.NewModifyRequest("cn=ops,"+slapdtest.GroupsDN, nil)
		change(req)
		if err := d.Admin(t).Modify(req); err != nil {
			t.Fatal(err)
		}
	}
	member(func(r *goldap.ModifyRequest) { r.Add("member", []string{dn}) })
	id, ok, err := c.Login(ctx(t), "erin", "erin-password")
	if err != nil || !ok {
		t.Fatalf("ok=%v err=%v", ok, err)
	}
	member(func(r *goldap.ModifyRequest) { r.Delete("member", []string{dn}) })
	_, err = c.Refresh(ctx(t), id)
	var denied *connector.ErrDenied
	if !errors.As(err, &denied) {
		t.Fatalf("Refresh: %v, want ErrDenied", err)
	}
}

// TestRefreshOutsideBase: a DN subject that is not under user_search's
// base (a config narrowed since the sign-in) is gone.
func TestRefreshOutsideBase(t *testing.T) {
	d := slapdtest.Start(t)
	cfg := fixtureConfig(d)
	cfg.UserSearch.IDAttr = "DN"
	c, _ := logged(t, cfg)
	for _, subject := range []string{slapdtest.ServiceDN, "not a DN", "uid=nobody," + slapdtest.PeopleDN} {
		if _, err := c.Refresh(ctx(t), connector.Identity{Subject: subject}); !errors.Is(err, connector.ErrGone) {
			t.Errorf("Refresh(%q): %v, want ErrGone", subject, err)
		}
	}
}
