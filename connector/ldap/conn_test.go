package ldap

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchauth/latch/connector/ldap/slapdtest"
)

func TestTLS(t *testing.T) {
	d := slapdtest.Start(t)
	tests := []struct {
		name   string
		edit   func(*Config)
		wantOK bool
		errHas string
	}{
		{"StartTLS verified by root_ca", func(c *Config) { c.StartTLS, c.RootCA = true, d.CAFile }, true, ""},
		{"LDAPS verified by root_ca", func(c *Config) { c.Host, c.RootCA = d.TLSAddr, d.CAFile }, true, ""},
		{"LDAPS, verification skipped", func(c *Config) { c.Host, c.InsecureSkipVerify = d.TLSAddr, true }, true, ""},
		{"StartTLS, certificate of an unknown authority", func(c *Config) { c.StartTLS = true }, false, "StartTLS"},
		{"LDAPS, certificate of an unknown authority", func(c *Config) { c.Host = d.TLSAddr }, false, "certificate"},
		{"LDAPS, certificate for another name", func(c *Config) {
			c.Host, c.RootCA = strings.Replace(d.TLSAddr, "127.0.0.1", "localhost", 1), d.CAFile
		}, false, "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := fixtureConfig(d)
			cfg.InsecureNoSSL = false
			tt.edit(&cfg)
			c, _ := logged(t, cfg)
			id, ok, err := c.Login(ctx(t), "alice", "alice-password")
			if tt.wantOK {
				if err != nil || !ok || len(id.Groups) != 2 {
					t.Fatalf("ok=%v err=%v groups=%q", ok, err, id.Groups)
				}
				return
			}
			if ok || err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("ok=%v err=%v, want an error about %q", ok, err, tt.errHas)
			}
		})
	}
}

func TestNewReadsRootCA(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := Config{Host: "ldap.example.com:636", UserSearch: UserSearch{BaseDN: "dc=example,dc=org", Username: "uid", IDAttr: "DN"}}
	for _, file := range []string{filepath.Join(dir, "missing.pem"), notPEM} {
		cfg := base
		cfg.RootCA = file
		if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), "root_ca") {
			t.Errorf("New with root_ca %s: %v, want a root_ca error", file, err)
		}
	}
	if _, err := New(base, nil); err != nil {
		t.Errorf("New without root_ca: %v", err)
	}
}

// silentServer accepts connections and never answers: a directory that
// hangs.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// TestHungDirectory: a directory that stops answering holds a sign-in for
// the configured timeout, or the caller's deadline, not forever.
func TestHungDirectory(t *testing.T) {
	addr := silentServer(t)
	base := Config{
		Host: addr, InsecureNoSSL: true,
		UserSearch: UserSearch{BaseDN: "dc=example,dc=org", Username: "uid", IDAttr: "DN"},
		Timeouts:   Timeouts{Connect: 300 * time.Millisecond, Operation: 300 * time.Millisecond},
	}
	ldaps := base
	ldaps.InsecureNoSSL, ldaps.InsecureSkipVerify = false, true
	startTLS := ldaps
	startTLS.StartTLS = true
	long := base
	long.Timeouts.Operation = time.Minute
	for name, cfg := range map[string]Config{"plain": base, "LDAPS handshake": ldaps, "StartTLS": startTLS, "caller's deadline": long} {
		t.Run(name, func(t *testing.T) {
			c, _ := logged(t, cfg)
			cctx := context.Background()
			if cfg.Timeouts.Operation == time.Minute {
				var cancel context.CancelFunc
				cctx, cancel = context.WithTimeout(cctx, 400*time.Millisecond)
				defer cancel()
			}
			start := time.Now()
			_, ok, err := c.Login(cctx, "alice", "alice-password")
			if ok || err == nil {
				t.Fatalf("ok=%v err=%v, want an error", ok, err)
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Fatalf("took %v", took)
			}
		})
	}
}

func TestDirectoryDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, _ := logged(t, Config{Host: addr, InsecureNoSSL: true, UserSearch: UserSearch{BaseDN: "dc=example,dc=org", Username: "uid", IDAttr: "DN"}})
	if _, ok, err := c.Login(ctx(t), "alice", "alice-password"); ok || err == nil {
		t.Fatalf("ok=%v err=%v, want an error", ok, err)
	}
}

// TestConcurrentLogins: more sign-ins at once than connections allowed
// wait their turn and all succeed.
func TestConcurrentLogins(t *testing.T) {
	d := slapdtest.Start(t)
	c, _ := logged(t, fixtureConfig(d))
	var wg sync.WaitGroup
	errs := make(chan error, 3*maxConns)
	for i := range 3 * maxConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := []string{"alice", "bob", "carol"}[i%3]
			if _, ok, err := c.Login(ctx(t), user, user+"-password"); err != nil || !ok {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a concurrent login failed: %v", err)
	}
	if n := len(c.slots); n != 0 {
		t.Errorf("%d connection slots still held", n)
	}
}
