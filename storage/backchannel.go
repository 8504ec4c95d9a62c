package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"github.com/ory/fosite"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// OpenID Connect Back-Channel Logout 1.0: which clients took part in a
// login session, and the queue of logout tokens to deliver when one ends.
// Every path that ends sessions (logout, the account page, the admin API
// and CLI, a changed password, a deleted user) goes through endSessions or
// queueLogouts in the transaction that deletes them, so a session never
// ends without its deliveries being queued, and a rolled-back end queues
// nothing. The rows are in the database so that a restart, or another
// instance, delivers what one instance queued.

// Bounds on what session ends can make us store. Only an authenticated
// session end adds deliveries, and each session names at most
// MaxSessionClients clients, but an admin ending every session at once
// must not grow the queue without end either.
const (
	// MaxSessionClients is how many clients one login session remembers;
	// a client beyond them is not told when the session ends.
	MaxSessionClients = 64
	// MaxLogoutDeliveries caps the queue; deliveries beyond it are
	// dropped (and counted: LogoutDeliveriesDropped).
	MaxLogoutDeliveries = 10000
	// LogoutDeliveryLifespan is how long a queued delivery may wait for a
	// worker: a logout told an hour late tells the client little.
	LogoutDeliveryLifespan = time.Hour
)

type sessionClientRow struct {
	SessionID string `gorm:"primaryKey"` // login_sessions.id: the SHA-256 handle
	ClientID  string `gorm:"primaryKey"`
	Subject   string
	CreatedAt time.Time
	ExpiresAt time.Time
}

func (sessionClientRow) TableName() string { return "session_clients" }

type logoutDeliveryRow struct {
	ID            string `gorm:"primaryKey"`
	ClientID      string
	Subject       string
	SessionID     string
	Attempts      int
	NextAttemptAt time.Time
	CreatedAt     time.Time
	ExpiresAt     time.Time
}

func (logoutDeliveryRow) TableName() string { return "logout_deliveries" }

// LogoutDelivery is one logout token to send: to ClientID, about Subject's
// session SessionHandle (the stored handle; the token's sid is derived
// from it). ID is unique per delivery and serves as the token's jti.
// Attempts counts the attempts so far, the claimed one included: it is
// also the row's version, so only the claimer can finish it.
type LogoutDelivery struct {
	ID            string
	ClientID      string
	Subject       string
	SessionHandle string
	Attempts      int
	CreatedAt     time.Time
	ExpiresAt     time.Time
}

// RecordSessionClient remembers that clientID got a code or token in ls,
// so that it is told when ls ends. Recording it again changes nothing; a
// session that already names MaxSessionClients clients names no more.
func (s *GormStore) RecordSessionClient(ctx context.Context, ls *LoginSession, clientID string) error {
	row := sessionClientRow{SessionID: SessionHandle(ls.ID), ClientID: clientID, Subject: ls.Username,
		CreatedAt: s.now().UTC(), ExpiresAt: ls.ExpiresAt.UTC()}
	// The common case, a client signing in again in the same session, is
	// a read and no write.
	var n int64
	err := s.reader(ctx).Model(&sessionClientRow{}).Where("session_id = ? AND client_id = ?", row.SessionID, clientID).Count(&n).Error
	if err != nil || n > 0 {
		return translate(err)
	}
	return s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
		var names int64
		if err := tx.Model(&sessionClientRow{}).Where("session_id = ?", row.SessionID).Count(&names).Error; err != nil {
			return translate(err)
		}
		if names >= MaxSessionClients {
			s.log.WarnContext(ctx, "back-channel logout: the session names too many clients; this one will not be told", "client_id", clientID, "limit", MaxSessionClients)
			return nil
		}
		return translate(tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error)
	})
}

// queueLogouts queues a delivery to each client of the unexpired sessions
// whose IDs sessions selects (a sub-query of login_sessions), and forgets
// those sessions' clients. It runs in tx, the transaction that deletes
// the sessions.
func (s *GormStore) queueLogouts(tx *gorm.DB, sessions *gorm.DB) error {
	now := s.now().UTC()
	live := func() *gorm.DB {
		return tx.Model(&sessionClientRow{}).Where("session_id IN (?) AND expires_at > ?", sessions, now)
	}
	var told, queued int64
	if err := live().Count(&told).Error; err != nil {
		return translate(err)
	}
	if told > 0 {
		if err := tx.Model(&logoutDeliveryRow{}).Count(&queued).Error; err != nil {
			return translate(err)
		}
		// Only what fits is read, so that ending every session at once
		// holds no more than the queue's room in memory.
		room := min(max(MaxLogoutDeliveries-queued, 0), told)
		if dropped := told - room; dropped > 0 {
			s.logoutsDropped.Add(dropped)
			s.log.Warn("back-channel logout: the delivery queue is full; deliveries dropped", "dropped", dropped, "limit", MaxLogoutDeliveries)
		}
		var parts []sessionClientRow
		if room > 0 {
			if err := live().Order("session_id, client_id").Limit(int(room)).Find(&parts).Error; err != nil {
				return translate(err)
			}
		}
		rows := make([]logoutDeliveryRow, len(parts))
		for i, p := range parts {
			id, err := newDeliveryID()
			if err != nil {
				return err
			}
			rows[i] = logoutDeliveryRow{ID: id, ClientID: p.ClientID, Subject: p.Subject, SessionID: p.SessionID,
				NextAttemptAt: now, CreatedAt: now, ExpiresAt: now.Add(LogoutDeliveryLifespan)}
		}
		if len(rows) > 0 {
			if err := tx.CreateInBatches(rows, 100).Error; err != nil {
				return translate(err)
			}
		}
	}
	return translate(tx.Where("session_id IN (?)", sessions).Delete(&sessionClientRow{}).Error)
}

func newDeliveryID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// ClaimLogoutDeliveries claims up to limit deliveries due at now for the
// caller: each claimed one counts an attempt and is not due again for
// lease, so that another instance (or this one, should the attempt never
// finish) takes it over only then. Of several instances claiming at once,
// each delivery goes to exactly one: the claim is a conditional update on
// the attempt count.
func (s *GormStore) ClaimLogoutDeliveries(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]LogoutDelivery, error) {
	now = now.UTC()
	var due []logoutDeliveryRow
	if err := s.reader(ctx).Where("next_attempt_at <= ?", now).Order("next_attempt_at, id").Limit(limit).Find(&due).Error; err != nil {
		return nil, translate(err)
	}
	claimed := make([]LogoutDelivery, 0, len(due))
	for _, r := range due {
		err := s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
			return matched(tx.Model(&logoutDeliveryRow{}).Where("id = ? AND attempts = ? AND next_attempt_at <= ?", r.ID, r.Attempts, now).
				Updates(map[string]any{"attempts": r.Attempts + 1, "next_attempt_at": now.Add(lease)}))
		})
		if errors.Is(err, fosite.ErrNotFound) {
			continue // another instance claimed it
		} else if err != nil {
			return claimed, err
		}
		claimed = append(claimed, LogoutDelivery{ID: r.ID, ClientID: r.ClientID, Subject: r.Subject, SessionHandle: r.SessionID,
			Attempts: r.Attempts + 1, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt})
	}
	return claimed, nil
}

// RetryLogoutDelivery makes the claimed delivery d due again at at.
func (s *GormStore) RetryLogoutDelivery(ctx context.Context, d LogoutDelivery, at time.Time) error {
	return s.write(ctx, false, func(tx *gorm.DB) error {
		return translate(tx.Model(&logoutDeliveryRow{}).Where("id = ? AND attempts = ?", d.ID, d.Attempts).
			Update("next_attempt_at", at.UTC()).Error)
	})
}

// DeleteLogoutDelivery removes the claimed delivery d: delivered, or
// given up.
func (s *GormStore) DeleteLogoutDelivery(ctx context.Context, d LogoutDelivery) error {
	return s.write(ctx, false, func(tx *gorm.DB) error {
		return translate(tx.Where("id = ? AND attempts = ?", d.ID, d.Attempts).Delete(&logoutDeliveryRow{}).Error)
	})
}

// CountLogoutDeliveries is how many deliveries are queued.
func (s *GormStore) CountLogoutDeliveries(ctx context.Context) (int64, error) {
	var n int64
	err := s.reader(ctx).Model(&logoutDeliveryRow{}).Count(&n).Error
	return n, translate(err)
}

// LogoutDeliveriesDropped is how many deliveries this store refused to
// queue because the queue was full, since it was opened.
func (s *GormStore) LogoutDeliveriesDropped() int64 { return s.logoutsDropped.Load() }
