// Package latchtest runs the real Latch server in process, for the
// integration tests of OAuth 2.0 and OpenID Connect clients: the same
// start-up as `latch serve` (server.Boot), on a random loopback port, with
// an in-memory SQLite database, stopped when the test ends.
//
//	func TestMyClient(t *testing.T) {
//		srv := latchtest.New(t)
//		cc := srv.ClientCredentials(srv.ConfidentialClient(), "read")
//		tok, err := cc.Token(t.Context())
//		...
//	}
//
// A new server has a confidential client, a public client and a user
// ready to use, and helpers for what client tests need and a real flow
// does not offer: IssueToken mints tokens for any grant, Login signs a
// user in through the real pages, Expire ends a token now, FailNext makes
// an endpoint answer an error. Tokens behave exactly as the server's own:
// they introspect, refresh and revoke.
//
// New takes a few milliseconds: the signing key (RS256, as in production)
// and the user's password hash are made once per process.
package latchtest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/server"
	"github.com/latchauth/latch/storage"
	"github.com/latchauth/latch/users"
)

// RedirectURI is the redirect URI of the ready-made clients. Nothing
// listens there: Login stops at it.
const RedirectURI = "http://127.0.0.1:5555/callback"

// The ready-made user: the same for every server, so tests and examples
// can name it.
const (
	Username = "alice"
	Password = "alice-password"
)

// Client is a registered client and its clear secret.
type Client struct {
	ID string
	// Secret is empty for a public client.
	Secret string
	// RedirectURI is the first registered redirect URI, if any.
	RedirectURI string
	// Scopes are the scopes the client is registered for.
	Scopes []string
}

// User is a user who signs in on the login page.
type User struct {
	Username      string
	Password      string
	Email         string
	EmailVerified bool
	Name          string
	Groups        []string
	// Claims are custom claims for ID tokens and userinfo.
	Claims map[string]any
}

// Server is a running Latch server. Its methods are safe for concurrent
// use.
type Server struct {
	in     *server.Instance
	http   *http.Server
	served chan error
	faults *server.Faults
	issuer string

	confidential, public Client
	user                 User

	mu      sync.Mutex
	secrets map[string]string // client id → clear secret, for Login

	// stopLogouts ends the back-channel logout worker, which closes
	// logoutsDone.
	stopLogouts context.CancelFunc
	logoutsDone chan struct{}

	closeOnce sync.Once
}

// Option changes how New and Start set the server up.
type Option func(*options)

type options struct {
	log   *slog.Logger
	tunes []func(*config.File)
}

// WithConfig changes the configuration the server starts with, as
// config.yaml would (token lifespans and formats, signing algorithm,
// registration, admin token, clients and users to seed). The issuer,
// listen address and database are the fixture's and are set after fn.
func WithConfig(fn func(f *config.File)) Option {
	return func(o *options) { o.tunes = append(o.tunes, fn) }
}

// WithLogger sends the server's logs to log (default: discarded).
func WithLogger(log *slog.Logger) Option {
	return func(o *options) { o.log = log }
}

// New starts a server for the test t and stops it when t ends; it fails
// t if the server cannot start.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := Start(opts...)
	if err != nil {
		t.Fatalf("latchtest: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Start starts a server outside a test (TestMain, examples). Close stops
// it.
func Start(opts ...Option) (*Server, error) {
	o := options{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, opt := range opts {
		opt(&o)
	}
	f := config.Default()
	// Every registration of a test comes from loopback, into a database
	// that ends with the test: the per-address bound would only get in
	// the way (WithConfig may set it); max_clients still holds.
	f.Registration.PerAddressPerHour = 0
	for _, tune := range o.tunes {
		tune(&f)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f.Listen = ln.Addr().String()
	f.Issuer = "http://" + f.Listen
	f.Database = config.Database{Driver: "sqlite", DSN: ":memory:"}
	s, err := start(f, o, ln)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	return s, nil
}

func start(f config.File, o options, ln net.Listener) (*Server, error) {
	key, err := signingKey(f.Tokens.IDTokenSigningAlg)
	if err != nil {
		return nil, err
	}
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	ctx := context.Background()
	faults := &server.Faults{}
	in, err := server.Boot(ctx, f, server.BootOptions{Logger: o.log, Faults: faults, SigningKey: key})
	if err != nil {
		return nil, err
	}
	s := &Server{in: in, faults: faults, issuer: in.Server.Issuer(), secrets: map[string]string{}, served: make(chan error, 1)}
	if err := s.createFixtures(ctx); err != nil {
		_ = in.Close()
		return nil, err
	}
	s.http = server.HTTPServer(in.Server, o.log)
	go func() { s.served <- s.http.Serve(ln) }()
	// Clients given a backchannel_logout_uri (WithConfig) get logout
	// tokens, as from `latch serve`.
	var logoutCtx context.Context
	logoutCtx, s.stopLogouts = context.WithCancel(context.Background())
	s.logoutsDone = make(chan struct{})
	go func() {
		defer close(s.logoutsDone)
		in.Server.LogoutDeliveries(logoutCtx)
	}()
	return s, nil
}

// createFixtures adds the ready-made clients and user. The secrets are
// generated, so they are stored as SHA-256 and checked in a microsecond;
// the password hash is made once per process.
func (s *Server) createFixtures(ctx context.Context) error {
	var err error
	s.confidential, err = s.addClient(ctx, clients.Client{
		ID:                      "latchtest-confidential",
		Name:                    "latchtest confidential client",
		GrantTypes:              []string{clients.GrantClientCredentials, clients.GrantAuthorizationCode, clients.GrantRefreshToken},
		ResponseTypes:           []string{"code"},
		RedirectURIs:            []string{RedirectURI},
		PostLogoutRedirectURIs:  []string{"http://127.0.0.1:5555/"},
		Scopes:                  []string{"openid", "profile", "email", "groups", "offline_access", "read", "write"},
		TokenEndpointAuthMethod: clients.AuthMethodBasic,
	}, "")
	if err != nil {
		return err
	}
	s.public, err = s.addClient(ctx, clients.Client{
		ID:                      "latchtest-public",
		Name:                    "latchtest public client",
		GrantTypes:              []string{clients.GrantAuthorizationCode, clients.GrantRefreshToken},
		ResponseTypes:           []string{"code"},
		RedirectURIs:            []string{RedirectURI},
		PostLogoutRedirectURIs:  []string{"http://127.0.0.1:5555/"},
		Scopes:                  []string{"openid", "profile", "email", "groups", "offline_access", "read"},
		TokenEndpointAuthMethod: clients.AuthMethodNone,
	}, "")
	if err != nil {
		return err
	}
	hash, err := passwordHash()
	if err != nil {
		return err
	}
	s.user = User{Username: Username, Password: Password, Email: "alice@example.com", EmailVerified: true,
		Name: "Alice Example", Groups: []string{"admins"}}
	return users.Seed(ctx, s.in.Store, []config.User{{
		Username: s.user.Username, PasswordHash: hash, Email: s.user.Email, EmailVerified: s.user.EmailVerified,
		Name: s.user.Name, Groups: s.user.Groups,
	}})
}

// Close stops the server and closes its database; New calls it at the
// end of the test. It waits for requests in flight, at most 5 seconds.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.http.Shutdown(ctx); err != nil {
			_ = s.http.Close()
		}
		<-s.served // http.ErrServerClosed
		s.stopLogouts()
		<-s.logoutsDone
		_ = s.in.Close()
	})
}

// Issuer is the server's issuer URL, e.g. http://127.0.0.1:41234; the
// discovery document is at Issuer()+"/.well-known/openid-configuration".
func (s *Server) Issuer() string { return s.issuer }

// ConfidentialClient is a client_secret_basic client with the grants
// client_credentials, authorization_code and refresh_token, the scopes
// openid profile email groups offline_access read write, and RedirectURI.
func (s *Server) ConfidentialClient() Client { return s.confidential }

// PublicClient is a public client (PKCE) with the grants
// authorization_code and refresh_token, the scopes openid profile email
// groups offline_access read, and RedirectURI.
func (s *Server) PublicClient() Client { return s.public }

// User is the ready-made user, alice.
func (s *Server) User() User { return s.user }

// Store is the server's database, for assertions.
func (s *Server) Store() storage.Store { return s.in.Store }
