// Command healthcheck is the Docker HEALTHCHECK of the Latch image. The
// final image (distroless) has no shell, curl or wget, so this tiny static
// program asks Latch's readiness endpoint instead: it exits 0 when the URL
// answers 200 within the timeout, and 1 otherwise (refused, timed out, any
// other status), printing why on standard error.
//
//	healthcheck [-url http://127.0.0.1:8080/health/ready] [-timeout 2s]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// DefaultURL is Latch's readiness endpoint on the container's listen port.
const DefaultURL = "http://127.0.0.1:8080/health/ready"

func main() {
	url := flag.String("url", DefaultURL, "readiness URL that must answer 200")
	timeout := flag.Duration("timeout", 2*time.Second, "give up after this long")
	flag.Parse()
	if err := check(*url, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "unhealthy:", err)
		os.Exit(1)
	}
}

// check GETs url and reports an error unless it answers 200 in time.
func check(url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	// No proxy from the environment: the check is about this container.
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return nil
}
