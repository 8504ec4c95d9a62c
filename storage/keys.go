package storage

import (
	"context"
	"encoding/base64"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Signing keys and the system secret.

type signingKeyRow struct {
	KID        string `gorm:"primaryKey;column:kid"`
	Algorithm  string
	PrivateJWK string `gorm:"column:private_jwk"`
	CreatedAt  time.Time
	RetiredAt  *time.Time
	ExpiresAt  *time.Time
}

func (signingKeyRow) TableName() string { return "signing_keys" }

func (s *GormStore) CreateSigningKey(ctx context.Context, k *SigningKey) error {
	if k.CreatedAt.IsZero() {
		k.CreatedAt = s.now().UTC().Truncate(time.Microsecond)
	}
	private, err := s.seal(signingKeys, k.KID, k.PrivateJWK)
	if err != nil {
		return err
	}
	row := signingKeyRow{KID: k.KID, Algorithm: k.Algorithm, PrivateJWK: private, CreatedAt: k.CreatedAt.UTC(),
		RetiredAt: utcPtr(k.RetiredAt), ExpiresAt: utcPtr(k.ExpiresAt)}
	return s.write(ctx, true, func(tx *gorm.DB) error { return translate(tx.Create(&row).Error) })
}

func (s *GormStore) ListSigningKeys(ctx context.Context, now time.Time) ([]*SigningKey, error) {
	var rows []signingKeyRow
	err := s.reader(ctx).Where("expires_at IS NULL OR expires_at > ?", now.UTC()).Order("created_at DESC, kid").Find(&rows).Error
	if err != nil {
		return nil, translate(err)
	}
	out := make([]*SigningKey, 0, len(rows))
	for _, r := range rows {
		private, err := s.unseal(signingKeys, r.KID, r.PrivateJWK)
		if err != nil {
			return nil, err
		}
		out = append(out, &SigningKey{KID: r.KID, Algorithm: r.Algorithm, PrivateJWK: private,
			CreatedAt: r.CreatedAt, RetiredAt: r.RetiredAt, ExpiresAt: r.ExpiresAt})
	}
	return out, nil
}

func (s *GormStore) RetireSigningKeys(ctx context.Context, retiredAt, expiresAt time.Time) error {
	return s.write(ctx, false, func(tx *gorm.DB) error {
		return translate(tx.Model(&signingKeyRow{}).Where("retired_at IS NULL").
			Updates(map[string]any{"retired_at": retiredAt.UTC(), "expires_at": expiresAt.UTC()}).Error)
	})
}

type settingRow struct {
	Name  string `gorm:"primaryKey"`
	Value string
}

func (settingRow) TableName() string { return "settings" }

// SystemSecret inserts candidate unless a secret is stored, then reads back
// whichever won: instances starting together agree on one secret. It is
// sealed like the signing keys when a cipher is configured.
func (s *GormStore) SystemSecret(ctx context.Context, candidate []byte) ([]byte, error) {
	value, err := s.seal(systemSecret, systemSecretName, []byte(base64.RawStdEncoding.EncodeToString(candidate)))
	if err != nil {
		return nil, err
	}
	row := settingRow{Name: systemSecretName, Value: value}
	var stored settingRow
	err = s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
		if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error; err != nil {
			return translate(err)
		}
		return translate(tx.Where("name = ?", systemSecretName).Take(&stored).Error)
	})
	if err != nil {
		return nil, err
	}
	encoded, err := s.unseal(systemSecret, systemSecretName, stored.Value)
	if err != nil {
		return nil, err
	}
	secret, err := base64.RawStdEncoding.DecodeString(string(encoded))
	if err != nil {
		return nil, fmt.Errorf("%w: decode system secret: %v", ErrUnavailable, err)
	}
	return secret, nil
}
