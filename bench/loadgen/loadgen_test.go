package loadgen

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeServer is a minimal in-memory OAuth server: client "c" / secret "s p"
// (the space checks form-encoding of Basic credentials).
func fakeServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var (
		mu     sync.Mutex
		tokens = map[string]bool{}
		seq    atomic.Int64
		revs   atomic.Int64
	)
	authed := func(r *http.Request) bool {
		if id, sec, ok := r.BasicAuth(); ok {
			id, _ = url.QueryUnescape(id)
			sec, _ = url.QueryUnescape(sec)
			return id == "c" && sec == "s p"
		}
		return r.PostFormValue("client_id") == "c" && r.PostFormValue("client_secret") == "s p"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		if !authed(r) || r.PostFormValue("grant_type") != "client_credentials" {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		tok := fmt.Sprintf("t%d", seq.Add(1))
		mu.Lock()
		tokens[tok] = true
		mu.Unlock()
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"bearer","expires_in":3600}`, tok)
	})
	mux.HandleFunc("POST /introspect", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		active := tokens[r.PostFormValue("token")]
		mu.Unlock()
		fmt.Fprintf(w, `{"active":%t}`, active)
	})
	mux.HandleFunc("POST /revoke", func(w http.ResponseWriter, r *http.Request) {
		if !authed(r) {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		mu.Lock()
		delete(tokens, r.PostFormValue("token"))
		mu.Unlock()
		revs.Add(1)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, &revs
}

func cfgFor(srv *httptest.Server, op string) Config {
	return Config{
		TokenURL: srv.URL + "/token", IntrospectURL: srv.URL + "/introspect", RevokeURL: srv.URL + "/revoke",
		ClientID: "c", ClientSecret: "s p", Auth: "basic", Op: op,
		Concurrency: 4, Duration: 300 * time.Millisecond, Pool: 10, MixIntrospect: 2, Timeout: 2 * time.Second,
	}
}

func TestOps(t *testing.T) {
	srv, revs := fakeServer(t)
	for _, op := range []string{"cc", "introspect", "mixed"} {
		for _, auth := range []string{"basic", "post"} {
			cfg := cfgFor(srv, op)
			cfg.Auth = auth
			res, err := Run(cfg)
			if err != nil {
				t.Fatalf("%s/%s: %v", op, auth, err)
			}
			if res.Requests == 0 || res.Errors != 0 || res.RPS <= 0 || res.P99 < res.P50 {
				t.Fatalf("%s/%s: bad result %+v", op, auth, res)
			}
			if op == "mixed" && (res.ByOp["cc"] == nil || res.ByOp["introspect"] == nil || res.ByOp["revoke"] == nil) {
				t.Fatalf("mixed: missing per-op results: %+v", res.ByOp)
			}
		}
	}

	before := revs.Load()
	cfg := cfgFor(srv, "revoke")
	cfg.MaxRequests = 50
	res, err := Run(cfg)
	if err != nil || res.Requests != 50 || res.Errors != 0 || revs.Load()-before != 50 {
		t.Fatalf("revoke: err=%v res=%+v revoked=%d", err, res, revs.Load()-before)
	}
}

func TestRequestCapAndErrors(t *testing.T) {
	srv, _ := fakeServer(t)
	cfg := cfgFor(srv, "cc")
	cfg.ClientSecret = "wrong"
	cfg.MaxRequests = 25
	cfg.Duration = 5 * time.Second
	res, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 25 || res.Errors != 25 || res.ErrorsBy["401"] != 25 {
		t.Fatalf("want 25 requests, all 401: %+v", res)
	}
}
