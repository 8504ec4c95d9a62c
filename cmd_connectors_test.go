package main

import (
	"strings"
	"testing"
)

func TestConnectorsAddListDelete(t *testing.T) {
	env := cliDB(t)
	corp := "id: corp\ntype: oidc\nname: Corp SSO\nissuer: https://sso.example.com\nclient_id: latch\nclient_secret: cli-secret-value\n"
	out := mustLatch(t, env, corp, "connectors", "add", "--file", "-")
	if !strings.Contains(out, "redirect URI at the upstream is http://127.0.0.1:8080/login/corp/callback") {
		t.Errorf("add names the redirect URI:\n%s", out)
	}
	if _, _, err := latch(t, env, corp, "connectors", "add", "--file", "-"); err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Errorf("a second add of corp: %v", err)
	}
	if _, _, err := latch(t, env, "id: dir\ntype: ldap\nname: Directory\n", "connectors", "add", "--file", "-"); err == nil ||
		!strings.Contains(err.Error(), "connector.host: must be host:port") {
		t.Errorf("an ldap connector without a host: %v", err)
	}
	dir := "id: dir\ntype: ldap\nname: Directory\nhost: ldap.example.com:636\nbind_dn: cn=latch,dc=example,dc=org\n" +
		"bind_password: cli-bind-password\nuser_search: {base_dn: \"dc=example,dc=org\", username: uid, id_attr: entryUUID}\n"
	if out := mustLatch(t, env, dir, "connectors", "add", "--file", "-"); !strings.Contains(out, "none (ldap") {
		t.Errorf("an ldap connector has no redirect URI:\n%s", out)
	}
	if _, _, err := latch(t, env, corp+"colour: red\n", "connectors", "add", "--file", "-"); err == nil || !strings.Contains(err.Error(), "colour") {
		t.Errorf("an unknown key: %v", err)
	}
	list := mustLatch(t, env, "", "connectors", "list")
	if !strings.Contains(list, "corp") || !strings.Contains(list, "Corp SSO") || strings.Contains(list, "cli-secret-value") ||
		!strings.Contains(list, "Directory") || strings.Contains(list, "cli-bind-password") {
		t.Errorf("list:\n%s", list)
	}
	mustLatch(t, env, "", "connectors", "delete", "corp")
	if _, _, err := latch(t, env, "", "connectors", "delete", "corp"); err == nil {
		t.Error("deleting twice succeeded")
	}
	if list := mustLatch(t, env, "", "connectors", "list"); strings.Contains(list, "corp") {
		t.Errorf("still listed:\n%s", list)
	}
}
