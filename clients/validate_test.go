package clients_test

import (
	"crypto/rand"
	"crypto/rsa"
	"math"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v3"

	"github.com/latchauth/latch/clients"
)

// Each constructor returns a fresh valid client, so a test case may change
// it freely.

func confidentialClient() *clients.Client {
	return &clients.Client{
		ID:                      "backend",
		Name:                    "Backend",
		SecretHash:              clients.HashGenerated("generated-secret"),
		GrantTypes:              []string{clients.GrantClientCredentials},
		Scopes:                  []string{"api"},
		TokenEndpointAuthMethod: clients.AuthMethodBasic,
	}
}

func publicClient() *clients.Client {
	return &clients.Client{
		ID:                      "mobile",
		RedirectURIs:            []string{"com.example.app:/cb", "http://127.0.0.1:5555/callback"},
		GrantTypes:              []string{clients.GrantAuthorizationCode, clients.GrantRefreshToken},
		ResponseTypes:           []string{"code"},
		Scopes:                  []string{"openid", "offline_access"},
		TokenEndpointAuthMethod: clients.AuthMethodNone,
	}
}

func webClient() *clients.Client {
	return &clients.Client{
		ID:                      "web",
		SecretHash:              clients.HashGenerated("generated-secret"),
		RedirectURIs:            []string{"https://app.example.com/callback"},
		PostLogoutRedirectURIs:  []string{"https://app.example.com/"},
		GrantTypes:              []string{clients.GrantAuthorizationCode, clients.GrantRefreshToken},
		ResponseTypes:           []string{"code"},
		TokenEndpointAuthMethod: clients.AuthMethodPost,
	}
}

func rsaJWKS(t *testing.T) *jose.JSONWebKeySet {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("rsa: %v", err)
	}
	jwk := jose.JSONWebKey{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}
	if !jwk.Valid() || !jwk.IsPublic() {
		t.Fatal("the test JWK is not a valid public key")
	}
	return &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}}
}

// problems splits a Validate error into its joined lines.
func problems(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

// hasProblem reports whether one line of err starts with "field:".
func hasProblem(err error, field string) bool {
	for _, line := range problems(err) {
		if strings.HasPrefix(line, field+": ") {
			return true
		}
	}
	return false
}

func TestValidateValid(t *testing.T) {
	jwks := rsaJWKS(t)
	argon, err := clients.HashChosen("chosen")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		client func() *clients.Client
	}{
		{"confidential client_credentials", confidentialClient},
		{"public authorization_code with custom scheme", publicClient},
		{"confidential web client, client_secret_post", webClient},
		{"auth method defaults to basic", func() *clients.Client {
			c := confidentialClient()
			c.TokenEndpointAuthMethod = ""
			return c
		}},
		{"private_key_jwt with an RSA JWK", func() *clients.Client {
			return &clients.Client{
				ID:                      "signer",
				GrantTypes:              []string{clients.GrantClientCredentials, clients.GrantJWTBearer},
				TokenEndpointAuthMethod: clients.AuthMethodPrivateKey,
				JWKS:                    jwks,
			}
		}},
		{"argon2id secret", func() *clients.Client {
			c := confidentialClient()
			c.SecretHash = argon
			return c
		}},
		{"bcrypt secret", func() *clients.Client {
			c := confidentialClient()
			c.SecretHash = "$2a$04$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234"
			return c
		}},
		{"every grant type", func() *clients.Client {
			c := webClient()
			c.GrantTypes = []string{clients.GrantAuthorizationCode, clients.GrantRefreshToken, clients.GrantClientCredentials,
				clients.GrantDeviceCode, clients.GrantJWTBearer, clients.GrantPassword}
			return c
		}},
		{"public device code", func() *clients.Client {
			return &clients.Client{ID: "tv", GrantTypes: []string{clients.GrantDeviceCode}, TokenEndpointAuthMethod: clients.AuthMethodNone}
		}},
		{"id of 255 characters", func() *clients.Client {
			c := confidentialClient()
			c.ID = strings.Repeat("a", 255)
			return c
		}},
		{"access_token_format jwt, rate limit, skip consent", func() *clients.Client {
			c := webClient()
			c.AccessTokenFormat, c.RateLimit, c.SkipConsent = "jwt", 2.5, true
			return c
		}},
		{"access_token_format opaque", func() *clients.Client {
			c := confidentialClient()
			c.AccessTokenFormat = "opaque"
			return c
		}},
		{"loopback http redirect with port and query", func() *clients.Client {
			c := webClient()
			c.RedirectURIs = []string{"http://localhost:8000/cb?x=1", "https://app.example.com/callback"}
			return c
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := clients.Validate(tc.client()); err != nil {
				t.Fatalf("Validate = %v, want nil", err)
			}
		})
	}
}

func TestValidateInvalid(t *testing.T) {
	tests := []struct {
		name   string
		client func() *clients.Client
		change func(c *clients.Client)
		field  string // the problem's line starts with "field: "
	}{
		{"id empty", confidentialClient, func(c *clients.Client) { c.ID = "" }, "id"},
		{"id too long", confidentialClient, func(c *clients.Client) { c.ID = strings.Repeat("a", 256) }, "id"},
		{"unknown grant", confidentialClient, func(c *clients.Client) {
			c.GrantTypes = append(c.GrantTypes, "implicit")
		}, "grant_types[1]"},
		{"no grant", confidentialClient, func(c *clients.Client) { c.GrantTypes = nil }, "grant_types"},
		{"empty grant list", confidentialClient, func(c *clients.Client) { c.GrantTypes = []string{} }, "grant_types"},
		{"response type token", webClient, func(c *clients.Client) {
			c.ResponseTypes = []string{"code", "token"}
		}, "response_types[1]"},
		{"response type code id_token", webClient, func(c *clients.Client) {
			c.ResponseTypes = []string{"code id_token"}
		}, "response_types[0]"},
		{"unknown auth method", confidentialClient, func(c *clients.Client) {
			c.TokenEndpointAuthMethod = "tls_client_auth"
		}, "token_endpoint_auth_method"},
		{"client_secret_jwt with only a hash", confidentialClient, func(c *clients.Client) {
			c.TokenEndpointAuthMethod = clients.AuthMethodSecretJWT
		}, "secret"},
		{"client_secret_jwt with a short secret", confidentialClient, func(c *clients.Client) {
			c.TokenEndpointAuthMethod = clients.AuthMethodSecretJWT
			c.SetSecret("short", clients.HashGenerated("short"))
		}, "secret"},
		{"public with secret", publicClient, func(c *clients.Client) {
			c.SecretHash = clients.HashGenerated("x")
		}, "secret"},
		{"client_secret_basic without secret", confidentialClient, func(c *clients.Client) { c.SecretHash = "" }, "secret"},
		{"default method without secret", confidentialClient, func(c *clients.Client) {
			c.TokenEndpointAuthMethod, c.SecretHash = "", ""
		}, "secret"},
		{"client_secret_post without secret", webClient, func(c *clients.Client) { c.SecretHash = "" }, "secret"},
		{"private_key_jwt without jwks", confidentialClient, func(c *clients.Client) {
			c.TokenEndpointAuthMethod = clients.AuthMethodPrivateKey
		}, "jwks"},
		{"private_key_jwt with empty jwks", confidentialClient, func(c *clients.Client) {
			c.TokenEndpointAuthMethod, c.JWKS = clients.AuthMethodPrivateKey, &jose.JSONWebKeySet{}
		}, "jwks"},
		{"secret not a hash", confidentialClient, func(c *clients.Client) { c.SecretHash = "change-me" }, "secret"},
		{"public with client_credentials", publicClient, func(c *clients.Client) {
			c.GrantTypes = append(c.GrantTypes, clients.GrantClientCredentials)
		}, "grant_types[2]"},
		{"authorization_code without redirect URIs", webClient, func(c *clients.Client) { c.RedirectURIs = nil }, "redirect_uris"},
		{"authorization_code without response types", webClient, func(c *clients.Client) { c.ResponseTypes = nil }, "response_types"},
		{"response types without authorization_code", confidentialClient, func(c *clients.Client) {
			c.ResponseTypes = []string{"code"}
		}, "response_types"},
		{"relative redirect URI", webClient, func(c *clients.Client) {
			c.RedirectURIs = []string{"/callback"}
		}, "redirect_uris[0]"},
		{"scheme-relative redirect URI", webClient, func(c *clients.Client) {
			c.RedirectURIs = []string{"//app.example.com/callback"}
		}, "redirect_uris[0]"},
		{"redirect URI with fragment", webClient, func(c *clients.Client) {
			c.RedirectURIs = append(c.RedirectURIs, "https://app.example.com/cb#frag")
		}, "redirect_uris[1]"},
		{"post-logout URI with fragment", webClient, func(c *clients.Client) {
			c.PostLogoutRedirectURIs = []string{"https://app.example.com/#/home"}
		}, "post_logout_redirect_uris[0]"},
		{"http URI without host", webClient, func(c *clients.Client) {
			c.RedirectURIs = []string{"http:///callback"}
		}, "redirect_uris[0]"},
		{"https opaque URI", webClient, func(c *clients.Client) {
			c.RedirectURIs = []string{"https:callback"}
		}, "redirect_uris[0]"},
		{"unparsable URI", webClient, func(c *clients.Client) {
			c.RedirectURIs = []string{"https://app.example.com/%zz"}
		}, "redirect_uris[0]"},
		{"duplicate redirect URI", webClient, func(c *clients.Client) {
			c.RedirectURIs = append(c.RedirectURIs, c.RedirectURIs[0])
		}, "redirect_uris[1]"},
		{"duplicate post-logout URI", webClient, func(c *clients.Client) {
			c.PostLogoutRedirectURIs = append(c.PostLogoutRedirectURIs, c.PostLogoutRedirectURIs[0])
		}, "post_logout_redirect_uris[1]"},
		{"bad access_token_format", confidentialClient, func(c *clients.Client) { c.AccessTokenFormat = "JWT" }, "access_token_format"},
		{"negative rate_limit", confidentialClient, func(c *clients.Client) { c.RateLimit = -1 }, "rate_limit"},
		// NaN and ±Inf pass a "< 0" test, but no JSON can hold them: the
		// store cannot save such a client.
		{"NaN rate_limit", confidentialClient, func(c *clients.Client) { c.RateLimit = math.NaN() }, "rate_limit"},
		{"infinite rate_limit", confidentialClient, func(c *clients.Client) { c.RateLimit = math.Inf(1) }, "rate_limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.client()
			if err := clients.Validate(c); err != nil {
				t.Fatalf("the client before the change is invalid: %v", err)
			}
			tc.change(c)
			err := clients.Validate(c)
			if err == nil {
				t.Fatalf("Validate = nil, want a problem with %s", tc.field)
			}
			if !hasProblem(err, tc.field) {
				t.Fatalf("Validate = %q, want a line starting with %q", err, tc.field+": ")
			}
		})
	}
}

// TestValidateJoins: every problem is reported at once, one line each.
func TestValidateJoins(t *testing.T) {
	c := &clients.Client{
		ID:                      "",
		GrantTypes:              []string{"implicit"},
		ResponseTypes:           []string{"token"},
		TokenEndpointAuthMethod: clients.AuthMethodNone,
		SecretHash:              "plain",
		RedirectURIs:            []string{"/cb", "/cb"},
		AccessTokenFormat:       "paseto",
		RateLimit:               -3,
	}
	err := clients.Validate(c)
	want := []string{
		"id", "grant_types[0]", "response_types[0]", "secret", "response_types",
		"redirect_uris[0]", "redirect_uris[1]", "access_token_format", "rate_limit",
	}
	for _, field := range want {
		if !hasProblem(err, field) {
			t.Errorf("no problem with %s in %q", field, err)
		}
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("Validate returned %T, want errors.Join's type", err)
	}
	if n, lines := len(joined.Unwrap()), len(problems(err)); n != lines || n < len(want) {
		t.Fatalf("%d errors on %d lines, want one line each and at least %d", n, lines, len(want))
	}
}
