package storage

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/ory/fosite"
	"gorm.io/gorm"
)

// What the account page (/account) needs: a person's own sessions, their
// password, and the applications they have allowed. Every method is scoped
// to one username, so a person can only ever see or end what is theirs.

// Caps on what a browser's request can make us store with a session.
const (
	maxUserAgent = 256
	maxAddress   = 64
	// maxGrantRows bounds the token rows read to list a person's
	// applications; a person with more live tokens than that sees the
	// applications of the newest ones.
	maxGrantRows = 2000
)

// SessionView is a login session as its owner sees it on the account page.
// Handle is the stored SHA-256 of the session ID: it names the session in
// a form without being a cookie anyone could replay.
type SessionView struct {
	Handle    string
	UserAgent string
	Address   string
	AuthTime  time.Time
	LastSeen  time.Time
	ExpiresAt time.Time
}

// Grant is an application a person allowed: a remembered consent, live
// tokens, or both.
type Grant struct {
	ClientID   string
	Scopes     []string  // of the remembered consent, else of the newest token
	Remembered bool      // a consent decision is remembered
	LiveTokens bool      // an unexpired, unrevoked access or refresh token exists
	Since      time.Time // when the consent was remembered or the newest token issued
}

// AccountStore is what the account page reads and changes.
type AccountStore interface {
	// SeeLoginSession records that the session was used at.
	SeeLoginSession(ctx context.Context, id string, at time.Time) error
	// ListSessionViews returns username's unexpired sessions, newest first.
	ListSessionViews(ctx context.Context, username string) ([]SessionView, error)
	// EndSessionView ends username's session named by handle, or answers
	// ErrNotFound (also when the session is someone else's).
	EndSessionView(ctx context.Context, username, handle string) error
	// ChangePassword stores a new password hash and ends every session of
	// username but keepSessionID, in one transaction: whoever learnt the
	// old password is signed out, the person changing it is not.
	ChangePassword(ctx context.Context, username, hash, keepSessionID string) error
	// ListGrants returns the applications username allowed, by client ID.
	ListGrants(ctx context.Context, username string) ([]Grant, error)
	// RevokeGrant forgets username's consent to clientID and ends every
	// grant (tokens, unused codes) of theirs with it, in one transaction;
	// it returns how many grants ended, and ErrNotFound when there was
	// neither a consent nor a grant.
	RevokeGrant(ctx context.Context, username, clientID string) (int64, error)
}

var _ AccountStore = (*GormStore)(nil)

// SessionHandle is the handle (SessionView.Handle) of the session with ID id.
func SessionHandle(id string) string { return hashKey(id) }

func capString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary so what is stored stays valid UTF-8.
	return strings.ToValidUTF8(s[:n], "")
}

func (s *GormStore) SeeLoginSession(ctx context.Context, id string, at time.Time) error {
	at = at.UTC()
	return s.write(ctx, true, func(tx *gorm.DB) error {
		return translate(tx.Model(&loginSessionRow{}).Where("id = ?", hashKey(id)).Update("last_seen_at", &at).Error)
	})
}

func (s *GormStore) ListSessionViews(ctx context.Context, username string) ([]SessionView, error) {
	var rows []loginSessionRow
	err := s.reader(ctx).Where("username = ? AND expires_at > ?", username, s.now().UTC()).
		Order("auth_time DESC, id").Find(&rows).Error
	if err != nil {
		return nil, translate(err)
	}
	out := make([]SessionView, len(rows))
	for i := range rows {
		ls := rows[i].session("")
		out[i] = SessionView{Handle: rows[i].ID, UserAgent: ls.UserAgent, Address: ls.Address,
			AuthTime: ls.AuthTime, LastSeen: ls.LastSeen, ExpiresAt: ls.ExpiresAt}
	}
	return out, nil
}

func (s *GormStore) EndSessionView(ctx context.Context, username, handle string) error {
	return s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
		n, err := s.endSessions(tx.Where("id = ? AND username = ? AND expires_at > ?", handle, username, s.now().UTC()))
		if err == nil && n == 0 {
			err = fosite.ErrNotFound
		}
		return err
	})
}

func (s *GormStore) ChangePassword(ctx context.Context, username, hash, keepSessionID string) error {
	return s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
		res := tx.Model(&userRow{}).Where("username = ?", username).
			Updates(map[string]any{"password_hash": hash, "updated_at": s.now().UTC()})
		if err := matched(res); err != nil {
			return err
		}
		_, err := s.endSessions(tx.Where("username = ? AND id <> ?", username, hashKey(keepSessionID)))
		return err
	})
}

func (s *GormStore) ListGrants(ctx context.Context, username string) ([]Grant, error) {
	consents, err := s.ListConsents(ctx, username)
	if err != nil {
		return nil, err
	}
	byClient := map[string]*Grant{}
	for _, c := range consents {
		byClient[c.ClientID] = &Grant{ClientID: c.ClientID, Scopes: c.Scopes, Remembered: true, Since: c.CreatedAt}
	}
	now := s.now().UTC()
	for _, table := range []string{tableRefresh, tableAccess} {
		var rows []requestRow
		q := s.reader(ctx).Table(table).Select("client_id, granted_scopes, requested_at").
			Where("subject = ? AND (expires_at IS NULL OR expires_at > ?)", username, now)
		if table == tableRefresh {
			q = q.Where("active = ?", true)
		}
		if err := q.Order("requested_at DESC").Limit(maxGrantRows).Find(&rows).Error; err != nil {
			return nil, translate(err)
		}
		for _, r := range rows {
			g := byClient[r.ClientID]
			if g == nil {
				g = &Grant{ClientID: r.ClientID, Scopes: splitScopes(r.GrantedScopes), Since: r.RequestedAt}
				byClient[r.ClientID] = g
			}
			g.LiveTokens = true
		}
	}
	out := make([]Grant, 0, len(byClient))
	for _, g := range byClient {
		out = append(out, *g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ClientID < out[j].ClientID })
	return out, nil
}

func (s *GormStore) RevokeGrant(ctx context.Context, username, clientID string) (int64, error) {
	var n int64
	err := s.tx(ctx, func(txCtx context.Context, tx *gorm.DB) error {
		res := tx.Where("username = ? AND client_id = ?", username, clientID).Delete(&consentRow{})
		if res.Error != nil {
			return translate(res.Error)
		}
		var err error
		if n, err = s.revokeWhere(txCtx, "subject = ? AND client_id = ?", username, clientID); err != nil {
			return err
		}
		if res.RowsAffected == 0 && n == 0 {
			return ErrNotFound
		}
		return nil
	})
	return n, err
}
