package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

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

// toUserRow encodes u, stamping its times.
func (s *GormStore) toUserRow(u *User) (*userRow, error) {
	groups, err := json.Marshal(nonNil(u.Groups))
	if err != nil {
		return nil, err
	}
	claims := u.Claims
	if claims == nil {
		claims = map[string]any{}
	}
	claimsJSON, err := json.Marshal(claims)
	if err != nil {
		return nil, fmt.Errorf("storage: encode claims of %s: %w", u.Username, err)
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	if u.CreatedAt.IsZero() {
		u.CreatedAt = now
	}
	u.UpdatedAt = now
	return &userRow{Username: u.Username, PasswordHash: u.PasswordHash, Email: u.Email, EmailVerified: u.EmailVerified,
		Name: u.Name, GroupsJSON: string(groups), ClaimsJSON: string(claimsJSON), CreatedAt: u.CreatedAt.UTC(), UpdatedAt: now}, nil
}

// UpsertUser creates or replaces u. A changed password hash ends every
// login session of the user in the same transaction.
func (s *GormStore) UpsertUser(ctx context.Context, u *User) error {
	row, err := s.toUserRow(u)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
		oldHash, existed, err := passwordHashOf(tx, u.Username)
		if err != nil {
			return err
		}
		err = tx.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "username"}},
			DoUpdates: clause.AssignmentColumns([]string{"password_hash", "email", "email_verified", "name", "groups_json", "claims_json", "updated_at"}),
		}).Create(row).Error
		if err != nil {
			return translate(err)
		}
		// An existing user keeps its creation time; hand it back.
		var stored userRow
		if err := tx.Select("created_at").Where("username = ?", u.Username).Take(&stored).Error; err != nil {
			return translate(err)
		}
		u.CreatedAt = stored.CreatedAt
		if existed && oldHash != row.PasswordHash {
			// Whoever signed in with the old password is signed out,
			// whichever way the password changed (CLI, admin API, config).
			_, err = s.endSessions(tx.Where("username = ?", u.Username))
		}
		return err
	})
}

// CreateUser adds a new user; an existing username is ErrAlreadyExists.
func (s *GormStore) CreateUser(ctx context.Context, u *User) error {
	row, err := s.toUserRow(u)
	if err != nil {
		return err
	}
	return s.write(ctx, true, func(tx *gorm.DB) error { return translate(tx.Create(row).Error) })
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
	return s.ListUsersPage(ctx, "", 0)
}

// ListUsersPage returns up to limit users (all when limit <= 0) whose
// username sorts after after, in username order.
func (s *GormStore) ListUsersPage(ctx context.Context, after string, limit int) ([]*User, error) {
	var rows []userRow
	q := s.reader(ctx).Order("username")
	if after != "" {
		q = q.Where("username > ?", after)
	}
	if limit > 0 {
		q = q.Limit(limit)
	}
	if err := q.Find(&rows).Error; err != nil {
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

// DeleteUser removes the user and, in the same transaction, ends every
// grant of theirs; their login sessions and consents go by ON DELETE
// CASCADE.
func (s *GormStore) DeleteUser(ctx context.Context, username string) error {
	return s.tx(ctx, func(txCtx context.Context, tx *gorm.DB) error {
		if _, err := s.RevokeSubjectTokens(txCtx, username); err != nil {
			return err
		}
		// A deleted user's sessions end with it, and their clients are told.
		if _, err := s.endSessions(tx.Where("username = ?", username)); err != nil {
			return err
		}
		return matched(tx.Where("username = ?", username).Delete(&userRow{}))
	})
}
