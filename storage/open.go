package storage

import (
	"log/slog"
	"time"

	"github.com/ory/fosite"

	"github.com/latchauth/latch/secrets"
)

// Options says which database to open.
type Options struct {
	// Driver is "sqlite" or "postgres".
	Driver string
	// DSN is a file path (or ":memory:") for sqlite, a libpq/pgx connection
	// string for postgres.
	DSN string
	// NewSession makes the empty session a stored request is decoded into
	// when fosite passes none (the revocation handler does). Default:
	// openid.NewDefaultSession.
	NewSession func() fosite.Session
	Logger     *slog.Logger
	// RefreshTokenGracePeriod (>0) keeps a rotated refresh token working
	// this long, so that concurrent refreshes with one token all succeed.
	RefreshTokenGracePeriod time.Duration
	// Cipher, when set, encrypts the values of sealed.go at rest (the
	// signing keys, the system secret) under secrets.system.
	Cipher *secrets.Cipher
}
