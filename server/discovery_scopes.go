package server

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/latchauth/latch/clients"
)

// standardScopes are the scopes Latch itself gives meaning to: always
// listed in discovery, whether a client uses them or not.
var standardScopes = []string{"openid", "profile", "email", "groups", "offline_access"}

// scopesTTL is how long discovery's scope list is reused: SPEC's bound on
// any in-process cache, so a client added on another instance shows up
// within 5 seconds.
const scopesTTL = 5 * time.Second

// scopesCache keeps what discovery derives from the client list (its
// scopes and the opt-in grants some client lists) and when it was
// computed, so an unauthenticated discovery request reads the clients at
// most once every scopesTTL.
type scopesCache struct {
	mu     sync.Mutex
	at     time.Time
	list   []string
	grants []string
}

// optInGrants are the grants discovery lists only when some client lists
// them: the password grant (password.go), which no deployment should
// advertise unless it needs it, and token exchange (tokenexchange.go),
// which needs a per-client policy.
var optInGrants = []string{clients.GrantPassword, clients.GrantTokenExchange}

// supportedScopes is discovery's scopes_supported (RFC 8414 §2): the
// standard scopes and every scope some client may request, unless that
// client marks it private (clients.Client.PrivateScopes). A scope one
// client marks private and another lists openly is listed. Sorted, so the
// document does not change from one call to the next.
//
// grants are the optInGrants some client lists.
func (s *Server) supportedScopes(ctx context.Context) (scopes, grants []string, err error) {
	s.scopes.mu.Lock()
	defer s.scopes.mu.Unlock()
	now := s.now()
	if s.scopes.list != nil && now.Sub(s.scopes.at) < scopesTTL && !now.Before(s.scopes.at) {
		return s.scopes.list, s.scopes.grants, nil
	}
	all, err := s.store.ListClients(ctx)
	if err != nil {
		return nil, nil, err
	}
	set := map[string]bool{}
	for _, scope := range standardScopes {
		set[scope] = true
	}
	for _, c := range all {
		for _, g := range optInGrants {
			if c.GetGrantTypes().Has(g) && !slices.Contains(grants, g) {
				grants = append(grants, g)
			}
		}
		for _, scope := range c.Scopes {
			if !slices.Contains(c.PrivateScopes, scope) {
				set[scope] = true
			}
		}
	}
	list := make([]string, 0, len(set))
	for scope := range set {
		list = append(list, scope)
	}
	slices.Sort(list)
	slices.Sort(grants)
	s.scopes.at, s.scopes.list, s.scopes.grants = now, list, grants
	return list, grants, nil
}
