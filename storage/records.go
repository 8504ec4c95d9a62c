package storage

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/latchauth/latch/clients"
)

type clientRow struct {
	ID         string `gorm:"primaryKey"`
	SecretHash string
	Data       string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

func (clientRow) TableName() string { return "clients" }

func toClientRow(c *clients.Client) (*clientRow, error) {
	data, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("storage: encode client %s: %w", c.ID, err)
	}
	return &clientRow{ID: c.ID, SecretHash: c.SecretHash, Data: string(data), CreatedAt: c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC()}, nil
}

func (r *clientRow) client() (*clients.Client, error) {
	c := new(clients.Client)
	if err := json.Unmarshal([]byte(r.Data), c); err != nil {
		return nil, fmt.Errorf("%w: decode client %s: %v", ErrUnavailable, r.ID, err)
	}
	c.ID, c.SecretHash, c.CreatedAt, c.UpdatedAt = r.ID, r.SecretHash, r.CreatedAt, r.UpdatedAt
	return c, nil
}

func (s *GormStore) stamp(c *clients.Client, created bool) {
	now := s.now().UTC().Truncate(time.Microsecond)
	if created || c.CreatedAt.IsZero() {
		c.CreatedAt = now
	}
	c.UpdatedAt = now
}

func (s *GormStore) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	var row clientRow
	if err := s.reader(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return nil, translate(err)
	}
	return row.client()
}

func (s *GormStore) CreateClient(ctx context.Context, c *clients.Client) error {
	s.stamp(c, true)
	row, err := toClientRow(c)
	if err != nil {
		return err
	}
	return translate(s.writer(ctx).Create(row).Error)
}

// UpdateClient replaces the client's fields; CreatedAt comes back as stored.
func (s *GormStore) UpdateClient(ctx context.Context, c *clients.Client) error {
	return s.inTx(ctx, func(tx *gorm.DB) error {
		var existing clientRow
		if err := tx.Select("created_at").Where("id = ?", c.ID).Take(&existing).Error; err != nil {
			return translate(err)
		}
		c.CreatedAt = existing.CreatedAt
		s.stamp(c, false)
		row, err := toClientRow(c)
		if err != nil {
			return err
		}
		return translate(tx.Model(&clientRow{}).Where("id = ?", c.ID).
			Updates(map[string]any{"secret_hash": row.SecretHash, "data": row.Data, "updated_at": row.UpdatedAt}).Error)
	})
}

func (s *GormStore) UpsertClient(ctx context.Context, c *clients.Client) error {
	return s.inTx(ctx, func(tx *gorm.DB) error {
		txCtx := context.WithValue(ctx, txKey{}, tx)
		err := s.UpdateClient(txCtx, c)
		if errors.Is(err, fosite.ErrNotFound) {
			return s.CreateClient(txCtx, c)
		}
		return err
	})
}

func (s *GormStore) ListClients(ctx context.Context) ([]*clients.Client, error) {
	var rows []clientRow
	if err := s.reader(ctx).Order("id").Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	out := make([]*clients.Client, 0, len(rows))
	for i := range rows {
		c, err := rows[i].client()
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// DeleteClient removes the client; its tokens, codes and sessions go with
// it through ON DELETE CASCADE.
func (s *GormStore) DeleteClient(ctx context.Context, id string) error {
	res := s.writer(ctx).Where("id = ?", id).Delete(&clientRow{})
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return fosite.ErrNotFound
	}
	return nil
}

// Users.

type userRow struct {
	Username      string `gorm:"primaryKey"`
	PasswordHash  string
	Email         string
	EmailVerified bool
	Name          string
	GroupsJSON    string
	ClaimsJSON    string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

func (userRow) TableName() string { return "users" }

func (s *GormStore) UpsertUser(ctx context.Context, u *User) error {
	groups, err := json.Marshal(nonNil(u.Groups))
	if err != nil {
		return err
	}
	claims := u.Claims
	if claims == nil {
		claims = map[string]any{}
	}
	claimsJSON, err := json.Marshal(claims)
	if err != nil {
		return fmt.Errorf("storage: encode claims of %s: %w", u.Username, err)
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	if u.CreatedAt.IsZero() {
		u.CreatedAt = now
	}
	u.UpdatedAt = now
	row := userRow{Username: u.Username, PasswordHash: u.PasswordHash, Email: u.Email, EmailVerified: u.EmailVerified,
		Name: u.Name, GroupsJSON: string(groups), ClaimsJSON: string(claimsJSON), CreatedAt: u.CreatedAt.UTC(), UpdatedAt: now}
	return s.inTx(ctx, func(tx *gorm.DB) error {
		err := tx.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "username"}},
			DoUpdates: clause.AssignmentColumns([]string{"password_hash", "email", "email_verified", "name", "groups_json", "claims_json", "updated_at"}),
		}).Create(&row).Error
		if err != nil {
			return translate(err)
		}
		// An existing user keeps its creation time; hand it back.
		var stored userRow
		if err := tx.Select("created_at").Where("username = ?", u.Username).Take(&stored).Error; err != nil {
			return translate(err)
		}
		u.CreatedAt = stored.CreatedAt
		return nil
	})
}

func (s *GormStore) GetUser(ctx context.Context, username string) (*User, error) {
	var row userRow
	if err := s.reader(ctx).Where("username = ?", username).Take(&row).Error; err != nil {
		return nil, translate(err)
	}
	return row.user()
}

func (r *userRow) user() (*User, error) {
	u := &User{Username: r.Username, PasswordHash: r.PasswordHash, Email: r.Email, EmailVerified: r.EmailVerified,
		Name: r.Name, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	if err := json.Unmarshal([]byte(r.GroupsJSON), &u.Groups); err != nil {
		return nil, fmt.Errorf("%w: decode groups of %s: %v", ErrUnavailable, r.Username, err)
	}
	if err := json.Unmarshal([]byte(r.ClaimsJSON), &u.Claims); err != nil {
		return nil, fmt.Errorf("%w: decode claims of %s: %v", ErrUnavailable, r.Username, err)
	}
	return u, nil
}

func (s *GormStore) ListUsers(ctx context.Context) ([]*User, error) {
	var rows []userRow
	if err := s.reader(ctx).Order("username").Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	out := make([]*User, 0, len(rows))
	for i := range rows {
		u, err := rows[i].user()
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

func (s *GormStore) DeleteUser(ctx context.Context, username string) error {
	res := s.writer(ctx).Where("username = ?", username).Delete(&userRow{})
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return fosite.ErrNotFound
	}
	return nil
}

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
	row := signingKeyRow{KID: k.KID, Algorithm: k.Algorithm, PrivateJWK: string(k.PrivateJWK), CreatedAt: k.CreatedAt.UTC(),
		RetiredAt: utcPtr(k.RetiredAt), ExpiresAt: utcPtr(k.ExpiresAt)}
	return translate(s.writer(ctx).Create(&row).Error)
}

func (s *GormStore) ListSigningKeys(ctx context.Context, now time.Time) ([]*SigningKey, error) {
	var rows []signingKeyRow
	err := s.reader(ctx).Where("expires_at IS NULL OR expires_at > ?", now.UTC()).Order("created_at DESC, kid").Find(&rows).Error
	if err != nil {
		return nil, translate(err)
	}
	out := make([]*SigningKey, 0, len(rows))
	for _, r := range rows {
		out = append(out, &SigningKey{KID: r.KID, Algorithm: r.Algorithm, PrivateJWK: []byte(r.PrivateJWK),
			CreatedAt: r.CreatedAt, RetiredAt: r.RetiredAt, ExpiresAt: r.ExpiresAt})
	}
	return out, nil
}

func (s *GormStore) RetireSigningKeys(ctx context.Context, retiredAt, expiresAt time.Time) error {
	return translate(s.writer(ctx).Model(&signingKeyRow{}).Where("retired_at IS NULL").
		Updates(map[string]any{"retired_at": retiredAt.UTC(), "expires_at": expiresAt.UTC()}).Error)
}

type settingRow struct {
	Name  string `gorm:"primaryKey"`
	Value string
}

func (settingRow) TableName() string { return "settings" }

// SystemSecret inserts candidate unless a secret is stored, then reads back
// whichever won: instances starting together agree on one secret.
func (s *GormStore) SystemSecret(ctx context.Context, candidate []byte) ([]byte, error) {
	row := settingRow{Name: "system_secret", Value: base64.RawStdEncoding.EncodeToString(candidate)}
	if err := s.writer(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error; err != nil {
		return nil, translate(err)
	}
	var stored settingRow
	if err := s.writer(ctx).Where("name = ?", "system_secret").Take(&stored).Error; err != nil {
		return nil, translate(err)
	}
	secret, err := base64.RawStdEncoding.DecodeString(stored.Value)
	if err != nil {
		return nil, fmt.Errorf("%w: decode system secret: %v", ErrUnavailable, err)
	}
	return secret, nil
}

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
	return translate(s.writer(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "issuer"}, {Name: "subject"}},
		DoUpdates: clause.AssignmentColumns([]string{"allow_any_subject", "scopes", "jwks"}),
	}).Create(&row).Error)
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
	return s.inTx(ctx, func(tx *gorm.DB) error {
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

func nonNil(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
