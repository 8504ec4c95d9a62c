package latchtest_test

import (
	"net/http"
	"net/http/cookiejar"
	"testing"

	"golang.org/x/oauth2"

	"github.com/latchauth/latch/latchtest"
)

// TestSignIn: SignIn drives the real pages; a browser with a cookie jar
// keeps its login session, so a second sign-in needs no password, and a
// fresh browser with a wrong one fails.
func TestSignIn(t *testing.T) {
	srv := latchtest.New(t)
	c, u := srv.PublicClient(), srv.User()
	cfg := srv.OAuth2Config(c, "openid")
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	browser := &http.Client{Jar: jar}
	signIn := func(hc *http.Client, password string) error {
		verifier, state := oauth2.GenerateVerifier(), "state-of-the-test"
		authURL := cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier))
		code, err := latchtest.SignIn(t.Context(), hc, authURL, cfg.RedirectURL, state, u.Username, password)
		if err != nil {
			return err
		}
		tok, err := cfg.Exchange(t.Context(), code, oauth2.VerifierOption(verifier))
		if err == nil && tok.AccessToken == "" {
			t.Fatal("an exchange without an access token")
		}
		return err
	}
	if err := signIn(browser, u.Password); err != nil {
		t.Fatalf("first sign-in: %v", err)
	}
	if err := signIn(browser, "not-the-password"); err != nil {
		t.Fatalf("the signed-in browser was asked for its password again: %v", err)
	}
	if err := signIn(nil, "not-the-password"); err == nil {
		t.Fatal("a fresh browser signed in with a wrong password")
	}
}
