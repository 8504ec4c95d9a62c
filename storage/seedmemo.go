package storage

import (
	"context"
	"errors"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Seed memos are the keyed checks with which a restart recognises the
// plaintext secrets of config.yaml it has already hashed (server's
// seedmemo.go makes and checks them). The store only keeps them, in the
// settings table under names that begin with seedMemoPrefix; it never
// learns their key.

// seedMemoPrefix is the settings-name prefix of seed memos. A name stays
// within the column's 64 characters (the caller hashes what it names).
const seedMemoPrefix = "seed:"

// SeedMemo returns the memo stored under name, or "" when there is none.
func (s *GormStore) SeedMemo(ctx context.Context, name string) (string, error) {
	var row settingRow
	err := s.reader(ctx).Where("name = ?", seedMemoPrefix+name).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return "", nil
	}
	if err != nil {
		return "", translate(err)
	}
	return row.Value, nil
}

// SetSeedMemo stores memo under name, replacing what was there.
func (s *GormStore) SetSeedMemo(ctx context.Context, name, memo string) error {
	row := settingRow{Name: seedMemoPrefix + name, Value: memo}
	return s.write(ctx, false, func(tx *gorm.DB) error {
		return translate(tx.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "name"}},
			DoUpdates: clause.AssignmentColumns([]string{"value"}),
		}).Create(&row).Error)
	})
}
