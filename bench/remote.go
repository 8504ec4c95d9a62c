package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// remoteFixture prepares a run against -url: the access tokens to
// introspect and revoke come from client_credentials grants, -c at a time,
// before the timed phase.
func remoteFixture(ctx context.Context, o options, stderr io.Writer) (*fixture, error) {
	fx := &fixture{URL: o.url, ClientID: o.clientID, ClientSecret: o.clientSecret}
	p := poolsFor(o)
	if p.Introspect+p.Revoke == 0 {
		return fx, nil
	}
	fmt.Fprintf(stderr, "bench: getting %s from %s with client_credentials\n", p, o.url)
	start := time.Now()
	client := newClient(o.concurrency, o.timeout)
	defer client.CloseIdleConnections()
	auth := basicAuth(o.clientID, o.clientSecret)
	var err error
	if fx.Introspect, err = fetchTokens(ctx, client, o.url, auth, p.Introspect, o.concurrency); err != nil {
		return nil, err
	}
	if fx.Revoke, err = fetchTokens(ctx, client, o.url, auth, p.Revoke, o.concurrency); err != nil {
		return nil, err
	}
	fx.MintSeconds = time.Since(start).Seconds()
	return fx, nil
}

// fetchTokens gets n access tokens with client_credentials, c requests at
// a time; the first failure stops it.
func fetchTokens(ctx context.Context, client *http.Client, base, auth string, n, c int) ([]string, error) {
	out := make([]string, n)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(c, n) {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n) && ctx.Err() == nil; i = next.Add(1) - 1 {
				tok, err := clientCredentials(ctx, client, base, auth)
				if err != nil {
					cancel(err)
					return
				}
				out[i] = tok
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return out, nil
}

func clientCredentials(ctx context.Context, client *http.Client, base, auth string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+pathToken, strings.NewReader("grant_type=client_credentials&scope=read"))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var body bytes.Buffer
	if _, err := body.ReadFrom(res.Body); err != nil {
		return "", err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if res.StatusCode != http.StatusOK || json.Unmarshal(body.Bytes(), &tok) != nil || tok.AccessToken == "" {
		return "", fmt.Errorf("client_credentials at %s: %d %s", base+pathToken, res.StatusCode, body.Bytes())
	}
	return tok.AccessToken, nil
}
