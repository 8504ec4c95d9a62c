package clients_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/latchauth/latch/clients"
)

func TestClientAuthMethod(t *testing.T) {
	tests := []struct {
		method     string
		public     bool
		wantMethod string
		signingAlg string
	}{
		{"", false, clients.AuthMethodBasic, ""},
		{clients.AuthMethodBasic, false, clients.AuthMethodBasic, ""},
		{clients.AuthMethodPost, false, clients.AuthMethodPost, ""},
		{clients.AuthMethodPrivateKey, false, clients.AuthMethodPrivateKey, "RS256"},
		{clients.AuthMethodNone, true, clients.AuthMethodNone, ""},
		{"None", false, "None", ""},
	}
	for _, tc := range tests {
		t.Run(tc.method, func(t *testing.T) {
			c := &clients.Client{TokenEndpointAuthMethod: tc.method}
			if got := fosite.Client(c).IsPublic(); got != tc.public {
				t.Errorf("IsPublic = %v, want %v", got, tc.public)
			}
			oidc := fosite.OpenIDConnectClient(c)
			if got := oidc.GetTokenEndpointAuthMethod(); got != tc.wantMethod {
				t.Errorf("GetTokenEndpointAuthMethod = %q, want %q", got, tc.wantMethod)
			}
			if got := oidc.GetTokenEndpointAuthSigningAlgorithm(); got != tc.signingAlg {
				t.Errorf("GetTokenEndpointAuthSigningAlgorithm = %q, want %q", got, tc.signingAlg)
			}
		})
	}
}

func TestClientResponseTypes(t *testing.T) {
	tests := []struct {
		name  string
		types []string
		want  fosite.Arguments
	}{
		{"nil stays empty", nil, nil},
		{"empty stays empty", []string{}, fosite.Arguments{}},
		{"code", []string{"code"}, fosite.Arguments{"code"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c fosite.Client = &clients.Client{ResponseTypes: tc.types}
			got := c.GetResponseTypes()
			if len(got) != len(tc.want) || !slices.Equal(got, tc.want) {
				t.Fatalf("GetResponseTypes = %q, want %q (fosite's default of code must not leak in)", got, tc.want)
			}
			if len(tc.types) == 0 && got.Has("code") {
				t.Fatal("an empty list allows code")
			}
		})
	}
}

func TestClientGetters(t *testing.T) {
	jwks := rsaJWKS(t)
	c := &clients.Client{
		ID:            "app",
		SecretHash:    "sha256$abc",
		RedirectURIs:  []string{"https://a.example/cb"},
		GrantTypes:    []string{clients.GrantAuthorizationCode},
		ResponseTypes: []string{"code"},
		Scopes:        []string{"openid", "email"},
		Audience:      []string{"https://api.example"},
		JWKS:          jwks,
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"GetID", c.GetID(), "app"},
		{"GetHashedSecret", string(c.GetHashedSecret()), "sha256$abc"},
		{"GetRedirectURIs", c.GetRedirectURIs(), []string{"https://a.example/cb"}},
		{"GetGrantTypes", c.GetGrantTypes(), fosite.Arguments{"authorization_code"}},
		{"GetScopes", c.GetScopes(), fosite.Arguments{"openid", "email"}},
		{"GetAudience", c.GetAudience(), fosite.Arguments{"https://api.example"}},
		{"GetJSONWebKeys", c.GetJSONWebKeys(), jwks},
		{"GetJSONWebKeysURI", c.GetJSONWebKeysURI(), ""},
		{"GetRequestURIs", c.GetRequestURIs(), []string(nil)},
		{"GetRequestObjectSigningAlgorithm", c.GetRequestObjectSigningAlgorithm(), ""},
		{"GetResponseModes", c.GetResponseModes(), []fosite.ResponseModeType{
			fosite.ResponseModeDefault, fosite.ResponseModeQuery, fosite.ResponseModeFragment, fosite.ResponseModeFormPost}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !reflect.DeepEqual(tc.got, tc.want) {
				t.Fatalf("%s = %#v, want %#v", tc.name, tc.got, tc.want)
			}
		})
	}
	t.Run("public client has an empty hashed secret", func(t *testing.T) {
		if got := (&clients.Client{TokenEndpointAuthMethod: clients.AuthMethodNone}).GetHashedSecret(); len(got) != 0 {
			t.Fatalf("GetHashedSecret = %q, want empty", got)
		}
	})
}

// TestClientJSON: a Client goes to the admin API and into the store's JSON
// column; its secret hash must never be part of that JSON.
func TestClientJSON(t *testing.T) {
	argon, err := clients.HashChosen("chosen")
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	tests := []struct {
		name   string
		client clients.Client
	}{
		{"confidential, argon2id", clients.Client{
			ID: "web", Name: "Web", SecretHash: argon,
			RedirectURIs:            []string{"https://app.example.com/cb"},
			PostLogoutRedirectURIs:  []string{"https://app.example.com/"},
			GrantTypes:              []string{clients.GrantAuthorizationCode, clients.GrantRefreshToken},
			ResponseTypes:           []string{"code"},
			Scopes:                  []string{"openid"},
			Audience:                []string{"https://api.example.com"},
			TokenEndpointAuthMethod: clients.AuthMethodBasic,
			AccessTokenFormat:       "jwt", RateLimit: 5, SkipConsent: true,
			CreatedAt: created, UpdatedAt: created.Add(time.Hour),
		}},
		{"generated secret", clients.Client{
			ID: "backend", SecretHash: clients.HashGenerated("generated"),
			GrantTypes: []string{clients.GrantClientCredentials}, CreatedAt: created, UpdatedAt: created,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, err := json.Marshal(&tc.client)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if bytes.Contains(data, []byte(tc.client.SecretHash)) {
				t.Fatalf("JSON %s contains the secret hash", data)
			}
			var keys map[string]json.RawMessage
			if err := json.Unmarshal(data, &keys); err != nil {
				t.Fatal(err)
			}
			for k := range keys {
				if strings.Contains(strings.ToLower(k), "secret") {
					t.Errorf("JSON has key %q", k)
				}
			}
			if _, ok := keys["client_id"]; !ok {
				t.Errorf("JSON %s has no client_id", data)
			}

			var back clients.Client
			if err := json.Unmarshal(data, &back); err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			want := tc.client
			want.SecretHash = ""
			if !reflect.DeepEqual(back, want) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", back, want)
			}
		})
	}

	t.Run("JSON cannot set the secret hash", func(t *testing.T) {
		for _, body := range []string{
			`{"client_id":"x","SecretHash":"sha256$abc"}`,
			`{"client_id":"x","secret_hash":"sha256$abc"}`,
			`{"client_id":"x","-":"sha256$abc"}`,
		} {
			var c clients.Client
			if err := json.Unmarshal([]byte(body), &c); err != nil {
				t.Fatalf("Unmarshal(%s): %v", body, err)
			}
			if c.SecretHash != "" {
				t.Errorf("Unmarshal(%s) set SecretHash = %q", body, c.SecretHash)
			}
		}
	})

	t.Run("JWKS round trip", func(t *testing.T) {
		c := clients.Client{ID: "signer", TokenEndpointAuthMethod: clients.AuthMethodPrivateKey, JWKS: rsaJWKS(t)}
		data, err := json.Marshal(&c)
		if err != nil {
			t.Fatal(err)
		}
		var back clients.Client
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		if back.JWKS == nil || len(back.JWKS.Keys) != 1 || back.JWKS.Keys[0].KeyID != "k1" || !back.JWKS.Keys[0].IsPublic() {
			t.Fatalf("JWKS after round trip = %+v", back.JWKS)
		}
	})
}
