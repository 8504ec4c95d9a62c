package users

import (
	"slices"

	"github.com/latchauth/latch/storage"
)

// reservedClaims are set by the server for each token, never by a user's
// custom claims: letting config.yaml set them would let it forge the
// audience, expiry, nonce or session of a token. Beyond the claims of OIDC
// Core §2 and §3.1.3.6 this covers those of RFC 9068 access tokens
// (client_id, scope, jti) and of logout (sid).
var reservedClaims = map[string]bool{
	"sub": true, "iss": true, "aud": true, "exp": true, "iat": true, "nbf": true, "jti": true,
	"nonce": true, "auth_time": true, "at_hash": true, "c_hash": true, "s_hash": true,
	"azp": true, "acr": true, "amr": true, "sid": true,
	"client_id": true, "scope": true, "cnf": true,
}

// ReservedClaim reports whether name is a protocol claim the server sets
// for each token, which a user's claims may never set.
func ReservedClaim(name string) bool { return reservedClaims[name] }

// scopeClaims are the standard claims each scope releases.
var scopeClaims = map[string][]string{
	"profile": {"name", "preferred_username"},
	"email":   {"email", "email_verified"},
	"groups":  {"groups"},
}

// NarrowClaims returns a copy of claims without the standard claims of the
// scopes not in scopes: what an ID token may still say after a refresh
// narrowed its scopes. Custom claims stay.
func NarrowClaims(claims map[string]any, scopes []string) map[string]any {
	out := make(map[string]any, len(claims))
	for k, v := range claims {
		out[k] = v
	}
	for scope, names := range scopeClaims {
		if !slices.Contains(scopes, scope) {
			for _, k := range names {
				delete(out, k)
			}
		}
	}
	return out
}

// ClaimsFor returns the OIDC claims of u for the granted scopes, for ID
// tokens and userinfo. It does not set sub (the caller's: the username) or
// any other reserved claim.
//
//   - "profile": name (when set) and preferred_username (the username)
//   - "email": email and email_verified (when an email is set)
//   - "groups": groups (when there are any)
//
// Every custom claim of u.Claims is added whatever the scopes, except the
// reserved ones (sub, iss, aud, exp, iat, nonce, auth_time, at_hash, c_hash
// and a few more protocol claims), which are dropped, and except the claims
// above, which the scopes decide. The map is new; slices are copied.
func ClaimsFor(u *storage.User, scopes []string) map[string]any {
	claims := map[string]any{}
	if u == nil {
		return claims
	}
	for k, v := range u.Claims {
		if !reservedClaims[k] {
			claims[k] = v
		}
	}
	// A custom claim never stands in for a standard one whose scope was
	// not granted (an email without the email scope).
	for _, names := range scopeClaims {
		for _, k := range names {
			delete(claims, k)
		}
	}
	if slices.Contains(scopes, "profile") {
		if u.Name != "" {
			claims["name"] = u.Name
		}
		claims["preferred_username"] = u.Username
	}
	if slices.Contains(scopes, "email") && u.Email != "" {
		claims["email"] = u.Email
		claims["email_verified"] = u.EmailVerified
	}
	if slices.Contains(scopes, "groups") && len(u.Groups) > 0 {
		claims["groups"] = slices.Clone(u.Groups)
	}
	return claims
}
