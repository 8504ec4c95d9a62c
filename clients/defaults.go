package clients

import "slices"

// Defaults fills in what a client leaves unsaid, the same way on every path
// that makes one (config.yaml, the CLI, the admin API, registration), so a
// client accepted on one path is accepted on all:
//
//   - response_types left out is ["code"] when grant_types lists
//     authorization_code (the default of RFC 7591 §2 and OIDC Registration),
//     and [] otherwise; an explicit list, even an empty one, is kept;
//   - every list left out is [] rather than nil, so that each JSON the CLI,
//     the admin API and registration print shows [] and never null.
func Defaults(c *Client) {
	if c.ResponseTypes == nil && slices.Contains(c.GrantTypes, GrantAuthorizationCode) {
		c.ResponseTypes = []string{"code"}
	}
	for _, l := range []*[]string{&c.RedirectURIs, &c.PostLogoutRedirectURIs, &c.GrantTypes, &c.ResponseTypes, &c.Scopes, &c.Audience} {
		if *l == nil {
			*l = []string{}
		}
	}
	if c.TokenExchange != nil && c.TokenExchange.Audiences == nil {
		c.TokenExchange.Audiences = []string{}
	}
}
