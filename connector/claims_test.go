package connector_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/latchauth/latch/connector"
)

func TestClaimPaths(t *testing.T) {
	var claims map[string]any
	if err := json.Unmarshal([]byte(`{"sub":"s1","id":583231,"email_verified":"true","verified":true,
		"realm_access":{"roles":["admin","dev",3]},"team":"ops","deep":{"a":{"b":"c"}}}`), &claims); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{"sub", "s1"}, {"id", "583231"}, {"deep.a.b", "c"}, {"deep.a", ""}, {"missing", ""}, {"sub.x", ""},
	} {
		if got := connector.String(claims, tc.path); got != tc.want {
			t.Errorf("String(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
	if !connector.Bool(claims, "email_verified") || !connector.Bool(claims, "verified") || connector.Bool(claims, "sub") {
		t.Error("Bool takes true and \"true\" only")
	}
	if got := connector.Strings(claims, "realm_access.roles"); len(got) != 2 || got[0] != "admin" || got[1] != "dev" {
		t.Errorf("Strings of a nested array = %v, want its strings", got)
	}
	if got := connector.Strings(claims, "team"); len(got) != 1 || got[0] != "ops" {
		t.Errorf("Strings of a string = %v", got)
	}
}

func TestRules(t *testing.T) {
	ann := connector.Identity{Subject: "s1", Email: "ann@Example.com", EmailVerified: true, Groups: []string{"dev"}}
	for _, tc := range []struct {
		name   string
		rules  connector.Rules
		id     connector.Identity
		denied bool
	}{
		{"no rules", connector.Rules{}, connector.Identity{Subject: "x"}, false},
		{"domain, any case", connector.Rules{AllowedDomains: []string{"example.com"}}, ann, false},
		{"other domain", connector.Rules{AllowedDomains: []string{"example.org"}}, ann, true},
		{"unverified email", connector.Rules{AllowedDomains: []string{"example.com"}},
			connector.Identity{Email: "ann@example.com"}, true},
		{"a subdomain is another domain", connector.Rules{AllowedDomains: []string{"example.com"}},
			connector.Identity{Email: "ann@evil.example.com", EmailVerified: true}, true},
		{"group", connector.Rules{AllowedGroups: []string{"ops", "dev"}}, ann, false},
		{"no group", connector.Rules{AllowedGroups: []string{"ops"}}, ann, true},
		{"both", connector.Rules{AllowedDomains: []string{"example.com"}, AllowedGroups: []string{"ops"}}, ann, true},
	} {
		var denied *connector.ErrDenied
		if got := errors.As(tc.rules.Check(tc.id), &denied); got != tc.denied {
			t.Errorf("%s: denied %v, want %v", tc.name, got, tc.denied)
		}
	}
}
