package latchtest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"

	"github.com/latchauth/latch/latchtest"
)

// Start a server and get a token with golang.org/x/oauth2/clientcredentials.
// In a test, latchtest.New(t) does the same and stops the server when the
// test ends.
func ExampleStart() {
	srv, err := latchtest.Start()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	cc := srv.ClientCredentials(srv.ConfidentialClient(), "read")
	tok, err := cc.Token(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.TokenType, tok.Valid(), tok.Extra("scope"))
	// Output: bearer true read
}

// Mint a refresh token for alice without a browser, then use it at the
// token endpoint as a client library would.
func ExampleServer_IssueToken() {
	srv, err := latchtest.Start()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	tok, err := srv.IssueToken(latchtest.IssueOptions{Subject: "alice", Scopes: []string{"read"}, Refresh: true})
	if err != nil {
		log.Fatal(err)
	}
	cfg := srv.OAuth2Config(srv.ConfidentialClient())
	fresh, err := cfg.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.Extra("scope"))
	fmt.Println(fresh.AccessToken != tok.AccessToken, fresh.RefreshToken != tok.RefreshToken)
	// Output:
	// read offline_access
	// true true
}

// The next request to the token endpoint fails, as for a retry test; the
// one after gets a token.
func ExampleServer_FailNext() {
	srv, err := latchtest.Start()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	srv.FailNext("/oauth2/token", 1, http.StatusServiceUnavailable, "temporarily_unavailable")
	cc := srv.ClientCredentials(srv.ConfidentialClient(), "read")
	_, err = cc.Token(context.Background())
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		fmt.Println(re.Response.StatusCode, re.ErrorCode)
	}
	tok, err := cc.Token(context.Background())
	fmt.Println(err == nil && tok.Valid())
	// Output:
	// 503 temporarily_unavailable
	// true
}

// An expired token introspects inactive.
func ExampleServer_Expire() {
	srv, err := latchtest.Start()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	tok, err := srv.IssueToken(latchtest.IssueOptions{Scopes: []string{"read"}})
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Expire(tok.AccessToken); err != nil {
		log.Fatal(err)
	}
	c := srv.ConfidentialClient()
	form := url.Values{"token": {tok.AccessToken}}
	req, _ := http.NewRequest(http.MethodPost, srv.Issuer()+"/oauth2/introspect", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.ID, c.Secret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	fmt.Print(string(body))
	// Output: {"active":false}
}
