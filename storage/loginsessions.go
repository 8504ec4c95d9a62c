package storage

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
)

// Login sessions in bulk: what `latch sessions` and /admin/sessions show
// and end, and the rule that a changed password ends every session of its
// user (a session proves the password as it was at sign-in).

// LoginSessionInfo is a login session as an operator sees it. Handle is
// the stored SHA-256 of the browser's session ID: it tells sessions apart,
// and it cannot be turned back into a cookie.
type LoginSessionInfo struct {
	Handle    string
	Username  string
	AuthTime  time.Time
	ExpiresAt time.Time
}

// SessionStore lists and ends login sessions of one user or of everyone.
// Expired sessions are neither listed nor counted.
type SessionStore interface {
	ListLoginSessions(ctx context.Context, username string) ([]LoginSessionInfo, error)
	ListAllLoginSessions(ctx context.Context) ([]LoginSessionInfo, error)
	// EndLoginSessions deletes every session of username and returns how
	// many unexpired ones ended.
	EndLoginSessions(ctx context.Context, username string) (int64, error)
	EndAllLoginSessions(ctx context.Context) (int64, error)
	// RevokeSubject ends every grant of subject (RevokeSubjectTokens) and
	// every login session in one transaction: revoking a person's tokens
	// while their browser can silently get new ones (prompt=none) would
	// revoke nothing.
	RevokeSubject(ctx context.Context, subject string) (grants, sessions int64, err error)
}

var _ SessionStore = (*GormStore)(nil)

func (s *GormStore) ListLoginSessions(ctx context.Context, username string) ([]LoginSessionInfo, error) {
	return s.listSessions(s.reader(ctx).Where("username = ?", username))
}

func (s *GormStore) ListAllLoginSessions(ctx context.Context) ([]LoginSessionInfo, error) {
	return s.listSessions(s.reader(ctx))
}

func (s *GormStore) listSessions(q *gorm.DB) ([]LoginSessionInfo, error) {
	var rows []loginSessionRow
	if err := q.Where("expires_at > ?", s.now().UTC()).Order("username, auth_time, id").Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	out := make([]LoginSessionInfo, len(rows))
	for i, r := range rows {
		out[i] = LoginSessionInfo{Handle: r.ID, Username: r.Username, AuthTime: r.AuthTime, ExpiresAt: r.ExpiresAt}
	}
	return out, nil
}

func (s *GormStore) EndLoginSessions(ctx context.Context, username string) (int64, error) {
	var n int64
	err := s.tx(ctx, func(_ context.Context, tx *gorm.DB) (err error) {
		n, err = s.endSessions(tx.Where("username = ?", username))
		return err
	})
	return n, err
}

func (s *GormStore) EndAllLoginSessions(ctx context.Context) (int64, error) {
	var n int64
	err := s.tx(ctx, func(_ context.Context, tx *gorm.DB) (err error) {
		n, err = s.endSessions(tx.Where("1 = 1"))
		return err
	})
	return n, err
}

func (s *GormStore) RevokeSubject(ctx context.Context, subject string) (grants, sessions int64, err error) {
	err = s.tx(ctx, func(txCtx context.Context, tx *gorm.DB) error {
		var err error
		if grants, err = s.RevokeSubjectTokens(txCtx, subject); err != nil {
			return err
		}
		sessions, err = s.endSessions(tx.Where("username = ?", subject))
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	return grants, sessions, nil
}

// endSessions deletes the sessions q selects and counts the unexpired
// ones among them (expired rows are the janitor's, and ended nothing).
// Their clients are told (queueLogouts). q must be a transaction's.
func (s *GormStore) endSessions(q *gorm.DB) (int64, error) {
	var live int64
	if err := q.Session(&gorm.Session{}).Model(&loginSessionRow{}).Where("expires_at > ?", s.now().UTC()).Count(&live).Error; err != nil {
		return 0, translate(err)
	}
	if live > 0 {
		ids := q.Session(&gorm.Session{}).Model(&loginSessionRow{}).Select("id")
		if err := s.queueLogouts(q.Session(&gorm.Session{NewDB: true}), ids); err != nil {
			return 0, err
		}
	}
	if err := q.Session(&gorm.Session{}).Delete(&loginSessionRow{}).Error; err != nil {
		return 0, translate(err)
	}
	return live, nil
}

// passwordHashOf is the stored password hash of username, or "" and false
// when there is no such user.
func passwordHashOf(tx *gorm.DB, username string) (string, bool, error) {
	var row userRow
	err := tx.Select("password_hash").Where("username = ?", username).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, translate(err)
	}
	return row.PasswordHash, true, nil
}
