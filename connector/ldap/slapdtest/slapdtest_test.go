package slapdtest

import (
	"testing"

	goldap "github.com/go-ldap/ldap/v3"
)

// TestStart checks the fixture itself: the service account binds and the
// people are there, with the entryUUID slapadd gives them.
func TestStart(t *testing.T) {
	d := Start(t)
	conn := d.Admin(t)
	if err := conn.Bind(ServiceDN, ServicePassword); err != nil {
		t.Fatal(err)
	}
	res, err := conn.Search(goldap.NewSearchRequest(PeopleDN, goldap.ScopeWholeSubtree, 0, 0, 0, false,
		"(uid=alice)", []string{"entryUUID", "mail"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Entries) != 1 || res.Entries[0].GetAttributeValue("entryUUID") == "" {
		t.Fatalf("alice: %+v", res.Entries)
	}
}
