package storage

import (
	"context"
	"strings"
	"time"

	"github.com/ory/fosite"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// LoginSession is a person signed in through the login page. The browser
// holds the session's random ID; the database holds only its SHA-256, so a
// copy of the database signs nobody in.
type LoginSession struct {
	ID        string // the clear ID; stored hashed
	Username  string
	AuthTime  time.Time
	ExpiresAt time.Time
	// AMR is what the person proved at AuthTime, as RFC 8176 values
	// ("pwd", "otp", "mfa", "hwk" or "swk" for a passkey, ...): the ID
	// token's amr.
	AMR []string
	// UserAgent and Address are the browser and client address that signed
	// in, LastSeen when the session was last used (SeeLoginSession): what
	// the account page shows so a person can tell their sessions apart.
	UserAgent string
	Address   string
	LastSeen  time.Time
	// Connector is the id of the upstream identity provider the person
	// signed in through; "" for a local sign-in. Grants of the session
	// carry it, so their refreshes can ask that upstream again.
	Connector string
}

type loginSessionRow struct {
	ID         string `gorm:"primaryKey"`
	Username   string
	AuthTime   time.Time
	ExpiresAt  time.Time
	AMR        string `gorm:"column:amr"`
	UserAgent  string
	Address    string
	LastSeenAt *time.Time
	Connector  string
}

func (r *loginSessionRow) session(id string) *LoginSession {
	amr := strings.Fields(r.AMR)
	if len(amr) == 0 {
		amr = []string{"pwd"} // a session from before amr was kept: a password
	}
	ls := &LoginSession{ID: id, Username: r.Username, AuthTime: r.AuthTime, ExpiresAt: r.ExpiresAt, AMR: amr,
		UserAgent: r.UserAgent, Address: r.Address, LastSeen: r.AuthTime, Connector: r.Connector}
	if r.LastSeenAt != nil {
		ls.LastSeen = *r.LastSeenAt
	}
	return ls
}

func (loginSessionRow) TableName() string { return "login_sessions" }

func (s *GormStore) CreateLoginSession(ctx context.Context, ls *LoginSession) error {
	row := loginSessionRow{ID: hashKey(ls.ID), Username: ls.Username, AuthTime: ls.AuthTime.UTC(), ExpiresAt: ls.ExpiresAt.UTC(), AMR: strings.Join(ls.AMR, " "),
		UserAgent: capString(ls.UserAgent, maxUserAgent), Address: capString(ls.Address, maxAddress), Connector: ls.Connector}
	return s.write(ctx, true, func(tx *gorm.DB) error { return translate(tx.Create(&row).Error) })
}

// GetLoginSession returns the unexpired session with that ID, or ErrNotFound.
func (s *GormStore) GetLoginSession(ctx context.Context, id string) (*LoginSession, error) {
	var row loginSessionRow
	err := s.reader(ctx).Where("id = ? AND expires_at > ?", hashKey(id), s.now().UTC()).Take(&row).Error
	if err != nil {
		return nil, translate(err)
	}
	return row.session(id), nil
}

// DeleteLoginSession ends a session, telling its clients (queueLogouts);
// ending an unknown one is no error.
func (s *GormStore) DeleteLoginSession(ctx context.Context, id string) error {
	return s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
		_, err := s.endSessions(tx.Where("id = ?", hashKey(id)))
		return err
	})
}

type consentRow struct {
	Username  string `gorm:"primaryKey"`
	ClientID  string `gorm:"primaryKey"`
	Scopes    string
	CreatedAt time.Time
}

func (consentRow) TableName() string { return "consents" }

// GetConsent returns the scopes username remembered granting clientID, or
// ErrNotFound.
func (s *GormStore) GetConsent(ctx context.Context, username, clientID string) ([]string, error) {
	var row consentRow
	if err := s.reader(ctx).Where("username = ? AND client_id = ?", username, clientID).Take(&row).Error; err != nil {
		return nil, translate(err)
	}
	return splitScopes(row.Scopes), nil
}

// SaveConsent remembers that username granted scopes to clientID,
// replacing what was remembered before.
func (s *GormStore) SaveConsent(ctx context.Context, username, clientID string, scopes []string) error {
	row := consentRow{Username: username, ClientID: clientID, Scopes: strings.Join(scopes, " "), CreatedAt: s.now().UTC()}
	return s.write(ctx, true, func(tx *gorm.DB) error {
		return translate(tx.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "username"}, {Name: "client_id"}},
			DoUpdates: clause.AssignmentColumns([]string{"scopes", "created_at"}),
		}).Create(&row).Error)
	})
}

// Consent is one remembered consent decision.
type Consent struct {
	Username  string
	ClientID  string
	Scopes    []string
	CreatedAt time.Time
}

// ListConsents returns the consents username remembered, by client ID.
func (s *GormStore) ListConsents(ctx context.Context, username string) ([]Consent, error) {
	var rows []consentRow
	if err := s.reader(ctx).Where("username = ?", username).Order("client_id").Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	out := make([]Consent, 0, len(rows))
	for _, r := range rows {
		out = append(out, Consent{Username: r.Username, ClientID: r.ClientID, Scopes: splitScopes(r.Scopes), CreatedAt: r.CreatedAt})
	}
	return out, nil
}

// DeleteConsent forgets one remembered consent, or answers ErrNotFound.
func (s *GormStore) DeleteConsent(ctx context.Context, username, clientID string) error {
	return s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
		return matched(tx.Where("username = ? AND client_id = ?", username, clientID).Delete(&consentRow{}))
	})
}

// DeleteConsents forgets every remembered consent of username.
func (s *GormStore) DeleteConsents(ctx context.Context, username string) error {
	return s.write(ctx, false, func(tx *gorm.DB) error {
		return translate(tx.Where("username = ?", username).Delete(&consentRow{}).Error)
	})
}

// challengeExpiry is the session expiry key a challenge is stored under.
const challengeExpiry = fosite.TokenType("challenge")

// CreateAuthorizeChallenge keeps an authorization request that waits for a
// login or consent decision until expiresAt. It is parsed by fosite once
// (a pushed request_uri can be used only once), then completed from here.
func (s *GormStore) CreateAuthorizeChallenge(ctx context.Context, id string, ar fosite.AuthorizeRequester, expiresAt time.Time) error {
	if ar.GetSession() == nil {
		ar.SetSession(s.newSession())
	}
	ar.GetSession().SetExpiresAt(challengeExpiry, expiresAt)
	return s.createRequest(ctx, tableChallenge, hashKey(id), ar, challengeExpiry, "")
}

// GetAuthorizeChallenge returns the unexpired challenge, or ErrNotFound.
func (s *GormStore) GetAuthorizeChallenge(ctx context.Context, id string) (fosite.AuthorizeRequester, error) {
	row, err := s.getRow(ctx, tableChallenge, hashKey(id))
	if err != nil {
		return nil, err
	}
	if row.ExpiresAt != nil && !s.now().Before(*row.ExpiresAt) {
		return nil, fosite.ErrNotFound
	}
	return s.toAuthorizeRequest(ctx, row, nil)
}

// DeleteAuthorizeChallenge removes a challenge once it is decided. It
// returns ErrNotFound when there was none, so that of two requests deciding
// one challenge at once exactly one goes on.
func (s *GormStore) DeleteAuthorizeChallenge(ctx context.Context, id string) error {
	return s.deleteOnce(ctx, tableChallenge, hashKey(id))
}
