package users_test

import (
	"reflect"
	"testing"

	"github.com/latchauth/latch/storage"
	"github.com/latchauth/latch/users"
)

func TestClaimsFor(t *testing.T) {
	full := func() *storage.User {
		return &storage.User{
			Username: "alice", Email: "alice@example.com", EmailVerified: true, Name: "Alice Example",
			Groups: []string{"admins", "dev"},
			Claims: map[string]any{"department": "engineering", "level": float64(3)},
		}
	}
	custom := map[string]any{"department": "engineering", "level": float64(3)}
	with := func(extra map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range custom {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name   string
		user   *storage.User
		scopes []string
		want   map[string]any
	}{
		{"openid only: custom claims", full(), []string{"openid"}, custom},
		{"no scopes", full(), nil, custom},
		{"profile", full(), []string{"openid", "profile"},
			with(map[string]any{"name": "Alice Example", "preferred_username": "alice"})},
		{"profile without name", func() *storage.User { u := full(); u.Name = ""; return u }(), []string{"profile"},
			with(map[string]any{"preferred_username": "alice"})},
		{"email", full(), []string{"openid", "email"},
			with(map[string]any{"email": "alice@example.com", "email_verified": true})},
		{"email unverified", func() *storage.User { u := full(); u.EmailVerified = false; return u }(), []string{"email"},
			with(map[string]any{"email": "alice@example.com", "email_verified": false})},
		{"email scope, no email", func() *storage.User { u := full(); u.Email = ""; return u }(), []string{"email"}, custom},
		{"groups", full(), []string{"groups"}, with(map[string]any{"groups": []string{"admins", "dev"}})},
		{"groups scope, no groups", func() *storage.User { u := full(); u.Groups = nil; return u }(), []string{"groups"}, custom},
		{"all", full(), []string{"openid", "profile", "email", "groups", "offline_access"},
			with(map[string]any{"name": "Alice Example", "preferred_username": "alice", "email": "alice@example.com",
				"email_verified": true, "groups": []string{"admins", "dev"}})},
		{"no custom claims", &storage.User{Username: "bob"}, []string{"profile"}, map[string]any{"preferred_username": "bob"}},
		{"nil user", nil, []string{"profile"}, map[string]any{}},
		{"reserved and scoped custom claims dropped", &storage.User{Username: "eve", Email: "eve@example.com", Claims: map[string]any{
			"sub": "admin", "iss": "https://evil", "aud": "x", "exp": 1, "iat": 1, "nonce": "n", "auth_time": 1,
			"at_hash": "h", "c_hash": "h", "azp": "c", "sid": "s", "nbf": 1, "jti": "j", "acr": "a", "amr": []any{"pwd"},
			"client_id": "c", "scope": "admin", "cnf": map[string]any{},
			"email": "forged@example.com", "email_verified": true, "preferred_username": "root", "name": "Root", "groups": []any{"admins"},
			"team": "red",
		}}, []string{"openid"}, map[string]any{"team": "red"}},
		{"scoped claims beat custom ones", &storage.User{Username: "eve", Email: "eve@example.com", Claims: map[string]any{
			"email": "forged@example.com", "preferred_username": "root",
		}}, []string{"profile", "email"}, map[string]any{"preferred_username": "eve", "email": "eve@example.com", "email_verified": false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := users.ClaimsFor(tt.user, tt.scopes)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ClaimsFor =\n %#v\nwant\n %#v", got, tt.want)
			}
		})
	}
}

func TestClaimsForCopies(t *testing.T) {
	u := &storage.User{Username: "alice", Groups: []string{"admins"}, Claims: map[string]any{"k": "v"}}
	got := users.ClaimsFor(u, []string{"groups"})
	got["groups"].([]string)[0] = "changed"
	got["k"] = "changed"
	if u.Groups[0] != "admins" || u.Claims["k"] != "v" {
		t.Fatalf("ClaimsFor result aliases the user: %+v", u)
	}
}

func TestNarrowClaims(t *testing.T) {
	full := map[string]any{"name": "A", "preferred_username": "a", "email": "a@x", "email_verified": true, "groups": []string{"g"}, "department": "eng"}
	got := users.NarrowClaims(full, []string{"openid", "email"})
	want := map[string]any{"email": "a@x", "email_verified": true, "department": "eng"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("NarrowClaims = %v, want %v", got, want)
	}
	if _, ok := full["name"]; !ok {
		t.Fatal("NarrowClaims changed its argument")
	}
}
