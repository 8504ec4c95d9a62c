// Package server is Latch's HTTP face: the fosite provider assembly
// (provider.go), every route (routes.go), one file per endpoint family and
// the middleware they share.
package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/gorilla/mux"
	"github.com/gorilla/securecookie"
	"github.com/ory/fosite"
	"github.com/ory/fosite/token/jwt"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/keys"
	"github.com/latchauth/latch/storage"
	"github.com/latchauth/latch/templates"
	"github.com/latchauth/latch/users"
)

// Config is the runtime configuration of a Server (config.File is the file
// schema; ConfigFromFile in boot.go turns one into the other).
type Config struct {
	// Issuer is the public base URL, e.g. http://127.0.0.1:8080.
	Issuer string
	Store  storage.Store
	Logger *slog.Logger
	Now    func() time.Time

	// SystemSecret keys the HMAC of every opaque token. Empty: the one
	// stored in Store is used, generated on first start.
	SystemSecret []byte

	AccessTokenLifespan   time.Duration
	RefreshTokenLifespan  time.Duration
	AuthorizeCodeLifespan time.Duration
	IDTokenLifespan       time.Duration
	// DeviceCodeLifespan is how long a device code and its user code
	// stay usable (RFC 8628; default 10m).
	DeviceCodeLifespan time.Duration
	// DevicePollInterval is the polling interval a device is told to keep
	// (default 5 s, RFC 8628 §3.2's). Whole seconds, as the answer carries
	// it; tests shorten it so a device flow does not wait out 5 s.
	DevicePollInterval time.Duration

	// AccessTokenFormat is the format of access tokens of clients that do
	// not set their own: "opaque" (default) or "jwt" (RFC 9068).
	AccessTokenFormat string
	// DPoPRequireNonce makes every DPoP proof carry a server nonce
	// (RFC 9449 §8, dpop_nonce.go).
	DPoPRequireNonce bool

	// Hasher checks client secrets; nil means a fresh one.
	Hasher *clients.Hasher
	// MaxBodyBytes caps request bodies (default 64 KiB).
	MaxBodyBytes int64

	// SigningAlgorithm of ID tokens: RS256 (default) or ES256. It applies
	// to keys generated from now on.
	SigningAlgorithm string
	// LoginSessionLifespan is how long a browser stays signed in (default
	// 24h).
	LoginSessionLifespan time.Duration
	// LoginRules throttle failed logins (users.LoginRules); zero Rules
	// take users.DefaultLoginRules.
	LoginRules users.LoginRules

	// MFARequired asks every user for a second factor (mfa.go).
	MFARequired bool
	// NoPasswordForm hides the login page's username and password form
	// and refuses its POST (config login.password_form: false): only
	// connectors and passkeys sign people in.
	NoPasswordForm bool

	// AdminToken is the bearer token of the admin API; empty turns the
	// admin API off.
	AdminToken string
	// RegistrationEnabled turns on RFC 7591 dynamic client registration;
	// RegistrationToken, when set, is the initial access token it needs.
	RegistrationEnabled bool
	RegistrationToken   string
	// Registration is the registration policy (register_policy.go).
	Registration RegistrationPolicy
	// PendingPerClient and PendingPerAddress bound the authorization
	// requests, pushed requests and device authorizations waiting at once,
	// per client and per caller address (pending.go; default 10000, 100).
	PendingPerClient  int
	PendingPerAddress int
	// InsecureHTTP (config insecure_http) also accepts http:// redirect
	// URIs to hosts that are not loopback (clients.Rules).
	InsecureHTTP bool
	// TrustedProxies are the reverse proxies whose forwarding headers
	// name the real caller (clientaddr.go).
	TrustedProxies []netip.Prefix

	// Backchannel tunes the delivery of logout tokens (backchannel.go);
	// zero fields take the defaults.
	Backchannel BackchannelOptions

	// DevMode mounts the test-fixture helpers under /dev/ (dev.go): they
	// mint tokens for whoever asks, so only `latch serve --dev` sets it.
	DevMode bool
	// Faults, when set, answers the requests it was told to fail with an
	// injected error before routing (dev.go; latchtest.FailNext and
	// /dev/fail). DevMode makes one when it is nil.
	Faults *Faults
	// Metrics is the Prometheus registry the server's metrics go to. Nil
	// makes a registry of the server's own, with the Go runtime and
	// process collectors; a given one gets only Latch's metrics.
	Metrics *prometheus.Registry
}

// Server answers every HTTP request of Latch.
type Server struct {
	cfg     Config
	store   storage.Store
	log     *slog.Logger
	now     func() time.Time
	oauth   *fosite.Fosite
	router  *mux.Router
	handler http.Handler // router, behind cfg.Faults when set
	keys    *keys.Manager
	signer  jwt.Signer
	users   *users.Authenticator
	pages   *templates.Templates
	cookies *securecookie.SecureCookie
	secure  bool // the issuer is https: cookies are Secure
	// passwordChecks bounds concurrent password hashing: each argon2id
	// check takes 19 MiB, so a burst of logins queues instead of
	// exhausting memory.
	passwordChecks chan struct{}
	// draining is set by Drain when the process shuts down.
	draining atomic.Bool
	// device is the composed device grant: its strategy and ID token
	// helper are the provider's own, which the fixture helpers reuse.
	device *deviceGrant
	// guessThrottle counts failures in the database: failed logins (through
	// users) and wrong user codes on the device page (device_page.go).
	guessThrottle *users.Throttle
	metrics       *metrics
	// limits are the token endpoint's per-client buckets (ratelimit.go).
	limits clientLimiters
	// scopes is discovery's scopes_supported, kept a few seconds
	// (discovery_scopes.go).
	scopes scopesCache
	// dev is what dev mode knows of the clients it created (devclients.go).
	dev devClients
	// webauthn is the passkey relying party of the issuer (passkeys.go).
	webauthn *webauthn.WebAuthn
	// logouts sends queued logout tokens (backchannel.go).
	logouts *logoutSender
	// upstreams are the connectors, read again every few seconds
	// (connectors.go).
	upstreams upstreams
	// upstreamChecks merges concurrent refresh checks of one link
	// (upstream_refresh.go).
	upstreamChecks singleflight.Group
}

// New assembles a Server. It loads (or creates) the system secret, so the
// store must be migrated.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("server: Config.Store is required")
	}
	issuer, err := url.Parse(cfg.Issuer)
	if err != nil || !issuer.IsAbs() || issuer.Host == "" {
		return nil, fmt.Errorf("server: issuer %q is not an absolute URL", cfg.Issuer)
	}
	cfg.Issuer = strings.TrimSuffix(cfg.Issuer, "/")
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Hasher == nil {
		cfg.Hasher = clients.NewHasher(10000)
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	defaults := map[*time.Duration]time.Duration{
		&cfg.AccessTokenLifespan:   time.Hour,
		&cfg.RefreshTokenLifespan:  720 * time.Hour,
		&cfg.AuthorizeCodeLifespan: 10 * time.Minute,
		&cfg.IDTokenLifespan:       time.Hour,
		&cfg.DeviceCodeLifespan:    10 * time.Minute,
		&cfg.DevicePollInterval:    deviceInterval,
	}
	for p, d := range defaults {
		if *p <= 0 {
			*p = d
		}
	}
	if cfg.DevicePollInterval < time.Second {
		cfg.DevicePollInterval = time.Second // the answer carries whole seconds
	}
	switch cfg.AccessTokenFormat {
	case "":
		cfg.AccessTokenFormat = formatOpaque
	case formatOpaque, formatJWT:
	default:
		return nil, fmt.Errorf("server: access token format %q is neither %q nor %q", cfg.AccessTokenFormat, formatOpaque, formatJWT)
	}
	if len(cfg.SystemSecret) == 0 {
		candidate := make([]byte, 32)
		if _, err := rand.Read(candidate); err != nil {
			return nil, fmt.Errorf("server: generate system secret: %w", err)
		}
		if cfg.SystemSecret, err = cfg.Store.SystemSecret(ctx, candidate); err != nil {
			return nil, fmt.Errorf("server: load system secret: %w", err)
		}
	}
	if len(cfg.SystemSecret) < 32 {
		return nil, errors.New("server: the system secret must be at least 32 bytes")
	}
	cfg.Registration.fillDefaults()
	if cfg.PendingPerClient <= 0 {
		cfg.PendingPerClient = defaultPendingPerClient
	}
	if cfg.PendingPerAddress <= 0 {
		cfg.PendingPerAddress = defaultPendingPerAddress
	}
	if cfg.LoginSessionLifespan <= 0 {
		cfg.LoginSessionLifespan = 24 * time.Hour
	}
	km, err := keys.NewManager(cfg.Store, cfg.SigningAlgorithm, cfg.Now)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if err := km.Ensure(ctx); err != nil {
		return nil, fmt.Errorf("server: signing keys: %w", err)
	}
	throttle := users.NewThrottle(cfg.Store, derive(cfg.SystemSecret, "latch throttle"), cfg.Now)
	pages, err := templates.Load()
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s := &Server{
		cfg:    cfg,
		store:  cfg.Store,
		log:    slog.New(withRequestIDs(cfg.Logger.Handler())),
		now:    cfg.Now,
		keys:   km,
		signer: km.Signer(),
		users:  &users.Authenticator{Store: cfg.Store, Throttle: throttle, Rules: cfg.LoginRules, Factors: cfg.Store},
		pages:  pages,
		secure: issuer.Scheme == "https",

		passwordChecks: make(chan struct{}, runtime.NumCPU()),
		guessThrottle:  throttle,
	}
	if s.webauthn, err = newWebAuthn(issuer); err != nil {
		return nil, fmt.Errorf("server: passkeys: %w", err)
	}
	s.cookies = securecookie.New(derive(cfg.SystemSecret, "latch session cookie"), nil)
	s.cookies.MaxAge(int(cfg.LoginSessionLifespan / time.Second))
	s.oauth, s.device = newProvider(cfg, s.signer, pages.FormPost(), s.checkPasswordGrant, s.checkUpstream)
	if cfg.DevMode && cfg.Faults == nil {
		s.cfg.Faults = &Faults{}
	}
	s.metrics = newMetrics(cfg.Metrics, cfg.Store)
	s.logouts = newLogoutSender(&s.cfg.Backchannel)
	s.router = s.routes()
	s.handler = s.router
	if s.cfg.Faults != nil {
		s.handler = s.injectFaults(s.router)
	}
	s.handler = s.observe(s.handler)
	return s, nil
}

// ServeHTTP makes Server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// Issuer is the issuer URL the server was built with.
func (s *Server) Issuer() string { return s.cfg.Issuer }

func (s *Server) url(path string) string { return s.cfg.Issuer + path }

// Keys is the signing key manager (for `latch keys rotate` and tests).
func (s *Server) Keys() *keys.Manager { return s.keys }

// derive makes an independent 32-byte key for one purpose from the system
// secret, so the cookie, CSRF and token keys never coincide.
func derive(secret []byte, purpose string) []byte {
	h := sha256.New()
	h.Write([]byte(purpose))
	h.Write([]byte{0})
	h.Write(secret)
	return h.Sum(nil)
}
