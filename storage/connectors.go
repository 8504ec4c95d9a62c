package storage

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
)

// Upstream identity providers (connectors) and the links of their people
// to local users. A connector's config (YAML, as config.yaml writes it)
// holds the upstream client secret, so the whole of it is sealed at rest;
// so is a link's Data, which holds an upstream refresh or access token.

// Connector is one upstream identity provider as stored.
type Connector struct {
	ID   string
	Type string
	Name string
	// Source is "config" for one of config.yaml (upserted at every
	// start) and "api" for one added by the CLI or the admin API.
	Source    string
	Config    []byte // the config.Connector, YAML
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Link ties a person at an upstream (ConnectorID, Subject) to a local user.
type Link struct {
	ConnectorID string
	Subject     string
	Username    string
	// Data is the connector's Identity.Data of the last sign-in or
	// refresh check: what it needs to ask the upstream again.
	Data      []byte
	CreatedAt time.Time
	UpdatedAt time.Time
}

type connectorRow struct {
	ID        string `gorm:"primaryKey"`
	Type      string
	Name      string
	Source    string
	Config    string
	CreatedAt time.Time
	UpdatedAt time.Time
}

func (connectorRow) TableName() string { return "connectors" }

type linkRow struct {
	ID          string `gorm:"primaryKey"`
	ConnectorID string
	Subject     string
	Username    string
	Data        string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

func (linkRow) TableName() string { return "connector_links" }

var (
	connectorConfigs = sealedColumn{what: "connector config", table: "connectors", id: "id", value: "config"}
	connectorData    = sealedColumn{what: "connector link data", table: "connector_links", id: "id", value: "data"}
)

// linkID is a link's key: one column, so the link's sealed data is bound
// to its row (sealAD).
func linkID(connectorID, subject string) string { return hashKey(connectorID + "\x00" + subject) }

func (s *GormStore) connectorRow(c *Connector, now time.Time) (*connectorRow, error) {
	cfg, err := s.seal(connectorConfigs, c.ID, c.Config)
	if err != nil {
		return nil, err
	}
	return &connectorRow{ID: c.ID, Type: c.Type, Name: c.Name, Source: c.Source, Config: cfg, CreatedAt: now, UpdatedAt: now}, nil
}

func (s *GormStore) connector(r *connectorRow) (*Connector, error) {
	cfg, err := s.unseal(connectorConfigs, r.ID, r.Config)
	if err != nil {
		return nil, err
	}
	return &Connector{ID: r.ID, Type: r.Type, Name: r.Name, Source: r.Source, Config: cfg, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}, nil
}

// CreateConnector adds c; an existing id is ErrAlreadyExists.
func (s *GormStore) CreateConnector(ctx context.Context, c *Connector) error {
	row, err := s.connectorRow(c, s.now().UTC())
	if err != nil {
		return err
	}
	return s.write(ctx, true, func(tx *gorm.DB) error { return translate(tx.Create(row).Error) })
}

// UpsertConnector creates c or replaces the connector with its id.
func (s *GormStore) UpsertConnector(ctx context.Context, c *Connector) error {
	row, err := s.connectorRow(c, s.now().UTC())
	if err != nil {
		return err
	}
	return s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
		res := tx.Model(&connectorRow{}).Where("id = ?", row.ID).
			Updates(map[string]any{"type": row.Type, "name": row.Name, "source": row.Source, "config": row.Config, "updated_at": row.UpdatedAt})
		if res.Error != nil || res.RowsAffected > 0 {
			return translate(res.Error)
		}
		return translate(tx.Create(row).Error)
	})
}

// GetConnector returns the connector with that id, or ErrNotFound.
func (s *GormStore) GetConnector(ctx context.Context, id string) (*Connector, error) {
	var row connectorRow
	if err := s.reader(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return nil, translate(err)
	}
	return s.connector(&row)
}

// ListConnectors returns every connector, by id.
func (s *GormStore) ListConnectors(ctx context.Context) ([]*Connector, error) {
	var rows []connectorRow
	if err := s.reader(ctx).Order("id").Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	return fromRows(rows, s.connector)
}

// DeleteConnector removes the connector and its links (the local users
// stay; they can no longer sign in through it), or answers ErrNotFound.
func (s *GormStore) DeleteConnector(ctx context.Context, id string) error {
	return s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
		if err := matched(tx.Where("id = ?", id).Delete(&connectorRow{})); err != nil {
			return err
		}
		return translate(tx.Where("connector_id = ?", id).Delete(&linkRow{}).Error)
	})
}

func (s *GormStore) link(r *linkRow) (*Link, error) {
	data, err := s.unseal(connectorData, r.ID, r.Data)
	if err != nil {
		return nil, err
	}
	return &Link{ConnectorID: r.ConnectorID, Subject: r.Subject, Username: r.Username, Data: data, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}, nil
}

// GetLink returns the link of (connectorID, subject), or ErrNotFound.
func (s *GormStore) GetLink(ctx context.Context, connectorID, subject string) (*Link, error) {
	var row linkRow
	if err := s.reader(ctx).Where("id = ?", linkID(connectorID, subject)).Take(&row).Error; err != nil {
		return nil, translate(err)
	}
	return s.link(&row)
}

// GetUserLink returns username's link to connectorID, or ErrNotFound.
func (s *GormStore) GetUserLink(ctx context.Context, connectorID, username string) (*Link, error) {
	var row linkRow
	if err := s.reader(ctx).Where("connector_id = ? AND username = ?", connectorID, username).Take(&row).Error; err != nil {
		return nil, translate(err)
	}
	return s.link(&row)
}

// CreateLink links an existing user. It is ErrAlreadyExists when the
// subject is linked already, or the user is linked to another subject of
// the same connector; ErrNotFound when the user does not exist.
func (s *GormStore) CreateLink(ctx context.Context, l *Link) error {
	row, err := s.linkRow(l)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(_ context.Context, tx *gorm.DB) error { return createLink(tx, row) })
}

// CreateLinkedUser creates u and its link l in one transaction: a first
// sign-in through a connector. ErrAlreadyExists when the username is
// taken or the subject was linked meanwhile (the caller tells the two
// apart with GetLink); nothing is created then.
func (s *GormStore) CreateLinkedUser(ctx context.Context, u *User, l *Link) error {
	urow, err := s.toUserRow(u)
	if err != nil {
		return err
	}
	lrow, err := s.linkRow(l)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
		if err := tx.Create(urow).Error; err != nil {
			return translate(err)
		}
		return createLink(tx, lrow)
	})
}

func createLink(tx *gorm.DB, row *linkRow) error {
	err := translate(tx.Create(row).Error)
	if errors.Is(err, ErrNotFound) {
		return ErrNotFound // the foreign key: no such user
	}
	return err
}

func (s *GormStore) linkRow(l *Link) (*linkRow, error) {
	id := linkID(l.ConnectorID, l.Subject)
	data, err := s.seal(connectorData, id, l.Data)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	return &linkRow{ID: id, ConnectorID: l.ConnectorID, Subject: l.Subject, Username: l.Username, Data: data, CreatedAt: now, UpdatedAt: now}, nil
}

// SetLinkData stores what the connector said at a sign-in or refresh
// check, or answers ErrNotFound when the link is gone.
func (s *GormStore) SetLinkData(ctx context.Context, connectorID, subject string, data []byte) error {
	id := linkID(connectorID, subject)
	sealed, err := s.seal(connectorData, id, data)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
		return matched(tx.Model(&linkRow{}).Where("id = ?", id).Updates(map[string]any{"data": sealed, "updated_at": s.now().UTC()}))
	})
}

// ListUserLinks returns username's links, by connector.
func (s *GormStore) ListUserLinks(ctx context.Context, username string) ([]*Link, error) {
	var rows []linkRow
	if err := s.reader(ctx).Where("username = ?", username).Order("connector_id").Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	return fromRows(rows, s.link)
}

// UsersByEmail returns the users whose email is email, compared without
// case (at most two: the caller only needs to know there is not one).
func (s *GormStore) UsersByEmail(ctx context.Context, email string) ([]*User, error) {
	var rows []userRow
	if err := s.reader(ctx).Where("LOWER(email) = LOWER(?)", email).Order("username").Limit(2).Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	return fromRows(rows, (*userRow).user)
}

// fromRows turns the rows a query found into records, failing on the
// first that does not convert (a value sealed under another secret).
func fromRows[R, T any](rows []R, convert func(*R) (*T, error)) ([]*T, error) {
	out := make([]*T, 0, len(rows))
	for i := range rows {
		v, err := convert(&rows[i])
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
