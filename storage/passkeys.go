package storage

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
)

// Passkeys (WebAuthn credentials) and the WebAuthn ceremonies that create
// and use them. The store keeps the credential record as the WebAuthn
// library encodes it (Credential JSON: public key, sign counter, backup
// flags); it neither parses nor checks it.

const tableCeremonies = "webauthn_ceremonies"

// ErrTooMany: an address already has as many ceremonies in flight as it
// may (CreateCeremony's limit); the caller answers 429.
var ErrTooMany = errors.New("storage: too many pending ceremonies")

// Passkey is one WebAuthn credential of a user.
type Passkey struct {
	ID         string // the credential ID, base64url
	Username   string
	Name       string
	Credential []byte // the library's credential record, JSON
	CreatedAt  time.Time
	LastUsedAt *time.Time
}

// Ceremony is a WebAuthn registration or login waiting for the
// authenticator's answer: the challenge and what it was issued for.
type Ceremony struct {
	ID         string // clear; stored hashed
	Kind       string // "register" or "login"
	Username   string // the person registering; "" for a passkey login
	AddressKey string // s.clientKey of who began it
	Data       []byte // the library's session data, JSON
	ExpiresAt  time.Time
}

// PasskeyStore keeps passkeys and ceremonies.
type PasskeyStore interface {
	CreatePasskey(ctx context.Context, p *Passkey) error
	GetPasskey(ctx context.Context, id string) (*Passkey, error)
	// ListPasskeys returns username's passkeys, oldest first.
	ListPasskeys(ctx context.Context, username string) ([]Passkey, error)
	// UsePasskey stores the credential record after a login (its new sign
	// counter and flags) and when it was used.
	UsePasskey(ctx context.Context, id string, credential []byte, at time.Time) error
	// RenamePasskey and DeletePasskey change only username's own passkey,
	// or answer ErrNotFound.
	RenamePasskey(ctx context.Context, username, id, name string) error
	DeletePasskey(ctx context.Context, username, id string) error

	// CreateCeremony stores c unless its address has limit unexpired
	// ceremonies already (ErrTooMany).
	CreateCeremony(ctx context.Context, c *Ceremony, limit int) error
	// TakeCeremony returns the unexpired ceremony of that ID and kind and
	// deletes it: of concurrent takes exactly one gets it, the others
	// ErrNotFound.
	TakeCeremony(ctx context.Context, id, kind string) (*Ceremony, error)
}

var _ PasskeyStore = (*GormStore)(nil)

type passkeyRow struct {
	ID         string `gorm:"primaryKey"`
	Username   string
	Name       string
	Credential string
	CreatedAt  time.Time
	LastUsedAt *time.Time
}

func (passkeyRow) TableName() string { return "passkeys" }

func (r *passkeyRow) passkey() Passkey {
	return Passkey{ID: r.ID, Username: r.Username, Name: r.Name, Credential: []byte(r.Credential), CreatedAt: r.CreatedAt, LastUsedAt: r.LastUsedAt}
}

type ceremonyRow struct {
	ID         string `gorm:"primaryKey"`
	Kind       string
	Username   string
	AddressKey string
	Data       string
	ExpiresAt  time.Time
}

func (ceremonyRow) TableName() string { return tableCeremonies }

func (s *GormStore) CreatePasskey(ctx context.Context, p *Passkey) error {
	row := passkeyRow{ID: p.ID, Username: p.Username, Name: p.Name, Credential: string(p.Credential), CreatedAt: s.now().UTC()}
	return s.write(ctx, true, func(tx *gorm.DB) error { return translate(tx.Create(&row).Error) })
}

func (s *GormStore) GetPasskey(ctx context.Context, id string) (*Passkey, error) {
	var row passkeyRow
	if err := s.reader(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return nil, translate(err)
	}
	p := row.passkey()
	return &p, nil
}

func (s *GormStore) ListPasskeys(ctx context.Context, username string) ([]Passkey, error) {
	var rows []passkeyRow
	if err := s.reader(ctx).Where("username = ?", username).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	out := make([]Passkey, len(rows))
	for i := range rows {
		out[i] = rows[i].passkey()
	}
	return out, nil
}

func (s *GormStore) UsePasskey(ctx context.Context, id string, credential []byte, at time.Time) error {
	at = at.UTC()
	return s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
		return matched(tx.Model(&passkeyRow{}).Where("id = ?", id).
			Updates(map[string]any{"credential": string(credential), "last_used_at": &at}))
	})
}

func (s *GormStore) RenamePasskey(ctx context.Context, username, id, name string) error {
	return s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
		return matched(tx.Model(&passkeyRow{}).Where("id = ? AND username = ?", id, username).Update("name", name))
	})
}

func (s *GormStore) DeletePasskey(ctx context.Context, username, id string) error {
	return s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
		return matched(tx.Where("id = ? AND username = ?", id, username).Delete(&passkeyRow{}))
	})
}

func (s *GormStore) CreateCeremony(ctx context.Context, c *Ceremony, limit int) error {
	row := ceremonyRow{ID: hashKey(c.ID), Kind: c.Kind, Username: c.Username, AddressKey: capString(c.AddressKey, maxAddress),
		Data: string(c.Data), ExpiresAt: c.ExpiresAt.UTC()}
	return s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
		var pending int64
		if err := tx.Model(&ceremonyRow{}).Where("address_key = ? AND expires_at > ?", row.AddressKey, s.now().UTC()).
			Count(&pending).Error; err != nil {
			return translate(err)
		}
		if pending >= int64(limit) {
			return ErrTooMany
		}
		return translate(tx.Create(&row).Error)
	})
}

func (s *GormStore) TakeCeremony(ctx context.Context, id, kind string) (*Ceremony, error) {
	var c *Ceremony
	err := s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
		var row ceremonyRow
		if err := tx.Where("id = ? AND kind = ?", hashKey(id), kind).Take(&row).Error; err != nil {
			return translate(err)
		}
		// The delete decides who took it: a concurrent take that read the
		// same row deletes nothing and loses.
		if err := matched(tx.Where("id = ?", row.ID).Delete(&ceremonyRow{})); err != nil {
			return err
		}
		if !s.now().Before(row.ExpiresAt) {
			return ErrNotFound
		}
		c = &Ceremony{ID: id, Kind: row.Kind, Username: row.Username, AddressKey: row.AddressKey, Data: []byte(row.Data), ExpiresAt: row.ExpiresAt}
		return nil
	})
	return c, err
}
