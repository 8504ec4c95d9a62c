package clients

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestDefaultsGiveCodeToTheAuthorizationCodeGrantOnly(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    Client
		wantR []string
	}{
		{"code grant, nothing said", Client{GrantTypes: []string{GrantAuthorizationCode, GrantRefreshToken}}, []string{"code"}},
		{"client_credentials, nothing said", Client{GrantTypes: []string{GrantClientCredentials}}, []string{}},
		{"an explicit empty list is kept", Client{GrantTypes: []string{GrantAuthorizationCode}, ResponseTypes: []string{}}, []string{}},
		{"an explicit list is kept", Client{GrantTypes: []string{GrantAuthorizationCode}, ResponseTypes: []string{"code"}}, []string{"code"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.in
			Defaults(&c)
			if !reflect.DeepEqual(c.ResponseTypes, tc.wantR) {
				t.Errorf("response_types = %#v, want %#v", c.ResponseTypes, tc.wantR)
			}
		})
	}
}

func TestDefaultsMakeEveryListEmptyNotNull(t *testing.T) {
	c := Client{ID: "a"}
	Defaults(&c)
	b, err := json.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "null") {
		t.Errorf("JSON holds null: %s", b)
	}
}
