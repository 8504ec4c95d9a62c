package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/server"
)

type serveOptions struct {
	dev    bool
	listen string
	issuer string
}

func (c *cli) serveCommand() *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the authorization server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.serve(cmd.Context(), o)
		},
	}
	cmd.Flags().BoolVar(&o.dev, "dev", false, "in-memory database with a demo client, for local development")
	cmd.Flags().StringVar(&o.listen, "listen", "", "address to listen on, e.g. 127.0.0.1:0 for a free port")
	cmd.Flags().StringVar(&o.issuer, "issuer", "", "public base URL of the server")
	return cmd
}

// serve runs the server until ctx ends, then drains requests and closes
// the database.
func (c *cli) serve(ctx context.Context, o serveOptions) error {
	f, err := c.loadConfig()
	if err != nil {
		return err
	}
	if o.listen != "" {
		f.Listen = o.listen
	}
	if o.issuer != "" {
		f.Issuer, f.IssuerSet = o.issuer, true
	}
	if o.dev {
		f.Database = config.Database{Driver: "sqlite", DSN: ":memory:"}
		// Dev mode holds nothing worth protecting (an in-memory database
		// and published demo credentials), and is often reached by name
		// from another container: any http issuer will do.
		f.InsecureHTTP = true
		// As on a mock server, clients may register themselves (RFC 7591).
		// Test suites register a client per test from one address into an
		// in-memory database: no per-address bound; max_clients holds.
		f.Registration.Enabled = true
		f.Registration.PerAddressPerHour = 0
	}
	if err := validate(f); err != nil {
		return err
	}
	if !f.Tokens.RefreshTokenRotation {
		// fosite rotates on every refresh; saying otherwise would be a lie.
		return fmt.Errorf("tokens.refresh_token_rotation: false is not supported yet; refresh tokens always rotate")
	}
	log := newLogger(f, c.stderr)
	if f.Secrets.System == "" && !o.dev {
		// Dev mode's in-memory database holds nothing worth a warning.
		log.Warn("secrets.system is not set: the signing keys, the system secret, TOTP seeds, client_secret_jwt secrets, connector secrets and upstream tokens are stored unencrypted, " +
			"protected only by who can read the database (its file permissions with SQLite); " +
			"set secrets.system or LATCH_SECRETS_SYSTEM (at least 32 random bytes) to encrypt them")
	}
	c.announceDatabase(f)

	ln, err := net.Listen("tcp", f.Listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	if !f.IssuerSet {
		f.Issuer = listenIssuer(ln.Addr(), f.TLS.CertFile != "")
		// The derived issuer meets the same rules as a configured one:
		// listening on a LAN address must not serve plain http to the
		// network unless insecure_http says so.
		if err := validate(f); err != nil {
			return err
		}
	}

	boot := server.BootOptions{Logger: log, DevMode: o.dev}
	if o.dev {
		if boot.SigningKey, err = devSigningKey(f.Tokens.IDTokenSigningAlg); err != nil {
			return err
		}
	}
	in, err := server.Boot(ctx, f, boot)
	if err != nil {
		return err
	}
	defer in.Close()
	srv, st := in.Server, in.Store
	if o.dev {
		if err := c.createDemoClients(ctx, st, in.Clients.Hasher, srv.Issuer()); err != nil {
			return err
		}
	}

	// Printed before serving: once /health/ready answers, a SIGTERM must
	// find serve waiting for it, not in the middle of a read that the
	// signal cancels (which made serve exit 1).
	fmt.Fprintf(c.stdout, "latch listening on %s\nissuer URL %s\n", ln.Addr(), srv.Issuer())
	if err := printConnectors(ctx, c.stdout, st, srv.Issuer()); err != nil {
		return err
	}
	httpSrv := server.HTTPServer(srv, log)
	served := make(chan error, 1)
	go func() {
		if f.TLS.CertFile != "" {
			served <- httpSrv.ServeTLS(ln, f.TLS.CertFile, f.TLS.KeyFile)
		} else {
			served <- httpSrv.Serve(ln)
		}
	}()
	go srv.Janitor(ctx, f.Janitor.Interval.Duration)
	go srv.LogoutDeliveries(ctx) // back-channel logout tokens (server/backchannel.go)

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", f.ShutdownTimeout.Duration)
	srv.Drain()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), f.ShutdownTimeout.Duration)
	defer cancel()
	if err := httpSrv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// listenIssuer is the issuer of a server with none configured: the
// address it listens on, so that `--listen 127.0.0.1:0` names the port it
// took. A wildcard listener (0.0.0.0, ::) is reached on this machine at
// its loopback address.
func listenIssuer(addr net.Addr, tls bool) string {
	scheme := "http"
	if tls {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return scheme + "://" + addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}
