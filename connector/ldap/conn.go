package ldap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

// tlsConfig is what both LDAPS and StartTLS verify the directory with; nil
// for plain LDAP.
func tlsConfig(c Config) (*tls.Config, error) {
	if c.InsecureNoSSL {
		return nil, nil
	}
	host, _, err := net.SplitHostPort(c.Host)
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.InsecureSkipVerify}
	if c.RootCA != "" {
		pem, err := os.ReadFile(c.RootCA)
		if err != nil {
			return nil, fmt.Errorf("root_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("root_ca: %s holds no PEM certificate", c.RootCA)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// withConn runs fn on a fresh connection, one per sign-in or refresh: a
// pool would have to re-bind as the service account after every user bind
// anyway, and sign-ins are rare next to token requests. At most maxConns
// run at once, so a burst of logins cannot open unbounded connections to
// the directory. The whole of fn is bounded by the operation timeout and
// by ctx: the socket's deadline ends any read or write that runs past it.
func (c *Connector) withConn(ctx context.Context, fn func(*goldap.Conn) error) error {
	select {
	case c.slots <- struct{}{}:
		defer func() { <-c.slots }()
	case <-ctx.Done():
		return ctx.Err()
	}
	conn, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	err = fn(conn)
	if ctxErr := ctx.Err(); ctxErr != nil && err != nil {
		return errors.Join(ctxErr, err)
	}
	return err
}

// dial connects, completes TLS (LDAPS or StartTLS) and leaves the
// connection unbound.
func (c *Connector) dial(ctx context.Context) (*goldap.Conn, error) {
	connectBy := time.Now().Add(c.connectTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(connectBy) {
		connectBy = d
	}
	dctx, cancel := context.WithDeadline(ctx, connectBy)
	defer cancel()
	raw, err := (&net.Dialer{}).DialContext(dctx, "tcp", c.cfg.Host)
	if err != nil {
		return nil, fmt.Errorf("ldap: connect to %s: %w", c.cfg.Host, err)
	}
	// The deadline covers the StartTLS handshake, which go-ldap runs
	// without one, and every request after it.
	doneBy := time.Now().Add(c.operationTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(doneBy) {
		doneBy = d
	}
	_ = raw.SetDeadline(doneBy)
	ldaps := c.tls != nil && !c.cfg.StartTLS
	if ldaps {
		tc := tls.Client(raw, c.tls)
		if err := tc.HandshakeContext(dctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("ldap: TLS with %s: %w", c.cfg.Host, err)
		}
		raw = tc
	}
	conn := goldap.NewConn(raw, ldaps)
	conn.Start()
	conn.SetTimeout(time.Until(doneBy))
	if c.cfg.StartTLS {
		if err := conn.StartTLS(c.tls); err != nil {
			conn.Close()
			return nil, fmt.Errorf("ldap: StartTLS with %s: %w", c.cfg.Host, err)
		}
	}
	return conn, nil
}

// bindService binds as the service account, or anonymously without one.
func (c *Connector) bindService(conn *goldap.Conn) error {
	var err error
	if c.cfg.BindDN == "" {
		err = conn.UnauthenticatedBind("")
	} else {
		err = conn.Bind(c.cfg.BindDN, c.cfg.BindPassword)
	}
	if err != nil {
		return fmt.Errorf("ldap: bind as the service account: %w", err)
	}
	return nil
}
