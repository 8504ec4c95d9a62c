// Package server is Latch's HTTP face: the fosite provider assembly
// (provider.go), every route (routes.go), one file per endpoint family and
// the middleware they share.
package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/ory/fosite"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/storage"
)

// Config is the runtime configuration of a Server (config.File is the file
// schema; cmd_serve.go turns one into the other).
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

	// Hasher checks client secrets; nil means a fresh one.
	Hasher *clients.Hasher
	// MaxBodyBytes caps request bodies (default 64 KiB).
	MaxBodyBytes int64
}

// Server answers every HTTP request of Latch.
type Server struct {
	cfg    Config
	store  storage.Store
	log    *slog.Logger
	now    func() time.Time
	oauth  *fosite.Fosite
	router *mux.Router
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
	}
	for p, d := range defaults {
		if *p <= 0 {
			*p = d
		}
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
	s := &Server{cfg: cfg, store: cfg.Store, log: cfg.Logger, now: cfg.Now}
	s.oauth = newProvider(cfg)
	s.router = s.routes()
	return s, nil
}

// ServeHTTP makes Server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.router.ServeHTTP(w, r)
}

// Issuer is the issuer URL the server was built with.
func (s *Server) Issuer() string { return s.cfg.Issuer }

func (s *Server) url(path string) string { return s.cfg.Issuer + path }
