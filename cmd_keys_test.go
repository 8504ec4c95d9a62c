package main

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// publishedKIDs reads the kids of the running server's JWKS.
func publishedKIDs(t *testing.T, issuer string) []string {
	t.Helper()
	resp, err := http.Get(issuer + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
			D   string `json:"d"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		if k.D != "" {
			t.Fatal("the JWKS publishes a private key")
		}
		kids = append(kids, k.KID)
	}
	return kids
}

type listedKey struct {
	KID       string     `json:"kid"`
	Algorithm string     `json:"alg"`
	RetiredAt *time.Time `json:"retired_at"`
	ExpiresAt *time.Time `json:"expires_at"`
	Current   bool       `json:"current"`
}

func listKeys(t *testing.T, env map[string]string) []listedKey {
	t.Helper()
	out := mustLatch(t, env, "", "keys", "list", "--output", "json")
	var keys []listedKey
	if err := json.Unmarshal([]byte(out), &keys); err != nil {
		t.Fatalf("keys list --output json printed %q: %v", out, err)
	}
	if strings.Contains(out, `"d"`) || strings.Contains(out, "private") {
		t.Fatalf("keys list shows a private key:\n%s", out)
	}
	return keys
}

var rotatedLine = regexp.MustCompile(`^new signing key (\S+) \((RS256|ES256)\) is current`)

// TestKeysRotateWhileServing: a rotation by the CLI reaches the JWKS of a
// running server on the same database within its 5 s key cache, and the
// old key stays published for the tokens it signed.
func TestKeysRotateWhileServing(t *testing.T) {
	env := cliDB(t)
	issuer, _ := startServe(t, env, "--listen", "127.0.0.1:0")
	before := publishedKIDs(t, issuer)
	if len(before) != 1 {
		t.Fatalf("a fresh server publishes %v", before)
	}
	old := before[0]
	if keys := listKeys(t, env); len(keys) != 1 || keys[0].KID != old || !keys[0].Current || keys[0].RetiredAt != nil {
		t.Fatalf("keys list before rotation: %+v", keys)
	}

	out := mustLatch(t, env, "", "keys", "rotate")
	m := rotatedLine.FindStringSubmatch(out)
	if m == nil || m[2] != "RS256" {
		t.Fatalf("keys rotate printed:\n%s", out)
	}
	// Default lifespans: 1h for ID and access tokens, plus the 5 s cache.
	if !strings.Contains(out, "stay published for 1h0m5s") {
		t.Fatalf("keys rotate does not say how long the old key stays:\n%s", out)
	}
	kid := m[1]
	if kid == old {
		t.Fatal("rotate kept the kid")
	}

	deadline := time.Now().Add(7 * time.Second)
	for {
		kids := publishedKIDs(t, issuer)
		if slices.Contains(kids, kid) {
			if !slices.Contains(kids, old) {
				t.Fatalf("the old key left the JWKS at once: %v", kids)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new kid %s is not in the JWKS after 7 s: %v", kid, kids)
		}
		time.Sleep(200 * time.Millisecond)
	}

	keys := listKeys(t, env)
	if len(keys) != 2 || keys[0].KID != kid || !keys[0].Current || keys[0].RetiredAt != nil ||
		keys[1].KID != old || keys[1].Current || keys[1].RetiredAt == nil || keys[1].ExpiresAt == nil {
		t.Fatalf("keys list after rotation: %+v", keys)
	}
	if d := time.Until(*keys[1].ExpiresAt); d < time.Hour-time.Minute || d > time.Hour+time.Minute {
		t.Fatalf("the old key is published until %s, %s from now", keys[1].ExpiresAt, d)
	}

	table := strings.Split(strings.TrimSpace(mustLatch(t, env, "", "keys", "list")), "\n")
	if len(table) != 3 || !strings.HasPrefix(table[0], "KID") || !strings.HasPrefix(table[1], kid+"  RS256") ||
		!strings.HasSuffix(table[1], "yes") || !strings.HasSuffix(table[2], "no") {
		t.Fatalf("keys list table:\n%s", strings.Join(table, "\n"))
	}
}

func TestKeysWithoutServer(t *testing.T) {
	env := cliDB(t)
	if out := mustLatch(t, env, "", "keys", "list"); out != "KID  ALGORITHM  CREATED  RETIRED  EXPIRES  CURRENT\n" {
		t.Fatalf("keys list of an empty database printed %q", out)
	}
	// ES256 from the configuration applies to the keys rotate makes.
	env["LATCH_TOKENS_ID_TOKEN_SIGNING_ALG"] = "ES256"
	out := mustLatch(t, env, "", "keys", "rotate")
	if m := rotatedLine.FindStringSubmatch(out); m == nil || m[2] != "ES256" {
		t.Fatalf("keys rotate printed:\n%s", out)
	}
	if keys := listKeys(t, env); len(keys) != 1 || !keys[0].Current || keys[0].Algorithm != "ES256" {
		t.Fatalf("keys list: %+v", keys)
	}
	if _, _, err := latch(t, env, "", "keys", "list", "--output", "yaml"); err == nil {
		t.Fatal("keys list accepted --output yaml")
	}
}

// TestKeysRotateUnpublishDropsLeakedKeyAtOnce: a key that may have leaked
// leaves the JWKS with the rotation, not when its tokens would expire.
func TestKeysRotateUnpublishDropsLeakedKeyAtOnce(t *testing.T) {
	env := cliDB(t)
	mustLatch(t, env, "", "keys", "rotate")
	leaked := onlyKID(t, env)
	out := mustLatch(t, env, "", "keys", "rotate", "--unpublish")
	if !strings.Contains(out, "no longer published") {
		t.Fatalf("keys rotate --unpublish printed:\n%s", out)
	}
	if kid := onlyKID(t, env); kid == leaked {
		t.Fatal("the leaked key is still the one listed")
	}
	issuer, _ := startServe(t, env, "--listen", "127.0.0.1:0")
	if kids := publishedKIDs(t, issuer); len(kids) != 1 || kids[0] == leaked {
		t.Fatalf("the JWKS publishes %v after --unpublish (leaked key %s)", kids, leaked)
	}
}
