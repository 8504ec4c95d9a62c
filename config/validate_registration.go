package config

import (
	"fmt"
	"strings"

	"github.com/latchauth/latch/clients"
)

// registration checks the registration policy. The password grant hands a
// user's password to the client, so no policy may open it to clients that
// register themselves.
func (p *problems) registration(r Registration) {
	p.registrationLists("registration", r.AllowedScopes, r.AllowedGrantTypes)
	p.registrationLists("registration.initial_access_policy", r.InitialAccessPolicy.AllowedScopes, r.InitialAccessPolicy.AllowedGrantTypes)
	if r.MaxClients < 1 {
		p.add("registration.max_clients", "must be at least 1, got %d (to close registration, set enabled: false)", r.MaxClients)
	}
	if r.PerAddressPerHour < 0 {
		p.add("registration.per_address_per_hour", "must be at least 0 (0: no limit), got %d", r.PerAddressPerHour)
	}
}

func (p *problems) registrationLists(key string, scopes, grants []string) {
	for i, s := range scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			p.add(fmt.Sprintf("%s.allowed_scopes[%d]", key, i), "must be a scope token (no spaces, quotes or backslashes), got %q", s)
		}
	}
	for i, g := range grants {
		switch {
		case g == clients.GrantPassword:
			p.add(fmt.Sprintf("%s.allowed_grant_types[%d]", key, i), "the password grant is never open to registration; create such a client with the CLI or the admin API")
		case g == clients.GrantTokenExchange:
			p.add(fmt.Sprintf("%s.allowed_grant_types[%d]", key, i), "token exchange is never open to registration (it needs a token_exchange policy); create such a client with the CLI or the admin API")
		case !clients.IsKnownGrant(g):
			p.add(fmt.Sprintf("%s.allowed_grant_types[%d]", key, i), "unknown grant type %q", g)
		}
	}
}
