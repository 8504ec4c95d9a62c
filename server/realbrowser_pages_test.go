package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// TestRealBrowserErrorPage: Chromium shows the error page of a refused
// authorization request with the error code and the request id in view,
// and the developer's text folded away until asked for. With
// LATCH_SCREENSHOTS_DIR set it saves the page at 1280 and 390 px wide.
func TestRealBrowserErrorPage(t *testing.T) {
	bin := chromiumPath(t)
	t.Parallel()
	ts, rp, ctx := realBrowserSetup(t, bin)
	target, err := url.Parse(rp.authorizeURL(ts, "query"))
	require.NoError(t, err)
	q := target.Query()
	q.Set("redirect_uri", "https://evil.example/cb")
	target.RawQuery = q.Encode()
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(target.String()), chromedp.WaitVisible(chromedp.CSS("#request-id"))))
	h1, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("h1")))
	require.NoError(t, err)
	require.Equal(t, "Unregistered return address", h1)
	code, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#error-code")))
	require.NoError(t, err)
	require.Equal(t, "invalid_request", code)
	folded, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!document.querySelector("details").open && !document.querySelector("#error-details").checkVisibility()`))
	require.NoError(t, err)
	require.True(t, folded, "the developer's text is folded")
	screenshots(t, ctx, "error")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS("summary")), chromedp.WaitVisible(chromedp.CSS("#error-details"))))
	screenshots(t, ctx, "error-details")
}

// TestRealBrowserFormPostWithoutJavaScript: with JavaScript off, the
// form_post page shows a Continue button, which carries the code to the
// client; with it on, the page submits itself under its strict CSP
// (TestRealBrowser/form_post, which fails on any CSP report).
func TestRealBrowserFormPostWithoutJavaScript(t *testing.T) {
	bin := chromiumPath(t)
	t.Parallel()
	ts, rp, ctx := realBrowserSetup(t, bin)
	require.NoError(t, chromedp.Do(ctx, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		return chromedp.Void{}, err
	}))
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(rp.authorizeURL(ts, "form_post"))))
	signInAs(t, ctx, "alice", "alice-password")
	await(t, ctx, "button[value=allow]")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS("button[value=allow]")),
		chromedp.WaitVisible(chromedp.CSS("#form-post button"))))
	label, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#form-post button")))
	require.NoError(t, err)
	require.Equal(t, "Continue", label)
	screenshots(t, ctx, "form_post-noscript")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#form-post button"))))
	select {
	case hit := <-rp.hits:
		require.Equal(t, http.MethodPost, hit.method)
		require.NotEmpty(t, hit.values.Get("code"))
		require.Equal(t, "state-form_post", hit.values.Get("state"))
		await(t, ctx, "#rp-callback")
	case <-time.After(10 * time.Second):
		t.Fatal("Continue did not reach the client in 10 s")
	}
}

// screenshots saves the page at 1280 and 390 px wide into
// $LATCH_SCREENSHOTS_DIR, when it is set, for a person to look at.
func screenshots(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("LATCH_SCREENSHOTS_DIR")
	if dir == "" {
		return
	}
	for _, width := range []int64{1280, 390} {
		require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(width, 800)))
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%d.png", name, width)), png, 0o644))
	}
}
