package latchtest_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchauth/latch/latchtest"
)

// Use Latch from Go: discovery with github.com/coreos/go-oidc and a token
// with golang.org/x/oauth2/clientcredentials. Against `latch serve --dev`
// the issuer is http://127.0.0.1:8080 and the client demo-client with
// secret demo-secret; here a latchtest server stands in. The README's
// "Use it from Python, Node and Go" shows the lines after Start.
func Example_fromGo() {
	srv, err := latchtest.Start()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	issuer, clientID, clientSecret := srv.Issuer(), srv.ConfidentialClient().ID, srv.ConfidentialClient().Secret

	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, issuer) // GET /.well-known/openid-configuration
	if err != nil {
		log.Fatal(err)
	}
	cc := clientcredentials.Config{
		ClientID:     clientID,
		ClientSecret: clientSecret,
		TokenURL:     provider.Endpoint().TokenURL,
		Scopes:       []string{"read"},
	}
	tok, err := cc.Token(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.TokenType, tok.Extra("scope"))
	// Output: bearer read
}

// TestSnippetsFromOtherLanguages runs the README's Python and Node
// snippets (docs/snippets/) against a real server, with the interpreter
// and library a user would have. Each skips, saying why, when its
// interpreter or library is missing; .ci/run installs both.
func TestSnippetsFromOtherLanguages(t *testing.T) {
	srv := latchtest.New(t)
	c := srv.ConfidentialClient()
	env := append(os.Environ(), "ISSUER="+srv.Issuer(), "CLIENT_ID="+c.ID, "CLIENT_SECRET="+c.Secret)
	for _, tc := range []struct {
		name, file string
		runners    [][]string // the first that works: interpreter and the check that the library is there
		want       string
	}{
		{"python requests-oauthlib", "client_credentials.py",
			[][]string{{"python3", "-c", "import requests_oauthlib"}, {"/usr/bin/python3", "-c", "import requests_oauthlib"}},
			"active: True scope: read"},
		{"node fetch", "client_credentials.mjs", [][]string{{"node", "-e", "fetch"}}, "active: true scope: read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			interpreter := ""
			for _, r := range tc.runners {
				if err := exec.Command(r[0], r[1:]...).Run(); err == nil {
					interpreter = r[0]
					break
				}
			}
			if interpreter == "" {
				t.Skipf("no interpreter with the library: tried %q", tc.runners)
			}
			cmd := exec.Command(interpreter, filepath.Join("..", "docs", "snippets", tc.file))
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s %s: %v\n%s", interpreter, tc.file, err, out)
			}
			if got := strings.TrimSpace(string(out)); got != tc.want {
				t.Errorf("printed %q, want %q", got, tc.want)
			}
		})
	}
}
