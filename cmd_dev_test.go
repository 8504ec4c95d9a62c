package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestServeDevPrintsAndHelpers: --dev prints what issue 6 asks for (the
// issuer, each demo client and the user, each with a URL or a curl line)
// and mounts the /dev/ helpers; serve without --dev does not.
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
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dev output lacks %q:\n%s", want, out)
		}
	}
	status, body := postJSON(t, issuer+"/dev/tokens", `{"client_id":"demo-web","subject":"alice","scope":"openid","id_token":true}`)
	if status != http.StatusOK || !strings.Contains(body, `"id_token":"`) {
		t.Fatalf("POST /dev/tokens in dev mode: %d %s", status, body)
	}

	plain, _ := startServe(t, map[string]string{"LATCH_DATABASE_DSN": "plain.db"}, "--listen", "127.0.0.1:0")
	for _, path := range []string{"/dev/tokens", "/dev/expire", "/dev/fail"} {
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
