package storage

import (
	"context"
	"database/sql"
	"time"

	"github.com/ory/fosite"

	"github.com/latchauth/latch/clients"
)

// Optional capabilities. Store is what every store must do; a caller that
// can use more type-asserts for one of these and does without when the
// store lacks it (a wrapper in a test, a store of another kind). Naming
// them here, with the compile-time checks below, keeps a renamed method
// from silently turning a capability off.

// UnitOfWork makes a request's blind writes one atomic, durable write:
// see GormStore.Unit. The revocation endpoint uses it.
type UnitOfWork interface {
	Unit(ctx context.Context) (context.Context, func(err error) error)
}

// ClientReloader answers a refused client secret: the client fosite
// checked may come from the cache, a moment older than a secret just
// rotated on another instance, so the server asks whether the stored row
// has another secret hash before it concludes; only then is the secret
// checked again. A wrong secret thus costs one hash run and drops nothing
// from the cache.
type ClientReloader interface {
	ReloadClient(ctx context.Context, id string) (changed bool, err error)
}

// Backuper writes a consistent copy of the database to a new file while it
// is in use (`latch backup`).
type Backuper interface {
	Backup(ctx context.Context, path string) error
}

// SeedMemos keeps the keyed checks that let a restart skip re-hashing
// the unchanged plaintext secrets of config.yaml (see storage/seedmemo.go).
type SeedMemos interface {
	SeedMemo(ctx context.Context, name string) (string, error)
	SetSeedMemo(ctx context.Context, name, memo string) error
}

// ExchangedGrants ties the grant of a token issued by a token exchange
// (RFC 8693) to the grant of its subject token, so that revoking that
// grant revokes the exchanged one too (exchange.go).
type ExchangedGrants interface {
	LinkExchangedGrant(ctx context.Context, requestID, parentID string, expiresAt time.Time) error
	ExtendExchangedGrant(ctx context.Context, requestID string, expiresAt time.Time) error
	ExchangedFrom(ctx context.Context, requestID string) ([]string, error)
}

// PoolStats exposes the write pool, for its statistics (the metrics
// endpoint).
type PoolStats interface {
	SQLDB() *sql.DB
}

// RateLimited is a client that carries a token request rate limit: the
// clients GetClient returns (*clients.Client) are.
type RateLimited interface {
	fosite.Client
	// GetRateLimit is token requests per second; 0 means unlimited.
	GetRateLimit() float64
}

// BackchannelLogouts keeps what OIDC Back-Channel Logout needs
// (backchannel.go): which clients took part in a login session, and the
// queue of logout tokens that ending one fills. A store without it gives
// no back-channel logout.
type BackchannelLogouts interface {
	RecordSessionClient(ctx context.Context, ls *LoginSession, clientID string) error
	ClaimLogoutDeliveries(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]LogoutDelivery, error)
	RetryLogoutDelivery(ctx context.Context, d LogoutDelivery, at time.Time) error
	DeleteLogoutDelivery(ctx context.Context, d LogoutDelivery) error
	CountLogoutDeliveries(ctx context.Context) (int64, error)
	LogoutDeliveriesDropped() int64
}

// Connectors keeps upstream identity providers and the links of their
// people to local users (connectors.go).
type Connectors interface {
	CreateConnector(ctx context.Context, c *Connector) error
	UpsertConnector(ctx context.Context, c *Connector) error
	GetConnector(ctx context.Context, id string) (*Connector, error)
	ListConnectors(ctx context.Context) ([]*Connector, error)
	DeleteConnector(ctx context.Context, id string) error

	GetLink(ctx context.Context, connectorID, subject string) (*Link, error)
	GetUserLink(ctx context.Context, connectorID, username string) (*Link, error)
	ListUserLinks(ctx context.Context, username string) ([]*Link, error)
	CreateLink(ctx context.Context, l *Link) error
	CreateLinkedUser(ctx context.Context, u *User, l *Link) error
	SetLinkData(ctx context.Context, connectorID, subject string, data []byte) error
	UsersByEmail(ctx context.Context, email string) ([]*User, error)
}

var (
	_ BackchannelLogouts = (*GormStore)(nil)
	_ Connectors         = (*GormStore)(nil)
	_ UnitOfWork         = (*GormStore)(nil)
	_ ClientReloader     = (*GormStore)(nil)
	_ Backuper           = (*GormStore)(nil)
	_ PoolStats          = (*GormStore)(nil)
	_ SeedMemos          = (*GormStore)(nil)
	_ RateLimited        = (*clients.Client)(nil)
	_ ExchangedGrants    = (*GormStore)(nil)
)
