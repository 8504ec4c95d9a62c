package storage

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ory/fosite"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// tableDevice holds RFC 8628 device authorizations: the shared request row
// keyed by the device code's HMAC signature, plus the SHA-256 of the user
// code, the person's decision and the polling state.
const tableDevice = "oauth2_device"

// DeviceStatus is the person's decision on a device authorization.
type DeviceStatus string

const (
	// DevicePending: nobody has entered the user code and decided yet.
	DevicePending DeviceStatus = "pending"
	// DeviceApproved: allowed; the next poll gets the tokens.
	DeviceApproved DeviceStatus = "approved"
	// DeviceDenied: refused; polls answer access_denied.
	DeviceDenied DeviceStatus = "denied"
)

// DeviceCode is one RFC 8628 device authorization.
type DeviceCode struct {
	// Signature is the HMAC signature of the device code: its key.
	Signature string
	// UserCode is the normalized user code. It is given to
	// CreateDeviceCode and stored only as its SHA-256; reads leave it empty.
	UserCode string
	// Request is the device authorization request: client, requested
	// scopes and audience, form. Once approved it carries the granted
	// scopes and audience and the session of the person who approved, and
	// its ID is the request ID of every token the grant issues.
	Request fosite.Requester
	Status  DeviceStatus
	// Active is false once the device code was redeemed, denied or
	// revoked: it can never issue tokens again.
	Active bool
	// Interval is the minimum time between two polls; slow_down grows it.
	Interval time.Duration
	// LastPolledAt is when the device last polled (nil: never).
	LastPolledAt *time.Time
	ExpiresAt    time.Time
}

// DeviceStore keeps device authorizations. User codes are handed over
// normalized (upper case, no dash) and stored as their SHA-256, like login
// session IDs; device codes by their signature, like tokens.
type DeviceStore interface {
	// CreateDeviceCode stores a pending device authorization. A user code
	// that is already stored is ErrAlreadyExists: the caller draws another.
	CreateDeviceCode(ctx context.Context, dc *DeviceCode) error
	// GetDeviceCodeByUserCode returns the pending, active, unexpired device
	// authorization of userCode, or ErrNotFound.
	GetDeviceCodeByUserCode(ctx context.Context, userCode string) (*DeviceCode, error)
	// ApproveDeviceCode records that the person of session allowed the
	// pending device authorization of userCode the given scopes and
	// audience. It answers ErrNotFound unless the authorization was
	// pending, active and unexpired, so of two decisions only one counts.
	ApproveDeviceCode(ctx context.Context, userCode string, scopes, audience []string, session fosite.Session) error
	// DenyDeviceCode records a refusal, with ApproveDeviceCode's rules.
	DenyDeviceCode(ctx context.Context, userCode string) error
	// PollDeviceCode returns the device authorization of signature (its
	// session decoded into session, when given) and records now as its
	// last poll, in one transaction. When the previous poll was less than
	// the interval before now, tooFast is true and the stored interval
	// grows by slowDown (RFC 8628 §3.5).
	PollDeviceCode(ctx context.Context, signature string, now time.Time, slowDown time.Duration, session fosite.Session) (dc *DeviceCode, tooFast bool, err error)
	// InvalidateDeviceCode marks an approved, active device code redeemed.
	// It answers ErrNotFound when it was not (a concurrent poll won), so
	// a device code issues tokens once.
	InvalidateDeviceCode(ctx context.Context, signature string) error
	// CountPendingDeviceCodes returns how many unexpired device
	// authorizations still wait for a decision (a metric).
	CountPendingDeviceCodes(ctx context.Context, now time.Time) (int64, error)
}

// deviceRow is the shared request row plus the device columns.
type deviceRow struct {
	Row               requestRow `gorm:"embedded"`
	UserCodeSignature string
	Status            string
	IntervalSeconds   int
	LastPolledAt      *time.Time
}

func (s *GormStore) CreateDeviceCode(ctx context.Context, dc *DeviceCode) error {
	if dc.UserCode == "" || dc.Signature == "" {
		return fmt.Errorf("storage: a device code needs a signature and a user code")
	}
	row, err := s.toRow(dc.Signature, dc.Request, fosite.TokenType("device_code"))
	if err != nil {
		return err
	}
	exp := dc.ExpiresAt.UTC()
	row.ExpiresAt = &exp
	row.Origin = originOf(ctx)
	dr := deviceRow{
		Row:               *row,
		UserCodeSignature: hashKey(dc.UserCode),
		Status:            string(DevicePending),
		IntervalSeconds:   int(dc.Interval / time.Second),
	}
	return s.write(ctx, true, func(tx *gorm.DB) error { return translate(tx.Table(tableDevice).Create(&dr).Error) })
}

func (s *GormStore) GetDeviceCodeByUserCode(ctx context.Context, userCode string) (*DeviceCode, error) {
	var row deviceRow
	err := s.reader(ctx).Table(tableDevice).
		Where("user_code_signature = ? AND status = ? AND active = ? AND expires_at > ?", hashKey(userCode), string(DevicePending), true, s.now().UTC()).
		Take(&row).Error
	if err != nil {
		return nil, translate(err)
	}
	return s.toDeviceCode(ctx, &row, nil)
}

func (s *GormStore) ApproveDeviceCode(ctx context.Context, userCode string, scopes, audience []string, session fosite.Session) error {
	data, err := encodeSession(session)
	if err != nil {
		return fmt.Errorf("storage: encode session: %w", err)
	}
	return s.decideDevice(ctx, userCode, map[string]any{
		"status":           string(DeviceApproved),
		"subject":          session.GetSubject(),
		"session_data":     string(data),
		"granted_scopes":   strings.Join(scopes, " "),
		"granted_audience": joinJSON(audience),
	})
}

// DenyDeviceCode also deactivates the code: a denied device code can never
// issue tokens, and bulk revocation has nothing left to end.
func (s *GormStore) DenyDeviceCode(ctx context.Context, userCode string) error {
	return s.decideDevice(ctx, userCode, map[string]any{"status": string(DeviceDenied), "active": false})
}

func (s *GormStore) decideDevice(ctx context.Context, userCode string, set map[string]any) error {
	return s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
		return matched(tx.Table(tableDevice).
			Where("user_code_signature = ? AND status = ? AND active = ? AND expires_at > ?", hashKey(userCode), string(DevicePending), true, s.now().UTC()).
			Updates(set))
	})
}

func (s *GormStore) PollDeviceCode(ctx context.Context, signature string, now time.Time, slowDown time.Duration, session fosite.Session) (*DeviceCode, bool, error) {
	var row deviceRow
	tooFast := false
	err := s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
		q := tx.Table(tableDevice).Where("signature = ?", signature)
		if s.dialect == "postgres" {
			// Two polls at once must not both see the old last poll.
			// (SQLite needs no lock: its transactions begin IMMEDIATE.)
			q = q.Clauses(clause.Locking{Strength: "UPDATE"})
		}
		if err := q.Take(&row).Error; err != nil {
			return translate(err)
		}
		now = now.UTC()
		interval := time.Duration(row.IntervalSeconds) * time.Second
		if row.LastPolledAt != nil && now.Sub(*row.LastPolledAt) < interval {
			tooFast = true
			row.IntervalSeconds += int(slowDown / time.Second)
		}
		row.LastPolledAt = &now
		return translate(tx.Table(tableDevice).Where("signature = ?", signature).
			Updates(map[string]any{"last_polled_at": now, "interval_seconds": row.IntervalSeconds}).Error)
	})
	if err != nil {
		return nil, false, err
	}
	dc, err := s.toDeviceCode(ctx, &row, session)
	return dc, tooFast, err
}

func (s *GormStore) InvalidateDeviceCode(ctx context.Context, signature string) error {
	return s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
		return matched(tx.Table(tableDevice).
			Where("signature = ? AND status = ? AND active = ?", signature, string(DeviceApproved), true).
			Update("active", false))
	})
}

func (s *GormStore) toDeviceCode(ctx context.Context, row *deviceRow, session fosite.Session) (*DeviceCode, error) {
	req, err := s.toRequest(ctx, &row.Row, session)
	if err != nil {
		return nil, err
	}
	dc := &DeviceCode{
		Signature:    row.Row.Signature,
		Request:      req,
		Status:       DeviceStatus(row.Status),
		Active:       row.Row.Active,
		Interval:     time.Duration(row.IntervalSeconds) * time.Second,
		LastPolledAt: row.LastPolledAt,
	}
	if row.Row.ExpiresAt != nil {
		dc.ExpiresAt = *row.Row.ExpiresAt
	}
	return dc, nil
}

// CountPendingDeviceCodes returns how many device authorizations wait for
// a person's decision and have not expired at now.
func (s *GormStore) CountPendingDeviceCodes(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := s.reader(ctx).Table(tableDevice).
		Where("status = ? AND active = ? AND expires_at > ?", string(DevicePending), true, now.UTC()).
		Count(&n).Error
	return n, translate(err)
}
