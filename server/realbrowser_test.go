package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/clients"
)

// TestRealBrowser signs in with headless Chromium, which does what the Go
// browser of the other tests cannot: it applies the CSP, the referrer policy
// and SameSite, and it chooses the Origin header of a form post itself (a
// no-referrer policy once made it send "Origin: null", and gorilla/csrf
// refused every real sign-in). It skips without Chromium, unless
// LATCH_REQUIRE_BROWSER=1 (as in CI); LATCH_TEST_CHROMIUM names a binary.
func TestRealBrowser(t *testing.T) {
	bin := chromiumPath(t)
	for _, mode := range []string{"query", "form_post"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			ts, rp, ctx := realBrowserSetup(t, bin)
			require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(rp.authorizeURL(ts, mode))))
			rp.exchange(t, ts, signInAndAllow(t, ctx, rp, "alice-password", mode))
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		t.Parallel()
		ts, rp, ctx := realBrowserSetup(t, bin)
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(rp.authorizeURL(ts, "query"))))
		await(t, ctx, "#username")
		require.NoError(t, chromedp.Do(ctx,
			chromedp.SendKeys(chromedp.CSS("#username"), "alice"),
			chromedp.SendKeys(chromedp.CSS("#password"), "not-alice-password"),
			chromedp.Click(chromedp.CSS(`button[type=submit]`))))
		await(t, ctx, "#login-error")
		msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#login-error")))
		require.NoError(t, err)
		require.Equal(t, "Wrong username or password.", msg)
		// The re-rendered form (new CSRF field, username kept) still works.
		require.NoError(t, chromedp.Do(ctx,
			chromedp.SendKeys(chromedp.CSS("#password"), "alice-password"),
			chromedp.Click(chromedp.CSS(`button[type=submit]`))))
		rp.exchange(t, ts, allow(t, ctx, rp, "query"))
	})
	t.Run("logout", func(t *testing.T) {
		t.Parallel()
		ts, rp, ctx := realBrowserSetup(t, bin)
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(rp.authorizeURL(ts, "query"))))
		signInAndAllow(t, ctx, rp, "alice-password", "query")
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/oauth2/sessions/logout")))
		await(t, ctx, "button[value=allow]")
		require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS("button[value=allow]"))))
		await(t, ctx, "p.message")
		h1, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("h1")))
		require.NoError(t, err)
		require.Equal(t, "You are signed out", h1)
		// The session really ended: a new sign-in asks for the password.
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(rp.authorizeURL(ts, "query"))))
		await(t, ctx, "#password")
	})
}

// chromiumPath finds Chromium, or skips (fails under LATCH_REQUIRE_BROWSER=1).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("LATCH_TEST_CHROMIUM"), "chromium", "chromium-browser"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no Chromium: set LATCH_TEST_CHROMIUM to a binary or put chromium (Debian package chromium) in PATH"
	if os.Getenv("LATCH_REQUIRE_BROWSER") == "1" {
		t.Fatal(msg + "; LATCH_REQUIRE_BROWSER=1 forbids skipping the real-browser test")
	}
	t.Skip(msg + "; skipping the real-browser test")
	return ""
}

// relyingParty is a client's callback on 127.0.0.1 that records what the
// browser brings it: the query of a GET, the form of a POST.
type relyingParty struct {
	id, secret, redirect string
	hits                 chan rpHit
}

type rpHit struct {
	method string
	values url.Values
}

// realBrowserSetup starts a server, a relying party registered on it, and a
// Chromium whose context ends after 30 s at most. At the end of the test it
// fails on any CSP violation the browser reported.
func realBrowserSetup(t *testing.T, bin string, opts ...option) (*testServer, *relyingParty, context.Context) {
	t.Helper()
	ts := newTestServer(t, opts...)
	rp := &relyingParty{id: "browser-rp", hits: make(chan rpHit, 4)}
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/cb" {
			http.NotFound(w, r)
			return
		}
		_ = r.ParseForm()
		v := r.URL.Query()
		if r.Method == http.MethodPost {
			v = r.PostForm
		}
		select {
		case rp.hits <- rpHit{r.Method, v}:
		default:
		}
		fmt.Fprint(w, `<!doctype html><link rel="icon" href="data:,"><title>RP</title><h1 id="rp-callback">Callback received</h1>`)
	}))
	t.Cleanup(cb.Close)
	rp.redirect = cb.URL + "/cb"
	m := clients.Manager{Store: ts.Store, Hasher: clients.NewHasher(10)}
	var err error
	rp.secret, err = m.Create(context.Background(), &clients.Client{
		ID: rp.id, Name: "Browser RP", TokenEndpointAuthMethod: clients.AuthMethodBasic,
		GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
		RedirectURIs: []string{rp.redirect}, Scopes: []string{"openid", "profile", "email", "offline_access"},
	}, "")
	require.NoError(t, err)

	ctx, cancelTimeout := context.WithTimeout(context.Background(), 30*time.Second)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, chromedp.ExecPath(bin), chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true))
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc(); cancelTimeout() })
	var mu sync.Mutex
	var lines []string
	require.NoError(t, chromedp.Listen(bctx, func(ev any) {
		var line string
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			parts := []string{"console." + string(e.Type) + ":"}
			for _, a := range e.Args {
				parts = append(parts, strings.TrimSpace(a.Description+" "+string(a.Value)))
			}
			line = strings.Join(parts, " ")
		case *log.EventEntryAdded:
			line = fmt.Sprintf("%s %s: %s (%s)", e.Entry.Source, e.Entry.Level, e.Entry.Text, e.Entry.URL)
		default:
			return
		}
		mu.Lock()
		lines = append(lines, line)
		mu.Unlock()
	}), "start Chromium")
	t.Cleanup(func() {
		// A command's reply comes after the events before it: flush them.
		if _, err := chromedp.Run(bctx, chromedp.Location()); err != nil {
			t.Errorf("the browser did not last the test: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, l := range lines {
			t.Log("browser:", l)
			if strings.Contains(l, "Content Security Policy") {
				t.Errorf("CSP violation: %s", l)
			}
		}
	})
	return ts, rp, bctx
}

func (rp *relyingParty) authorizeURL(ts *testServer, mode string) string {
	return ts.URL + "/oauth2/auth?" + url.Values{
		"response_type": {"code"}, "response_mode": {mode}, "client_id": {rp.id}, "redirect_uri": {rp.redirect},
		"scope": {"openid profile email offline_access"}, "state": {"state-" + mode}, "nonce": {"nonce-1234567890"},
	}.Encode()
}

// await waits until sel is on the page, and fails at once on an error page
// (such as gorilla/csrf's 403) instead of timing out.
func await(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(sel+", p.status"))), "wait for %s", sel)
	failed, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!document.querySelector("p.status")`))
	require.NoError(t, err)
	if failed {
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("error page at %s instead of %s:\n%s", loc, sel, body)
	}
}

// signInAndAllow signs in as alice on the login page the browser shows,
// then allows on the consent page; see allow.
func signInAndAllow(t *testing.T, ctx context.Context, rp *relyingParty, password, mode string) rpHit {
	t.Helper()
	signInAs(t, ctx, "alice", password)
	return allow(t, ctx, rp, mode)
}

// signInAs fills the login page the browser shows and submits it.
func signInAs(t *testing.T, ctx context.Context, username, password string) {
	t.Helper()
	await(t, ctx, "#username")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#username"), username),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS(`button[type=submit]`))))
}

// allow waits for the consent page, allows, and returns what the relying
// party then receives: a GET with the code (query) or a POST (form_post).
func allow(t *testing.T, ctx context.Context, rp *relyingParty, mode string) rpHit {
	t.Helper()
	await(t, ctx, "button[value=allow]")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS("button[value=allow]"))))
	select {
	case hit := <-rp.hits:
		want := map[string]string{"query": http.MethodGet, "form_post": http.MethodPost}[mode]
		require.Equal(t, want, hit.method, "callback %v", hit.values)
		require.Equal(t, "state-"+mode, hit.values.Get("state"), "callback %v", hit.values)
		require.NotEmpty(t, hit.values.Get("code"), "callback %v", hit.values)
		// Let that navigation end: a new one would race it (ERR_ABORTED).
		await(t, ctx, "#rp-callback")
		return hit
	case <-time.After(10 * time.Second):
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("the relying party got no code in 10 s; the page says:\n%s", body)
		return rpHit{}
	}
}

// exchange redeems the code like a confidential client.
func (rp *relyingParty) exchange(t *testing.T, ts *testServer, hit rpHit) {
	t.Helper()
	r := ts.post(t, "/oauth2/token", "form", map[string]string{"grant_type": "authorization_code",
		"code": hit.values.Get("code"), "redirect_uri": rp.redirect}, basicAuth(rp.id, rp.secret))
	require.Equal(t, http.StatusOK, r.Status, "token exchange: %s", r.Body)
	require.NotEmpty(t, r.json(t)["id_token"])
}
