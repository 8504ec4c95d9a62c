package main

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/storage"
	"github.com/latchauth/latch/users"
)

// The demo client and user of --dev have fixed, published credentials so
// the README's walk-throughs work verbatim. --dev keeps everything in
// memory; they exist nowhere else.
const (
	demoClientID     = "demo-client"
	demoClientSecret = "demo-secret"
	demoWebClientID  = "demo-web"
	demoSPAClientID  = "demo-spa"
	demoDeviceID     = "demo-device"
	demoRedirectURI  = "http://127.0.0.1:5555/callback"
	demoUsername     = "alice"
	demoPassword     = "alice-password"
	// The argon2id hashes of demoClientSecret and demoPassword, made once
	// with passhash.Hash: hashing them at every start took about 150 ms
	// and 60 MB. TestDemoHashes checks they still match.
	demoClientSecretHash = "$argon2id$v=19$m=19456,t=2,p=1$NRSI7jMxWrpxsepqVcHKWw$OK7t/z37memQGZPHcSVeRFKAfpYMM+TcFYJkbLO4ttM"
	demoPasswordHash     = "$argon2id$v=19$m=19456,t=2,p=1$tVj38LYhSSoFGvE290hKDw$IsBIJddc15KFYhzJM8NufylNCgkMcDHovx7drAsQPwQ"
	// demoCodeVerifier is the PKCE verifier of the printed demo-spa URL.
	demoCodeVerifier = "dev-mode-code-verifier-of-the-printed-url-0123456789"
)

// demoCodeChallenge is the S256 challenge of demoCodeVerifier.
func demoCodeChallenge() string {
	sum := sha256.Sum256([]byte(demoCodeVerifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// createDemoClients stores the demo clients and user. hasher learns the
// demo secret's pair, which is public and whose hash is a constant: no
// request of the demo client then runs argon2id (19 MiB).
func (c *cli) createDemoClients(ctx context.Context, st storage.Store, hasher *clients.Hasher, issuer string) error {
	demo := []struct {
		client *clients.Client
		secret string
	}{
		{&clients.Client{
			ID:                      demoClientID,
			Name:                    "Demo service",
			GrantTypes:              []string{clients.GrantClientCredentials},
			Scopes:                  []string{"read", "write"},
			TokenEndpointAuthMethod: clients.AuthMethodBasic,
		}, demoClientSecret},
		{&clients.Client{
			ID:                      demoWebClientID,
			Name:                    "Demo web app",
			GrantTypes:              []string{clients.GrantAuthorizationCode, clients.GrantRefreshToken, clients.GrantClientCredentials},
			ResponseTypes:           []string{"code"},
			RedirectURIs:            []string{demoRedirectURI},
			PostLogoutRedirectURIs:  []string{"http://127.0.0.1:5555/"},
			Scopes:                  []string{"openid", "profile", "email", "groups", "offline_access", "read"},
			TokenEndpointAuthMethod: clients.AuthMethodBasic,
		}, demoClientSecret},
		{&clients.Client{
			ID:                      demoSPAClientID,
			Name:                    "Demo single-page app",
			GrantTypes:              []string{clients.GrantAuthorizationCode, clients.GrantRefreshToken},
			ResponseTypes:           []string{"code"},
			RedirectURIs:            []string{demoRedirectURI},
			PostLogoutRedirectURIs:  []string{"http://127.0.0.1:5555/"},
			Scopes:                  []string{"openid", "profile", "email", "groups", "offline_access"},
			TokenEndpointAuthMethod: clients.AuthMethodNone,
		}, ""},
		{&clients.Client{
			ID:                      demoDeviceID,
			Name:                    "Demo device",
			GrantTypes:              []string{clients.GrantDeviceCode, clients.GrantRefreshToken},
			Scopes:                  []string{"openid", "profile", "offline_access"},
			TokenEndpointAuthMethod: clients.AuthMethodNone,
		}, ""},
	}
	for _, d := range demo {
		if d.secret != "" {
			d.client.SecretHash = demoClientSecretHash
			hasher.Remember(demoClientSecretHash, d.secret)
		}
		if err := clients.Validate(d.client); err != nil {
			return fmt.Errorf("dev: demo client %s: %w", d.client.ID, err)
		}
		if err := st.CreateClient(ctx, d.client); err != nil {
			return fmt.Errorf("dev: demo client %s: %w", d.client.ID, err)
		}
	}
	err := users.Seed(ctx, st, []config.User{{
		Username: demoUsername, PasswordHash: demoPasswordHash, Email: "alice@example.com", EmailVerified: true,
		Name: "Alice Example", Groups: []string{"admins"},
	}})
	if err != nil {
		return fmt.Errorf("dev: demo user: %w", err)
	}
	spa := url.Values{
		"response_type": {"code"}, "client_id": {demoSPAClientID}, "redirect_uri": {demoRedirectURI},
		"scope": {"openid profile email offline_access"}, "state": {"xyz12345"}, "nonce": {"n0nce1234"},
		"code_challenge": {demoCodeChallenge()}, "code_challenge_method": {"S256"},
	}
	fmt.Fprintf(c.stdout, `dev mode: in-memory database, nothing is kept; the demo credentials below are public.
issuer:       %[1]s
demo user:    %[2]s / %[3]s
demo clients:
  %-12[4]s secret %-12[5]s client_credentials (scopes read write)
  %-12[6]s secret %-12[5]s authorization_code + refresh_token + client_credentials, redirect %[7]s
  %-12[8]s public (PKCE)        authorization_code + refresh_token, redirect %[7]s
  %-12[9]s public               device_code + refresh_token (scopes openid profile offline_access)
get a token (client_credentials):
  curl -s -u %[4]s:%[5]s -d grant_type=client_credentials -d scope=read %[1]s/oauth2/token
sign in with a browser (%[6]s, then exchange the code with -u %[6]s:%[5]s):
  %[1]s/oauth2/auth?response_type=code&client_id=%[6]s&redirect_uri=%[7]s&scope=openid+profile+email+offline_access&state=xyz12345&nonce=n0nce1234
sign in with PKCE (%[8]s), then exchange the code:
  %[1]s/oauth2/auth?%[10]s
  curl -s -d grant_type=authorization_code -d client_id=%[8]s -d redirect_uri=%[7]s -d code_verifier=%[11]s -d code=PASTE_THE_CODE %[1]s/oauth2/token
connect a device (then open verification_uri_complete in a browser):
  curl -s -d client_id=%[9]s -d scope='openid profile offline_access' %[1]s/oauth2/device/auth
any client id works, dev mode only: an unknown client_id is created on first use, public (PKCE)
  or, when it sends a secret, confidential with that secret; any http://127.0.0.1 or localhost
  redirect URI is accepted for it. Registration is on: POST %[1]s/oauth2/register
the login page also signs in any subject with any claims (a JSON object), dev mode only
test helpers, dev mode only: POST %[1]s/dev/tokens, /dev/expire, /dev/fail (JSON; see the README)
  curl -s -H 'Content-Type: application/json' -d '{"client_id":"%[6]s","subject":"%[2]s","scope":"openid profile","id_token":true}' %[1]s/dev/tokens
`, issuer, demoUsername, demoPassword,
		demoClientID, demoClientSecret, demoWebClientID, demoRedirectURI, demoSPAClientID, demoDeviceID,
		spa.Encode(), demoCodeVerifier)
	return nil
}

//go:embed dev_signing_key.pem
var devSigningKeyPEM []byte

// devSigningKey is the fixed, public RSA key --dev signs with (see
// dev_signing_key.pem), so a dev start generates no key; nil when ID
// tokens are to be ES256, whose keys cost microseconds to generate.
func devSigningKey(alg string) (*storage.SigningKey, error) {
	if alg != "" && alg != "RS256" {
		return nil, nil
	}
	block, _ := pem.Decode(devSigningKeyPEM)
	if block == nil {
		return nil, errors.New("dev: no PEM block in dev_signing_key.pem")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("dev: signing key: %w", err)
	}
	const kid = "latch-dev-public-key"
	raw, err := json.Marshal(jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: "RS256", Use: "sig"})
	if err != nil {
		return nil, err
	}
	return &storage.SigningKey{KID: kid, Algorithm: "RS256", PrivateJWK: raw, CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}, nil
}
