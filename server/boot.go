package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/secrets"
	"github.com/latchauth/latch/storage"
)

// The start-up `latch serve` and the latchtest package share: the same
// store, seeding, runtime configuration and http.Server, so a test fixture
// runs what production runs.

// Instance is a Server with the store and the client manager it was
// booted with.
type Instance struct {
	Server  *Server
	Store   *storage.GormStore
	Clients *clients.Manager
}

// Close closes the store. Stop serving first.
func (in *Instance) Close() error { return in.Store.Close() }

// BootOptions is what Boot takes beyond the file.
type BootOptions struct {
	// Logger of the store and the server (nil: discard).
	Logger *slog.Logger
	// DevMode and Faults are copied to Config (dev.go).
	DevMode bool
	Faults  *Faults
	// SigningKey, when set, is stored before the Server starts, which then
	// signs with it instead of generating a key. latchtest reuses one RSA
	// key per process this way: generating one takes tens of milliseconds.
	SigningKey *storage.SigningKey
}

// Boot does what `latch serve` does before it listens: it opens and
// migrates the database of f, seeds what f declares, and assembles the
// Server from the runtime configuration of f. f must be validated. On
// error nothing stays open.
func Boot(ctx context.Context, f config.File, o BootOptions) (*Instance, error) {
	st, err := OpenStore(ctx, f, o.Logger)
	if err != nil {
		return nil, err
	}
	in, err := boot(ctx, f, o, st)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	return in, nil
}

func boot(ctx context.Context, f config.File, o BootOptions, st *storage.GormStore) (*Instance, error) {
	if o.SigningKey != nil {
		if err := st.CreateSigningKey(ctx, o.SigningKey); err != nil {
			return nil, fmt.Errorf("server: import signing key: %w", err)
		}
	}
	hasher := clients.NewHasher(10000)
	mgr := &clients.Manager{Store: st, Hasher: hasher, Rules: clients.Rules{InsecureHTTP: f.InsecureHTTP}}
	if err := Seed(ctx, f, st, mgr); err != nil {
		return nil, err
	}
	cfg := ConfigFromFile(f, st, o.Logger, hasher)
	cfg.DevMode, cfg.Faults = o.DevMode, o.Faults
	srv, err := New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &Instance{Server: srv, Store: st, Clients: mgr}, nil
}

// OpenStore opens and migrates the database of f, and encrypts under
// secrets.system what is still stored in clear (storage.SealAtRest): the
// first start with a secret upgrades an older database, and a wrong or
// missing secret fails here, before anything is served.
func OpenStore(ctx context.Context, f config.File, log *slog.Logger) (*storage.GormStore, error) {
	st, cipher, err := openMigrated(ctx, f, log)
	if err != nil {
		return nil, err
	}
	n, err := st.SealAtRest(ctx, nil)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	if n > 0 && log != nil {
		log.Info("encrypted stored secrets under secrets.system", "count", n, "key_id", cipher.KeyID())
	}
	return st, nil
}

// RotateSecret re-encrypts, in one transaction, everything encrypted at
// rest under the previous system secret old to the secrets.system of f
// (`latch secrets rotate`), and reports how many values it rewrote.
func RotateSecret(ctx context.Context, f config.File, log *slog.Logger, old *secrets.Cipher) (int, error) {
	st, _, err := openMigrated(ctx, f, log)
	if err != nil {
		return 0, err
	}
	n, err := st.SealAtRest(ctx, old)
	return n, errors.Join(err, st.Close())
}

// openMigrated opens and migrates the database of f, with the cipher of
// its secrets.system (nil when there is none).
func openMigrated(ctx context.Context, f config.File, log *slog.Logger) (*storage.GormStore, *secrets.Cipher, error) {
	o := storage.Options{
		Driver:                  f.Database.Driver,
		DSN:                     f.Database.DSN,
		Logger:                  log,
		RefreshTokenGracePeriod: f.Tokens.RefreshTokenGracePeriod.Duration,
	}
	if f.Secrets.System != "" {
		var err error
		if o.Cipher, err = secrets.NewCipher([]byte(f.Secrets.System)); err != nil {
			return nil, nil, fmt.Errorf("secrets.system: %w", err)
		}
	}
	st, err := storage.Open(ctx, o)
	if err != nil {
		return nil, nil, err
	}
	if err := st.Migrate(ctx); err != nil {
		_ = st.Close()
		return nil, nil, err
	}
	return st, o.Cipher, nil
}

// Seed upserts the clients, users and trusted issuers declared in f, by id,
// so the file stays the source of truth for what it declares.
func Seed(ctx context.Context, f config.File, st storage.Store, mgr *clients.Manager) error {
	memo := newSeedMemo(f, st)
	if err := seedUsers(ctx, f.Users, st, memo); err != nil {
		return fmt.Errorf("seed users: %w", err)
	}
	for _, fc := range f.Clients {
		c, err := fc.Model()
		if err != nil {
			return err
		}
		if err := seedClient(ctx, c, fc.Secret, mgr, memo); err != nil {
			return fmt.Errorf("seed %w", err)
		}
	}
	if err := seedConnectors(ctx, f.Connectors, st); err != nil {
		return err
	}
	for i, ti := range f.TrustedIssuers {
		set, err := ti.KeySet()
		if err != nil {
			return fmt.Errorf("trusted_issuers[%d]: %w", i, err)
		}
		raw, err := json.Marshal(set)
		if err != nil {
			return fmt.Errorf("trusted_issuers[%d]: %w", i, err)
		}
		err = st.UpsertTrustedIssuer(ctx, storage.TrustedIssuer{
			Issuer: ti.Issuer, Subject: ti.Subject, AllowAnySubject: ti.AllowAnySubject, Scopes: ti.Scopes, JWKS: raw,
		})
		if err != nil {
			return fmt.Errorf("trusted_issuers[%d]: %w", i, err)
		}
	}
	return nil
}

// ConfigFromFile is the runtime configuration of a validated file.
func ConfigFromFile(f config.File, st storage.Store, log *slog.Logger, hasher *clients.Hasher) Config {
	return Config{
		Issuer:                f.Issuer,
		Store:                 st,
		Logger:                log,
		SystemSecret:          []byte(f.Secrets.System),
		AccessTokenLifespan:   f.Tokens.AccessTokenLifespan.Duration,
		RefreshTokenLifespan:  f.Tokens.RefreshTokenLifespan.Duration,
		AuthorizeCodeLifespan: f.Tokens.AuthorizeCodeLifespan.Duration,
		IDTokenLifespan:       f.Tokens.IDTokenLifespan.Duration,
		DeviceCodeLifespan:    f.Tokens.DeviceCodeLifespan.Duration,
		AccessTokenFormat:     f.Tokens.AccessTokenFormat,
		DPoPRequireNonce:      f.Tokens.DPoPRequireNonce,
		Hasher:                hasher,
		SigningAlgorithm:      f.Tokens.IDTokenSigningAlg,
		AdminToken:            f.Admin.Token,
		RegistrationEnabled:   f.Registration.Enabled,
		MFARequired:           f.MFA.Required,
		NoPasswordForm:        !f.Login.PasswordForm,
		RegistrationToken:     f.Registration.InitialAccessToken,
		Registration: RegistrationPolicy{
			AllowedScopes:           f.Registration.AllowedScopes,
			AllowedGrantTypes:       f.Registration.AllowedGrantTypes,
			InitialAccessScopes:     f.Registration.InitialAccessPolicy.AllowedScopes,
			InitialAccessGrantTypes: f.Registration.InitialAccessPolicy.AllowedGrantTypes,
			MaxClients:              f.Registration.MaxClients,
			PerAddressPerHour:       f.Registration.PerAddressPerHour,
		},
		TrustedProxies: trustedProxies(f.TrustedProxies),
		InsecureHTTP:   f.InsecureHTTP,
	}
}

// trustedProxies parses the validated trusted_proxies list.
func trustedProxies(list []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range list {
		if p, err := config.ParsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// MaxHeaderBytes caps the request line and headers of a request (Go's
// default is 1 MiB). 32 KiB holds a Basic header, a signed JWT bearer
// token and the session cookies many times over; a larger request is
// answered 431 before any handler runs.
const MaxHeaderBytes = 32 << 10

// HTTPServer is the http.Server that serves h: timeouts against slow or
// idle clients, and its own errors logged as warnings.
func HTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}
