package federation_test

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/internal/latchproc"
)

// The real `latch serve`, built once per test run.
var build struct {
	once     sync.Once
	dir, bin string
	err      error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		_ = os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

func latchBinary(t *testing.T) string {
	t.Helper()
	build.once.Do(func() {
		if build.dir, build.err = os.MkdirTemp("", "latch-federation-"); build.err != nil {
			return
		}
		build.bin = filepath.Join(build.dir, "latch")
		build.err = latchproc.Build("..", build.bin, false)
	})
	require.NoError(t, build.err)
	return build.bin
}

// latch is a running `latch serve --config CONFIG`.
type latch struct {
	*latchproc.Proc
	config string
}

// startLatch writes yaml as dir/NAME.yaml and serves it until t ends.
func startLatch(t *testing.T, dir, name, yaml string) *latch {
	t.Helper()
	config := filepath.Join(dir, name+".yaml")
	require.NoError(t, os.WriteFile(config, []byte(yaml), 0o600))
	p, err := latchproc.Start(latchBinary(t), dir, "--config", config)
	require.NoError(t, err, "%s", name)
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("%s stderr:\n%s", name, p.Stderr)
		}
	})
	return &latch{Proc: p, config: config}
}

// cli runs `latch ARGS --config CONFIG` against l's database.
func (l *latch) cli(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(latchBinary(t), append(args, "--config", l.config)...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	return string(out)
}

const adminToken = "admin-token-of-the-federation-tests-0123456789"

// admin calls l's admin API and returns the status.
func (l *latch) admin(t *testing.T, method, path string, body any) int {
	t.Helper()
	var r io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		require.NoError(t, err)
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, l.URL+path, r)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// browser is a person's browser: cookies, redirects followed except to
// the application (stop), every URL it visited kept.
type browser struct {
	t       *testing.T
	client  *http.Client
	visited []string
}

// page is where a request ended.
type page struct {
	status int
	url    *url.URL
	body   string
	header http.Header
}

func newBrowser(t *testing.T, stop string) *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	b := &browser{t: t}
	b.client = &http.Client{Jar: jar, Timeout: 30 * time.Second}
	b.client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		b.visited = append(b.visited, req.URL.String())
		if stop != "" && strings.HasPrefix(req.URL.String(), stop) || len(via) > 20 {
			return http.ErrUseLastResponse
		}
		return nil
	}
	return b
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	b.visited = append(b.visited, req.URL.String())
	resp, err := b.client.Do(req)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	return page{status: resp.StatusCode, url: resp.Request.URL, body: string(body), header: resp.Header}
}

func (b *browser) get(target string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	require.NoError(b.t, err)
	return b.do(req)
}

// submit posts p's form whose action contains action, with its hidden
// inputs and set on top.
func (b *browser) submit(p page, action string, set url.Values) page {
	b.t.Helper()
	target, form := formOf(b.t, p, action)
	for k, v := range set {
		form[k] = v
	}
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	require.NoError(b.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var (
	formRe  = regexp.MustCompile(`(?s)<form[^>]*method="post"[^>]*action="([^"]*)"[^>]*>(.*?)</form>`)
	inputRe = regexp.MustCompile(`<input[^>]*>`)
	attrRe  = regexp.MustCompile(`(name|value|type)="([^"]*)"`)
)

// formOf is the target and the hidden inputs of p's first form whose
// action contains action.
func formOf(t *testing.T, p page, action string) (string, url.Values) {
	t.Helper()
	for _, m := range formRe.FindAllStringSubmatch(p.body, -1) {
		if !strings.Contains(m[1], action) {
			continue
		}
		form := url.Values{}
		for _, in := range inputRe.FindAllString(m[2], -1) {
			attrs := map[string]string{}
			for _, a := range attrRe.FindAllStringSubmatch(in, -1) {
				attrs[a[1]] = html.UnescapeString(a[2])
			}
			if attrs["type"] == "hidden" {
				form.Set(attrs["name"], attrs["value"])
			}
		}
		target, err := p.url.Parse(html.UnescapeString(m[1]))
		require.NoError(t, err)
		return target.String(), form
	}
	t.Fatalf("no form with action %q on %s (%d):\n%s", action, p.url, p.status, p.body)
	return "", nil
}

var linkRe = regexp.MustCompile(`<a class="btn btn-secondary connector-button" href="([^"]*)">Sign in with ([^<]*)</a>`)

// connectorLink is the URL of p's "Sign in with NAME" button.
func connectorLink(t *testing.T, p page, name string) string {
	t.Helper()
	for _, m := range linkRe.FindAllStringSubmatch(p.body, -1) {
		if html.UnescapeString(m[2]) == name {
			u, err := p.url.Parse(html.UnescapeString(m[1]))
			require.NoError(t, err)
			return u.String()
		}
	}
	t.Fatalf("no button %q on %s:\n%s", name, p.url, p.body)
	return ""
}

// throughPages fills what the pages ask until none does: a password form
// with user's credentials, a consent page with decision. It returns the
// first page that asks for neither (the application's redirect, or an
// error page).
func (b *browser) throughPages(p page, username, password, decision string) page {
	b.t.Helper()
	for range 8 {
		switch {
		case p.status == http.StatusOK && strings.Contains(p.body, `name="password"`):
			p = b.submit(p, "/login", url.Values{"username": {username}, "password": {password}})
		case p.status == http.StatusOK && strings.Contains(p.body, `name="decision"`):
			p = b.submit(p, "/consent", url.Values{"decision": {decision}, "remember": {"false"}})
		default:
			return p
		}
	}
	b.t.Fatalf("still asked after 8 pages: %s", p.url)
	return p
}

// errorPage fails unless p is Latch's error page with status and text.
func errorPage(t *testing.T, p page, status int, text string) {
	t.Helper()
	require.Equal(t, status, p.status, "page %s:\n%s", p.url, p.body)
	require.Contains(t, html.UnescapeString(p.body), text)
	require.NotContains(t, p.body, "goroutine", "no stack trace")
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
