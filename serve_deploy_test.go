package main

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// TestServesTheImagesConfig runs what the image runs, in process: `serve
// --config deploy/config.yaml` with only the listen address and the
// database path changed (the container's /data), until /health/ready
// answers 200. Its issuer is the file's, whatever the listen address. The
// image's build flags are checked by deploy's tests against .ci/run,
// which builds with them; the healthcheck program by deploy's tests.
func TestServesTheImagesConfig(t *testing.T) {
	data := t.TempDir()
	cfg, err := filepath.Abs(filepath.Join("deploy", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"LATCH_LISTEN": "127.0.0.1:0", "LATCH_DATABASE_DSN": filepath.Join(data, "latch.db")}
	issuer, out := startServe(t, env, "--config", cfg)
	if issuer != "http://127.0.0.1:8080" {
		t.Errorf("issuer URL %q, want the file's http://127.0.0.1:8080", issuer)
	}
	m := listenLine.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no listening line:\n%s", out)
	}
	resp, err := http.Get("http://" + m[1] + "/health/ready")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/health/ready: %d", resp.StatusCode)
	}
	if _, err := os.Stat(filepath.Join(data, "latch.db")); err != nil {
		t.Errorf("database not on the data directory: %v", err)
	}
}
