package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Trusted JWT bearer issuers (RFC 7523).

type trustedIssuerRow struct {
	Issuer          string `gorm:"primaryKey"`
	Subject         string `gorm:"primaryKey"`
	AllowAnySubject bool
	Scopes          string
	JWKS            string `gorm:"column:jwks"`
}

func (trustedIssuerRow) TableName() string { return "trusted_issuers" }

func (s *GormStore) UpsertTrustedIssuer(ctx context.Context, ti TrustedIssuer) error {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(ti.JWKS, &set); err != nil {
		return fmt.Errorf("storage: trusted issuer %s: jwks: %w", ti.Issuer, err)
	}
	subject := ti.Subject
	if ti.AllowAnySubject {
		subject = ""
	}
	row := trustedIssuerRow{Issuer: ti.Issuer, Subject: subject, AllowAnySubject: ti.AllowAnySubject,
		Scopes: strings.Join(ti.Scopes, " "), JWKS: string(ti.JWKS)}
	return s.write(ctx, true, func(tx *gorm.DB) error {
		return translate(tx.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "issuer"}, {Name: "subject"}},
			DoUpdates: clause.AssignmentColumns([]string{"allow_any_subject", "scopes", "jwks"}),
		}).Create(&row).Error)
	})
}

// trustedIssuer finds the row for issuer and subject: an exact subject
// first, then the issuer's allow-any-subject row.
func (s *GormStore) trustedIssuer(ctx context.Context, issuer, subject string) (*trustedIssuerRow, *jose.JSONWebKeySet, error) {
	var rows []trustedIssuerRow
	err := s.reader(ctx).Where("issuer = ? AND (subject = ? OR allow_any_subject = ?)", issuer, subject, true).
		Order("allow_any_subject").Limit(1).Find(&rows).Error
	if err != nil {
		return nil, nil, translate(err)
	}
	if len(rows) == 0 {
		return nil, nil, fosite.ErrNotFound
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(rows[0].JWKS), &set); err != nil {
		return nil, nil, fmt.Errorf("%w: decode jwks of %s: %v", ErrUnavailable, issuer, err)
	}
	return &rows[0], &set, nil
}

func (s *GormStore) GetPublicKey(ctx context.Context, issuer, subject, keyID string) (*jose.JSONWebKey, error) {
	_, set, err := s.trustedIssuer(ctx, issuer, subject)
	if err != nil {
		return nil, err
	}
	keys := set.Key(keyID)
	if len(keys) == 0 {
		return nil, fosite.ErrNotFound
	}
	return &keys[0], nil
}

func (s *GormStore) GetPublicKeys(ctx context.Context, issuer, subject string) (*jose.JSONWebKeySet, error) {
	_, set, err := s.trustedIssuer(ctx, issuer, subject)
	return set, err
}

func (s *GormStore) GetPublicKeyScopes(ctx context.Context, issuer, subject, keyID string) ([]string, error) {
	row, set, err := s.trustedIssuer(ctx, issuer, subject)
	if err != nil {
		return nil, err
	}
	if len(set.Key(keyID)) == 0 {
		return nil, fosite.ErrNotFound
	}
	return splitScopes(row.Scopes), nil
}

// Used JWT IDs: client assertions (RFC 7523 §3) and JWT bearer grants share
// one table; a JTI is only kept until its token would have expired anyway.

type usedJTI struct {
	JTIHash   string `gorm:"primaryKey;column:jti_hash"`
	ExpiresAt time.Time
}

func (usedJTI) TableName() string { return "used_jtis" }

func (s *GormStore) ClientAssertionJWTValid(ctx context.Context, jti string) error {
	var n int64
	err := s.reader(ctx).Model(&usedJTI{}).Where("jti_hash = ? AND expires_at > ?", hashKey(jti), s.now().UTC()).Count(&n).Error
	if err != nil {
		return translate(err)
	}
	if n > 0 {
		return fosite.ErrJTIKnown
	}
	return nil
}

func (s *GormStore) SetClientAssertionJWT(ctx context.Context, jti string, exp time.Time) error {
	now := s.now().UTC()
	return s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
		if err := tx.Where("expires_at <= ?", now).Delete(&usedJTI{}).Error; err != nil {
			return translate(err)
		}
		err := tx.Create(&usedJTI{JTIHash: hashKey(jti), ExpiresAt: exp.UTC()}).Error
		if errors.Is(err, gorm.ErrDuplicatedKey) {
			return fosite.ErrJTIKnown
		}
		return translate(err)
	})
}

func (s *GormStore) IsJWTUsed(ctx context.Context, jti string) (bool, error) {
	err := s.ClientAssertionJWTValid(ctx, jti)
	if errors.Is(err, fosite.ErrJTIKnown) {
		return true, nil
	}
	return false, err
}

func (s *GormStore) MarkJWTUsedForTime(ctx context.Context, jti string, exp time.Time) error {
	return s.SetClientAssertionJWT(ctx, jti, exp)
}
