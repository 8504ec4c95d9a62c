package connector

import (
	"fmt"
	"strings"
)

// What the OIDC and OAuth 2.0 connectors share: reading a person's fields
// out of an upstream's JSON by claim path, and the allow rules.

// Lookup follows path, keys joined by dots ("realm_access.roles"), through
// nested JSON objects of claims.
func Lookup(claims map[string]any, path string) (any, bool) {
	var cur any = claims
	for _, key := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[key]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// String is the claim at path as text: a string as it is, a number (a
// GitHub user id) in decimal; "" when absent or of another type.
func String(claims map[string]any, path string) string {
	v, _ := Lookup(claims, path)
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return fmt.Sprintf("%.0f", v)
	}
	return ""
}

// Bool is the claim at path as a boolean; some providers send "true" as a
// string (AWS Cognito's email_verified).
func Bool(claims map[string]any, path string) bool {
	v, _ := Lookup(claims, path)
	switch v := v.(type) {
	case bool:
		return v
	case string:
		return v == "true"
	}
	return false
}

// Strings is the claim at path as a list: an array's strings, or a single
// string as a list of one.
func Strings(claims map[string]any, path string) []string {
	v, _ := Lookup(claims, path)
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// Rules are a connector's allow rules: who, of the people the upstream
// knows, may sign in here. Empty lists allow everyone.
type Rules struct {
	// AllowedDomains: the email's domain must be one of these (and the
	// email verified, or the rule would trust whatever a person typed).
	AllowedDomains []string
	// AllowedGroups: the person must be in at least one of these.
	AllowedGroups []string
}

// Check answers *ErrDenied, with a reason a person can read, when id is
// not allowed.
func (r Rules) Check(id Identity) error {
	if len(r.AllowedDomains) > 0 {
		_, domain, _ := strings.Cut(id.Email, "@")
		ok := false
		for _, d := range r.AllowedDomains {
			ok = ok || (id.EmailVerified && strings.EqualFold(domain, d))
		}
		if !ok {
			return &ErrDenied{Reason: "your account's verified email address is not in a domain allowed here"}
		}
	}
	if len(r.AllowedGroups) > 0 {
		for _, g := range id.Groups {
			for _, a := range r.AllowedGroups {
				if g == a {
					return nil
				}
			}
		}
		return &ErrDenied{Reason: "your account is not in a group allowed to sign in here"}
	}
	return nil
}
