package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ory/fosite"
	"gorm.io/gorm"

	"github.com/latchauth/latch/clients"
)

type clientRow struct {
	ID         string `gorm:"primaryKey"`
	SecretHash string
	// RegistrationTokenHash is the SHA-256 of an RFC 7592 registration
	// access token ("" when the client was not registered dynamically).
	RegistrationTokenHash string
	// JWTSecret is a client_secret_jwt client's secret, sealed
	// (clientSecrets); "" for every other client.
	JWTSecret string `gorm:"column:jwt_secret"`
	Data      string
	// Origin is the address that registered the client (WithOrigin).
	Origin    string
	CreatedAt time.Time
	UpdatedAt time.Time
}

func (clientRow) TableName() string { return "clients" }

// clientSecrets are the secrets of client_secret_jwt clients, which the
// server must hold in clear to verify their assertions.
var clientSecrets = sealedColumn{what: "client secret", table: "clients", id: "id", value: "jwt_secret", where: "jwt_secret <> ''"}

func (s *GormStore) toClientRow(c *clients.Client) (*clientRow, error) {
	data, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("storage: encode client %s: %w", c.ID, err)
	}
	row := &clientRow{ID: c.ID, SecretHash: c.SecretHash, RegistrationTokenHash: c.RegistrationTokenHash, Data: string(data),
		CreatedAt: c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC()}
	if c.JWTSecret != "" {
		if row.JWTSecret, err = s.seal(clientSecrets, c.ID, []byte(c.JWTSecret)); err != nil {
			return nil, err
		}
	}
	return row, nil
}

func (s *GormStore) clientOf(r *clientRow) (*clients.Client, error) {
	c := new(clients.Client)
	if err := json.Unmarshal([]byte(r.Data), c); err != nil {
		return nil, fmt.Errorf("%w: decode client %s: %v", ErrUnavailable, r.ID, err)
	}
	c.ID, c.SecretHash, c.RegistrationTokenHash, c.CreatedAt, c.UpdatedAt = r.ID, r.SecretHash, r.RegistrationTokenHash, r.CreatedAt, r.UpdatedAt
	if r.JWTSecret != "" {
		secret, err := s.unseal(clientSecrets, r.ID, r.JWTSecret)
		if err != nil {
			return nil, err
		}
		c.JWTSecret = string(secret)
	}
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
	memo := memoOf(ctx)
	if memo != nil {
		memo.mu.Lock()
		c, ok := memo.clients[id]
		memo.mu.Unlock()
		if ok {
			return c, nil
		}
	}
	// Inside a transaction the row is read through it, never cached.
	_, inTx := txOf(ctx)
	now := time.Now()
	var gen uint64
	if !inTx {
		var cached *clients.Client
		var ok bool
		if cached, gen, ok = s.clients.get(id, now); ok {
			if memo != nil {
				memo.mu.Lock()
				memo.clients[id] = cached
				memo.mu.Unlock()
			}
			return cached, nil
		}
	}
	var row clientRow
	if err := s.reader(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return nil, translate(err)
	}
	c, err := s.clientOf(&row)
	if err == nil && !inTx {
		s.clients.put(id, c, gen, now)
	}
	if err == nil && memo != nil {
		memo.mu.Lock()
		memo.clients[id] = c
		memo.mu.Unlock()
	}
	return c, err
}

func (s *GormStore) CreateClient(ctx context.Context, c *clients.Client) error {
	s.stamp(c, true)
	row, err := s.toClientRow(c)
	if err != nil {
		return err
	}
	row.Origin = originOf(ctx)
	defer s.clients.invalidate()
	return s.write(ctx, true, func(tx *gorm.DB) error { return translate(tx.Create(row).Error) })
}

// UpdateClient replaces the client's fields; CreatedAt comes back as stored.
func (s *GormStore) UpdateClient(ctx context.Context, c *clients.Client) error {
	defer s.clients.invalidate()
	return s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
		var existing clientRow
		if err := tx.Select("created_at").Where("id = ?", c.ID).Take(&existing).Error; err != nil {
			return translate(err)
		}
		c.CreatedAt = existing.CreatedAt
		s.stamp(c, false)
		row, err := s.toClientRow(c)
		if err != nil {
			return err
		}
		return translate(tx.Model(&clientRow{}).Where("id = ?", c.ID).
			Updates(map[string]any{"secret_hash": row.SecretHash, "registration_token_hash": row.RegistrationTokenHash,
				"jwt_secret": row.JWTSecret, "data": row.Data, "updated_at": row.UpdatedAt}).Error)
	})
}

func (s *GormStore) UpsertClient(ctx context.Context, c *clients.Client) error {
	upsert := func() error {
		return s.tx(ctx, func(txCtx context.Context, _ *gorm.DB) error {
			err := s.UpdateClient(txCtx, c)
			if errors.Is(err, fosite.ErrNotFound) {
				return s.CreateClient(txCtx, c)
			}
			return err
		})
	}
	err := upsert()
	if _, inTx := txOf(ctx); errors.Is(err, ErrAlreadyExists) && !inTx {
		// Another process created the client between our update and our
		// insert (two instances seeding an empty PostgreSQL database at
		// once, under READ COMMITTED): now the update finds it.
		err = upsert()
	}
	return err
}

func (s *GormStore) ListClients(ctx context.Context) ([]*clients.Client, error) {
	return s.ListClientsPage(ctx, "", 0)
}

// ListClientsPage returns up to limit clients (all when limit <= 0) whose
// ID sorts after after, in ID order: keyset pagination, stable while
// clients come and go.
func (s *GormStore) ListClientsPage(ctx context.Context, after string, limit int) ([]*clients.Client, error) {
	var rows []clientRow
	q := s.reader(ctx).Order("id")
	if after != "" {
		q = q.Where("id > ?", after)
	}
	if limit > 0 {
		q = q.Limit(limit)
	}
	if err := q.Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	out := make([]*clients.Client, 0, len(rows))
	for i := range rows {
		c, err := s.clientOf(&rows[i])
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
	defer s.clients.invalidate()
	return s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
		// The client's own tokens go with it (ON DELETE CASCADE); those
		// other clients exchanged from its grants are revoked first, while
		// its grants can still be found.
		grants := map[string]bool{}
		for _, table := range []string{tableAccess, tableRefresh} {
			var ids []string
			if err := tx.Table(table).Where("client_id = ?", id).Distinct().Pluck("request_id", &ids).Error; err != nil {
				return translate(err)
			}
			for _, g := range ids {
				grants[g] = true
			}
		}
		if err := revokeExchangedFrom(tx, grants); err != nil {
			return err
		}
		return matched(tx.Where("id = ?", id).Delete(&clientRow{}))
	})
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
