package main

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/latchauth/latch/latchtest"
	"github.com/latchauth/latch/passhash"
)

// TestServeDevPrintsAndHelpers: --dev prints the issuer, each demo client
// and the user, each with a URL or a curl line, and what dev mode adds
// (any client id, registration), and mounts the /dev/ helpers and
// registration; serve without --dev does not.
func TestServeDevPrintsAndHelpers(t *testing.T) {
	t.Chdir(t.TempDir())
	issuer, out := startServe(t, nil, "--dev", "--listen", "127.0.0.1:0")
	for _, want := range []string{
		"issuer:       " + issuer + "\n",
		"demo user:    alice / alice-password",
		"curl -s -u demo-client:demo-secret -d grant_type=client_credentials",
		issuer + "/oauth2/auth?response_type=code&client_id=demo-web&",
		"client_id=demo-spa&code_challenge=" + demoCodeChallenge() + "&code_challenge_method=S256",
		"-d code_verifier=" + demoCodeVerifier,
		"-d client_id=demo-device",
		issuer + "/dev/tokens",
		"&scope=openid+profile+email+offline_access&",
		"an unknown client_id is created on first use",
		"POST " + issuer + "/oauth2/register",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dev output lacks %q:\n%s", want, out)
		}
	}
	status, body := postJSON(t, issuer+"/dev/tokens", `{"client_id":"demo-web","subject":"alice","scope":"openid","id_token":true}`)
	if status != http.StatusOK || !strings.Contains(body, `"id_token":"`) {
		t.Fatalf("POST /dev/tokens in dev mode: %d %s", status, body)
	}

	// Dynamic registration is on in dev mode, as on a mock server.
	status, body = postJSON(t, issuer+"/oauth2/register", `{"redirect_uris":["http://127.0.0.1:5555/cb"],"token_endpoint_auth_method":"none"}`)
	if status != http.StatusCreated {
		t.Errorf("POST /oauth2/register in dev mode: %d %s", status, body)
	}

	plain, _ := startServe(t, map[string]string{"LATCH_DATABASE_DSN": "plain.db"}, "--listen", "127.0.0.1:0")
	for _, path := range []string{"/dev/tokens", "/dev/expire", "/dev/fail", "/oauth2/register"} {
		if status, body := postJSON(t, plain+path, `{"client_id":"demo-web"}`); status != http.StatusNotFound {
			t.Errorf("POST %s without --dev: %d %s", path, status, body)
		}
	}
}

func postJSON(t *testing.T, endpoint, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(endpoint, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDemoHashes: the stored hashes of the demo credentials are theirs.
func TestDemoHashes(t *testing.T) {
	for secret, hash := range map[string]string{demoClientSecret: demoClientSecretHash, demoPassword: demoPasswordHash} {
		if err := passhash.Verify(hash, secret); err != nil {
			t.Errorf("the hash of %q does not verify: %v", secret, err)
		}
		if passhash.NeedsRehash(hash) {
			t.Errorf("the hash of %q uses outdated parameters; make it again with passhash.Hash", secret)
		}
	}
}

// TestDevSigningKeyOnlyInDevMode: --dev signs with the published key;
// serve without --dev never does.
func TestDevSigningKeyOnlyInDevMode(t *testing.T) {
	jwks := func(issuer string) string {
		res, err := http.Get(issuer + "/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	dev, _ := startServe(t, nil, "--dev", "--listen", "127.0.0.1:0")
	if !strings.Contains(jwks(dev), `"kid":"latch-dev-public-key"`) {
		t.Fatal("--dev does not publish its fixed key")
	}
	prod, _ := startServe(t, map[string]string{"LATCH_DATABASE_DSN": ":memory:"}, "--listen", "127.0.0.1:0")
	if strings.Contains(jwks(prod), "latch-dev-public-key") {
		t.Fatal("serve without --dev uses the public dev key")
	}
}

// TestSignInHelperAgainstDevServe: latchtest.SignIn, which drives the
// pages like a browser, signs in with the password form of a --dev login
// page that also carries dev mode's subject form.
func TestSignInHelperAgainstDevServe(t *testing.T) {
	t.Chdir(t.TempDir())
	issuer, _ := startServe(t, nil, "--dev", "--listen", "127.0.0.1:0")
	authURL := issuer + "/oauth2/auth?" + url.Values{
		"response_type": {"code"}, "client_id": {demoWebClientID}, "redirect_uri": {demoRedirectURI},
		"scope": {"openid"}, "state": {"state-signin-1"}, "nonce": {"nonce-signin-1"},
	}.Encode()
	code, err := latchtest.SignIn(t.Context(), nil, authURL, demoRedirectURI, "state-signin-1", demoUsername, demoPassword)
	if err != nil || code == "" {
		t.Fatalf("SignIn against --dev: %q, %v", code, err)
	}
}
