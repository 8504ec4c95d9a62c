package storage

import (
	"context"
	"errors"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
	"github.com/ory/fosite/handler/rfc7523"
	fositestorage "github.com/ory/fosite/storage"

	"github.com/latchauth/latch/clients"
)

// Sentinel errors. Lookups of fosite's records return fosite's own errors
// (fosite.ErrNotFound, fosite.ErrInactiveToken,
// fosite.ErrInvalidatedAuthorizeCode) because fosite's handlers test for
// them; Latch's own records use these.
var (
	// ErrNotFound is fosite.ErrNotFound, so one errors.Is check serves both.
	ErrNotFound = fosite.ErrNotFound
	// ErrAlreadyExists: a create met an existing primary key.
	ErrAlreadyExists = errors.New("storage: already exists")
	// ErrUnavailable wraps every failure of the database itself (closed,
	// unreachable, disk full). Handlers turn it into 503
	// temporarily_unavailable: the caller must not believe a write happened.
	ErrUnavailable = errors.New("storage: database unavailable")
)

// Store is the one storage interface of Latch.
type Store interface {
	fosite.ClientManager
	oauth2.CoreStorage
	oauth2.TokenRevocationStorage
	openid.OpenIDConnectRequestStorage
	pkce.PKCERequestStorage
	fosite.PARStorage
	rfc7523.RFC7523KeyStorage
	fositestorage.Transactional

	ClientStore
	UserStore
	KeyStore
	BrowserStore
	SessionStore
	ThrottleStore
	DeviceStore
	PendingStore
	MFAStore
	AccountStore
	PasskeyStore

	// RevokeClientTokens deactivates every refresh token and unused code and
	// deletes every access token issued to clientID, in one transaction; it
	// returns how many grants it ended.
	RevokeClientTokens(ctx context.Context, clientID string) (int64, error)
	// RevokeSubjectTokens does the same for every grant of one subject.
	RevokeSubjectTokens(ctx context.Context, subject string) (int64, error)

	// UpsertTrustedIssuer records an RFC 7523 issuer, replacing any with the
	// same issuer and subject.
	UpsertTrustedIssuer(ctx context.Context, ti TrustedIssuer) error

	// DeleteExpired removes every token, code, session and JTI that expired
	// before now, and returns how many rows went.
	DeleteExpired(ctx context.Context, now time.Time) (int64, error)
	// DeleteExpiredInBatches does it in transactions of at most batch rows
	// each, reporting every batch to deleted (which may be nil): the
	// janitor's way, which never holds writers up for long.
	DeleteExpiredInBatches(ctx context.Context, now time.Time, batch int, deleted func(table string, n int64)) (int64, error)
	// ExpireNow makes the token, code or device code stored under
	// signature expire now, for test fixtures (storage/fixture.go).
	ExpireNow(ctx context.Context, signature string) error

	// Ping reports whether the database answers (readiness).
	Ping(ctx context.Context) error
	// Close releases the database.
	Close() error
}

// ClientStore keeps clients. A client's SecretHash is stored as given: the
// clients package hashes before it calls these.
type ClientStore interface {
	CreateClient(ctx context.Context, c *clients.Client) error
	// UpdateClient replaces every field of an existing client.
	UpdateClient(ctx context.Context, c *clients.Client) error
	// UpsertClient creates or replaces the client with c.ID.
	UpsertClient(ctx context.Context, c *clients.Client) error
	// GetClient (from fosite.ClientManager) returns *clients.Client.
	ListClients(ctx context.Context) ([]*clients.Client, error)
	// ListClientsPage returns up to limit clients (all when limit <= 0)
	// whose ID sorts after after, in ID order.
	ListClientsPage(ctx context.Context, after string, limit int) ([]*clients.Client, error)
	// DeleteClient removes the client and every token issued to it.
	DeleteClient(ctx context.Context, id string) error
}

// MFAStore keeps built-in users' second factors (mfa.go).
type MFAStore interface {
	SaveTOTPEnrolment(ctx context.Context, username, secret string) error
	GetTOTP(ctx context.Context, username string) (*TOTP, error)
	UseTOTPStep(ctx context.Context, t *TOTP, step int64, confirm bool) error
	ReplaceRecoveryCodes(ctx context.Context, username string, hashes []string) error
	UseRecoveryCode(ctx context.Context, username, hash string) error
	UnusedRecoveryCodes(ctx context.Context, username string) (int, error)
	DeleteTOTP(ctx context.Context, username string) error
	DeleteSecondFactors(ctx context.Context, username string) error
	SecondFactors(ctx context.Context, usernames []string) (map[string][]string, error)
}

// BrowserStore keeps what the browser flows need: login sessions,
// remembered consents and authorization requests waiting for a decision.
type BrowserStore interface {
	CreateLoginSession(ctx context.Context, ls *LoginSession) error
	GetLoginSession(ctx context.Context, id string) (*LoginSession, error)
	DeleteLoginSession(ctx context.Context, id string) error

	GetConsent(ctx context.Context, username, clientID string) ([]string, error)
	SaveConsent(ctx context.Context, username, clientID string, scopes []string) error
	DeleteConsents(ctx context.Context, username string) error
	ListConsents(ctx context.Context, username string) ([]Consent, error)
	DeleteConsent(ctx context.Context, username, clientID string) error

	CreateAuthorizeChallenge(ctx context.Context, id string, ar fosite.AuthorizeRequester, expiresAt time.Time) error
	GetAuthorizeChallenge(ctx context.Context, id string) (fosite.AuthorizeRequester, error)
	DeleteAuthorizeChallenge(ctx context.Context, id string) error
}

// User is a built-in user who signs in on the login page.
type User struct {
	Username      string
	PasswordHash  string
	Email         string
	EmailVerified bool
	Name          string
	Groups        []string
	Claims        map[string]any
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// UserStore keeps built-in users.
type UserStore interface {
	// CreateUser adds a new user; an existing username is ErrAlreadyExists.
	CreateUser(ctx context.Context, u *User) error
	UpsertUser(ctx context.Context, u *User) error
	GetUser(ctx context.Context, username string) (*User, error)
	ListUsers(ctx context.Context) ([]*User, error)
	// ListUsersPage is ListClientsPage for users, by username.
	ListUsersPage(ctx context.Context, after string, limit int) ([]*User, error)
	// DeleteUser removes the user with their grants, sessions and consents.
	DeleteUser(ctx context.Context, username string) error
}

// SigningKey is a private key the server signs ID tokens and JWT access
// tokens with. PrivateJWK is the key as JSON Web Key (private part included).
type SigningKey struct {
	KID        string
	Algorithm  string
	PrivateJWK []byte
	CreatedAt  time.Time
	// RetiredAt is when the key stopped signing; it is still published until
	// ExpiresAt so tokens it signed can be verified.
	RetiredAt *time.Time
	ExpiresAt *time.Time
}

// TrustedIssuer is an RFC 7523 JWT bearer grant issuer.
type TrustedIssuer struct {
	Issuer          string
	Subject         string
	AllowAnySubject bool
	Scopes          []string
	JWKS            []byte // a JSON Web Key Set of public keys
}

// KeyStore keeps signing keys and the system secret.
type KeyStore interface {
	CreateSigningKey(ctx context.Context, k *SigningKey) error
	// ListSigningKeys returns every key not yet past ExpiresAt, newest first.
	ListSigningKeys(ctx context.Context, now time.Time) ([]*SigningKey, error)
	// RetireSigningKeys marks every key without RetiredAt as retired at
	// retiredAt and published until expiresAt.
	RetireSigningKeys(ctx context.Context, retiredAt, expiresAt time.Time) error

	// SystemSecret returns the stored system secret. If none is stored yet
	// it stores candidate and returns it; when several instances race, every
	// one gets the same first-stored value.
	SystemSecret(ctx context.Context, candidate []byte) ([]byte, error)
}
