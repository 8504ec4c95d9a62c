// Package nodetests runs the Node scripts beside this file (node:test,
// oauth4webapi from the lockfile) against a real Latch: the client
// library that client authors use, where Go has none for PAR, JAR, DPoP
// and client_secret_jwt.
package nodetests

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v3"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/internal/skipnote"
	"github.com/latchauth/latch/latchtest"
)

// The clients the scripts use (latch.mjs).
const (
	webClient     = "node-web"     // client_secret_jwt, JAR, DPoP-bound
	serviceClient = "node-service" // private_key_jwt
	gatewayClient = "node-gateway" // private_key_jwt, token exchange (RFC 8693)
)

// requireNode reports whether a missing node, npm or registry must fail
// the test rather than skip it: in CI, where .ci/run installs them.
func requireNode() bool {
	return os.Getenv("LATCH_REQUIRE_NODE") == "1" || os.Getenv("CI") == "true"
}

// unavailable skips t loudly, or fails it where Node is required.
func unavailable(t *testing.T, why string) {
	t.Helper()
	if requireNode() {
		t.Fatalf("%s; CI=true or LATCH_REQUIRE_NODE=1 forbids skipping the oauth4webapi tests", why)
	}
	skipnote.Print("nodetests", "TestOAuth4WebAPI skips: "+why+" (install nodejs >= 20 and npm, and reach the npm registry)")
	t.Skip(why)
}

// node finds node >= 20 and npm.
func node(t *testing.T) (nodeBin, npmBin string) {
	t.Helper()
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		unavailable(t, "no node on PATH")
	}
	out, err := exec.Command(nodeBin, "--version").Output()
	major, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimSpace(string(out)), "v"), ".")
	if n, perr := strconv.Atoi(major); err != nil || perr != nil || n < 20 {
		unavailable(t, fmt.Sprintf("node %q is older than 20", strings.TrimSpace(string(out))))
	}
	npmBin, err = exec.LookPath("npm")
	if err != nil {
		unavailable(t, "no npm on PATH")
	}
	return nodeBin, npmBin
}

// npmCI installs the lockfile's packages into node_modules, unless they
// are there already from the same lockfile (a marker holds its hash), so
// that a second run costs nothing and needs no registry.
func npmCI(t *testing.T, npmBin string) {
	t.Helper()
	lock, err := os.ReadFile("package-lock.json")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(lock)
	want := hex.EncodeToString(sum[:])
	marker := filepath.Join("node_modules", ".latch-lockfile-sha256")
	if got, err := os.ReadFile(marker); err == nil && strings.TrimSpace(string(got)) == want {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npmBin, "ci", "--no-audit", "--no-fund", "--ignore-scripts")
	if out, err := cmd.CombinedOutput(); err != nil {
		unavailable(t, fmt.Sprintf("npm ci failed (no npm registry?): %v\n%s", err, out))
	}
	if err := os.WriteFile(marker, []byte(want+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestOAuth4WebAPI runs every *.test.mjs here with node --test against a
// Latch (latchtest) that requires DPoP nonces, with the clients the
// scripts name, and fails on any failing script.
func TestOAuth4WebAPI(t *testing.T) {
	nodeBin, npmBin := node(t)
	npmCI(t, npmBin)

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	const kid = "node-1"
	private, err := json.Marshal(jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: "ES256", Use: "sig"})
	if err != nil {
		t.Fatal(err)
	}
	public, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: kid, Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	secret := make([]byte, 48)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	webSecret := base64.RawURLEncoding.EncodeToString(secret)

	srv := latchtest.New(t, latchtest.WithConfig(func(f *config.File) {
		f.Tokens.DPoPRequireNonce = true
		f.Clients = append(f.Clients,
			config.Client{
				ID: webClient, Name: "oauth4webapi web", Secret: webSecret,
				TokenEndpointAuthMethod:    clients.AuthMethodSecretJWT,
				GrantTypes:                 []string{clients.GrantAuthorizationCode, clients.GrantRefreshToken, clients.GrantClientCredentials},
				RedirectURIs:               []string{latchtest.RedirectURI},
				Scopes:                     []string{"openid", "profile", "offline_access", "read"},
				JWKS:                       public,
				RequireSignedRequestObject: true,
				DPoPBoundAccessTokens:      true,
			},
			config.Client{
				ID: serviceClient, Name: "oauth4webapi service",
				TokenEndpointAuthMethod: clients.AuthMethodPrivateKey,
				GrantTypes:              []string{clients.GrantClientCredentials},
				Scopes:                  []string{"read"},
				JWKS:                    public,
			},
			config.Client{
				ID: gatewayClient, Name: "oauth4webapi token exchange",
				TokenEndpointAuthMethod: clients.AuthMethodPrivateKey,
				GrantTypes:              []string{clients.GrantClientCredentials, clients.GrantTokenExchange},
				Scopes:                  []string{"read"},
				JWKS:                    public,
				TokenExchange:           &config.TokenExchange{Audiences: []string{"https://billing.example.com"}},
			})
	}))

	scripts, err := filepath.Glob("*.test.mjs")
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no *.test.mjs scripts: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBin, append([]string{"--test", "--test-reporter=spec"}, scripts...)...)
	cmd.Env = append(os.Environ(),
		"NODETEST_ISSUER="+srv.Issuer(),
		"NODETEST_REDIRECT_URI="+latchtest.RedirectURI,
		"NODETEST_USERNAME="+latchtest.Username,
		"NODETEST_PASSWORD="+latchtest.Password,
		"NODETEST_WEB_CLIENT_ID="+webClient,
		"NODETEST_WEB_CLIENT_SECRET="+webSecret,
		"NODETEST_SERVICE_CLIENT_ID="+serviceClient,
		"NODETEST_GATEWAY_CLIENT_ID="+gatewayClient,
		"NODETEST_PRIVATE_JWK="+string(private),
		"NO_COLOR=1",
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test %s: %v\n%s", strings.Join(scripts, " "), err, out)
	}
	t.Logf("node --test:\n%s", out)
}
