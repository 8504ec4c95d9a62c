package server

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/latchauth/latch/clients"
)

// The registration policy, after Keycloak's client registration policies:
// an RFC 7591 endpoint open to anyone must not hand out whatever scope or
// grant a stranger asks for, nor let one fill the clients table. What a
// registering client may list is bounded by RegistrationPolicy; a request
// beyond it is 400 invalid_client_metadata naming the field. RFC 7592
// updates are held to the policy the client registered under.

// RegistrationPolicy bounds what dynamic client registration accepts.
// Zero values take the defaults of config.yaml, except PerAddressPerHour.
type RegistrationPolicy struct {
	// AllowedScopes and AllowedGrantTypes bound registrations without an
	// initial access token (default: openid profile email offline_access;
	// authorization_code refresh_token).
	AllowedScopes     []string
	AllowedGrantTypes []string
	// InitialAccessScopes and InitialAccessGrantTypes bound registrations
	// that present the initial access token; empty means the lists above.
	InitialAccessScopes     []string
	InitialAccessGrantTypes []string
	// MaxClients bounds the registered clients that exist (default 1000).
	MaxClients int
	// PerAddressPerHour bounds the registrations of one caller address
	// (an IPv6 /64) in any hour; 0 is no bound.
	PerAddressPerHour int
}

// Which policy a registered client was registered under; RFC 7592 updates
// keep to it. clients.Client.RegistrationPolicy holds one of these.
const (
	policyOpen          = ""
	policyInitialAccess = "initial_access"
)

func (p *RegistrationPolicy) fillDefaults() {
	if p.AllowedScopes == nil {
		p.AllowedScopes = []string{"openid", "profile", "email", "offline_access"}
	}
	if p.AllowedGrantTypes == nil {
		p.AllowedGrantTypes = []string{clients.GrantAuthorizationCode, clients.GrantRefreshToken}
	}
	if len(p.InitialAccessScopes) == 0 {
		p.InitialAccessScopes = p.AllowedScopes
	}
	if len(p.InitialAccessGrantTypes) == 0 {
		p.InitialAccessGrantTypes = p.AllowedGrantTypes
	}
	if p.MaxClients <= 0 {
		p.MaxClients = 1000
	}
}

// lists returns the scopes and grant types the named policy allows.
func (p *RegistrationPolicy) lists(name string) (scopes, grants []string) {
	if name == policyInitialAccess {
		return p.InitialAccessScopes, p.InitialAccessGrantTypes
	}
	return p.AllowedScopes, p.AllowedGrantTypes
}

// defaultScopes are the scopes of a client that registers without a
// "scope" (RFC 7591 §2 lets the server choose): the OpenID Connect scopes
// the policy allows, so a relying party, whose metadata has no "scope"
// at all, can ask for "openid".
func (p *RegistrationPolicy) defaultScopes(name string) []string {
	allowed, _ := p.lists(name)
	var out []string
	for _, s := range defaultRegisteredScopes {
		if slices.Contains(allowed, s) {
			out = append(out, s)
		}
	}
	return out
}

// check reports every grant type and scope of c beyond the named policy.
// The password grant is never open to registration, whatever a policy
// lists: it hands a user's password to the client; nor is token exchange,
// whose per-client policy (audiences, impersonation) RFC 7591 has no
// metadata for and only an administrator may grant.
func (p *RegistrationPolicy) check(c *clients.Client, name string) clients.ValidationError {
	scopes, grants := p.lists(name)
	var problems clients.ValidationError
	for i, g := range c.GrantTypes {
		field := fmt.Sprintf("grant_types[%d]", i)
		switch {
		case g == clients.GrantPassword:
			problems = append(problems, clients.FieldError{Field: field, Reason: "the password grant is not open to registration; ask an administrator"})
		case g == clients.GrantTokenExchange:
			problems = append(problems, clients.FieldError{Field: field, Reason: "token exchange is not open to registration; ask an administrator"})
		case !slices.Contains(grants, g):
			problems = append(problems, clients.FieldError{Field: field,
				Reason: fmt.Sprintf("%q is not allowed by the registration policy (allowed: %s)", g, strings.Join(grants, " "))})
		}
	}
	var refused []string
	for _, s := range c.Scopes {
		if !slices.Contains(scopes, s) {
			refused = append(refused, s)
		}
	}
	if len(refused) > 0 {
		problems = append(problems, clients.FieldError{Field: "scope",
			Reason: fmt.Sprintf("%q is not allowed by the registration policy (allowed: %s)", strings.Join(refused, " "), strings.Join(scopes, " "))})
	}
	return problems
}

// errRegistrationFull refuses a registration once max_clients registered
// clients exist. RFC 7591 has no error code for it; Keycloak answers 403
// when a policy refuses the request itself.
func errRegistrationFull(max int) *fosite.RFC6749Error {
	return &fosite.RFC6749Error{ErrorField: "access_denied", CodeField: http.StatusForbidden,
		DescriptionField: fmt.Sprintf("Registration is closed: the server holds its maximum of %d registered clients.", max)}
}

// errRegistrationRate refuses a caller over its registrations per hour.
func errRegistrationRate() *fosite.RFC6749Error {
	return &fosite.RFC6749Error{ErrorField: "too_many_requests", CodeField: http.StatusTooManyRequests,
		DescriptionField: "This address has registered as many clients as it may in an hour."}
}

// registrationQuota refuses a registration beyond max_clients or the
// caller's hourly bound, counted in the database so every instance sees
// the same numbers. Registrations in flight at the same moment are not
// counted against each other, so the bound may be passed by as many.
func (s *Server) registrationQuota(ctx context.Context, w http.ResponseWriter, origin string) error {
	p := &s.cfg.Registration
	total, recent, err := s.store.CountRegisteredClients(ctx, origin, s.now().Add(-time.Hour))
	switch {
	case err != nil:
		return err
	case total >= int64(p.MaxClients):
		return errRegistrationFull(p.MaxClients)
	case p.PerAddressPerHour > 0 && recent >= int64(p.PerAddressPerHour):
		// The bound is a sliding hour; one more slot opens on average
		// every hour/limit.
		w.Header().Set("Retry-After", strconv.Itoa((3600+p.PerAddressPerHour-1)/p.PerAddressPerHour))
		return errRegistrationRate()
	}
	return nil
}

// clientRules are the client rules of this deployment (insecure_http).
func (s *Server) clientRules() clients.Rules {
	return clients.Rules{InsecureHTTP: s.cfg.InsecureHTTP}
}
