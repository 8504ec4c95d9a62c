// Package slapdtest runs a real OpenLDAP slapd for tests: its own
// configuration, database and self-signed certificate in a temporary
// directory, listening on loopback ports (plain LDAP with StartTLS, and
// LDAPS), loaded with fixture.ldif, stopped when the test ends.
//
// Without slapd (Debian package slapd) the tests that need it skip, unless
// LATCH_REQUIRE_SLAPD=1, as in CI, makes that a failure.
package slapdtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	_ "embed"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

//go:embed fixture.ldif
var fixture []byte

// The fixture's names and secrets.
const (
	BaseDN          = "dc=example,dc=org"
	PeopleDN        = "ou=people," + BaseDN
	GroupsDN        = "ou=groups," + BaseDN
	ServiceDN       = "cn=latch,ou=services," + BaseDN
	ServicePassword = "latch-service-password"
	adminDN         = "cn=admin," + BaseDN
	adminPassword   = "admin-password"
)

// Directory is a running slapd.
type Directory struct {
	// Addr is 127.0.0.1:port of plain LDAP, which offers StartTLS.
	Addr string
	// TLSAddr is 127.0.0.1:port of LDAPS.
	TLSAddr string
	// CAFile is the PEM of the self-signed certificate both present: the
	// root_ca that verifies them.
	CAFile string
}

// Binary is the path of slapd, or "" when it is not installed.
func Binary() string {
	for _, p := range []string{"/usr/sbin/slapd", "slapd"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	return ""
}

// MissingNote is what a TestMain prints when slapd is absent, or "".
func MissingNote() string {
	if Binary() != "" {
		return ""
	}
	return "the LDAP tests against slapd SKIP: no /usr/sbin/slapd " +
		"(apt-get install slapd ldap-utils; LATCH_REQUIRE_SLAPD=1 makes this a failure)"
}

// Start runs a fresh slapd for t and stops it when t ends.
func Start(t testing.TB) *Directory {
	t.Helper()
	bin := Binary()
	if bin == "" {
		msg := "no slapd: install the Debian package slapd"
		if os.Getenv("LATCH_REQUIRE_SLAPD") == "1" {
			t.Fatal(msg + "; LATCH_REQUIRE_SLAPD=1 forbids skipping the LDAP tests")
		}
		t.Skip(msg + "; skipping the LDAP tests")
	}
	dir := t.TempDir()
	d := &Directory{CAFile: filepath.Join(dir, "cert.pem")}
	writeCert(t, dir)
	conf := filepath.Join(dir, "slapd.conf")
	if err := os.WriteFile(conf, []byte(slapdConf(dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	ldif := filepath.Join(dir, "fixture.ldif")
	if err := os.WriteFile(ldif, fixture, 0o600); err != nil {
		t.Fatal(err)
	}
	// slapadd loads the database offline, before slapd opens it; it adds
	// the operational attributes (entryUUID, timestamps) slapd would.
	if out, err := exec.Command(filepath.Join(filepath.Dir(bin), "slapadd"), "-f", conf, "-l", ldif).CombinedOutput(); err != nil {
		t.Fatalf("slapadd: %v\n%s", err, out)
	}
	// Two free ports can be taken by someone else before slapd binds
	// them: a few tries.
	var lastErr error
	for range 3 {
		d.Addr, d.TLSAddr = freeAddr(t), freeAddr(t)
		stop, err := run(bin, conf, d)
		if err == nil {
			t.Cleanup(stop)
			return d
		}
		lastErr = err
	}
	t.Fatalf("slapd did not start: %v", lastErr)
	return nil
}

// run starts slapd in the foreground (-d) and waits until it accepts
// connections; stop ends it.
func run(bin, conf string, d *Directory) (stop func(), err error) {
	logPath := filepath.Join(filepath.Dir(conf), "slapd.log")
	logs, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logs.Close() // slapd holds its own descriptor
	said := func() string { b, _ := os.ReadFile(logPath); return string(b) }
	cmd := exec.Command(bin, "-f", conf, "-d", "0",
		"-h", "ldap://"+d.Addr+"/ ldaps://"+d.TLSAddr+"/")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return nil, fmt.Errorf("slapd exited: %s", said())
		default:
		}
		if up(d.Addr) && up(d.TLSAddr) {
			return stop, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	return nil, fmt.Errorf("slapd did not listen within 15s: %s", said())
}

func up(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		_ = c.Close()
	}
	return err == nil
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// slapdConf is a minimal configuration: the schemas inetOrgPerson and
// posixGroup need, one mdb database, passwords readable by nobody and
// usable only to bind, everything else readable.
func slapdConf(dir string) string {
	return strings.NewReplacer("DIR", dir, "BASE", BaseDN, "ADMIN", adminDN, "PASSWORD", adminPassword).Replace(`
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
pidfile DIR/slapd.pid
argsfile DIR/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCertificateFile DIR/cert.pem
TLSCertificateKeyFile DIR/key.pem
# Like Active Directory, accept a DN with an empty password as an
# unauthenticated bind that "succeeds" (RFC 4513 §5.1.2): the connector must
# refuse empty passwords itself.
allow bind_anon_dn
database mdb
maxsize 10485760
suffix "BASE"
rootdn "ADMIN"
rootpw PASSWORD
directory DIR/db
access to attrs=userPassword
  by anonymous auth
  by * none
access to *
  by * read
`)
}

// writeCert writes a self-signed certificate for 127.0.0.1 only (so that
// "localhost" is a name it does not hold), and its key, to dir.
func writeCert(t testing.TB, dir string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "slapdtest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("cert.pem", "CERTIFICATE", der)
	write("key.pem", "PRIVATE KEY", pkcs8)
}

// Admin is a connection bound as the directory's root, to change the
// fixture from a test; closed when t ends.
func (d *Directory) Admin(t testing.TB) *goldap.Conn {
	t.Helper()
	conn, err := goldap.DialURL("ldap://"+d.Addr, goldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetTimeout(10 * time.Second)
	if err := conn.Bind(adminDN, adminPassword); err != nil {
		t.Fatal(err)
	}
	return conn
}

// AddPerson adds an inetOrgPerson under PeopleDN, and returns its DN.
func (d *Directory) AddPerson(t testing.TB, uid, password string) string {
	t.Helper()
	dn := "uid=" + goldap.EscapeDN(uid) + "," + PeopleDN
	req := goldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{"inetOrgPerson"})
	req.Attribute("uid", []string{uid})
	req.Attribute("cn", []string{uid})
	req.Attribute("sn", []string{uid})
	req.Attribute("mail", []string{uid + "@example.org"})
	req.Attribute("userPassword", []string{password})
	if err := d.Admin(t).Add(req); err != nil {
		t.Fatalf("add %s: %v", dn, err)
	}
	return dn
}

// Delete removes the entry dn.
func (d *Directory) Delete(t testing.TB, dn string) {
	t.Helper()
	if err := d.Admin(t).Del(goldap.NewDelRequest(dn, nil)); err != nil {
		t.Fatalf("delete %s: %v", dn, err)
	}
}
