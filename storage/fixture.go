package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ory/fosite"
	"gorm.io/gorm"
)

// expirable are the tables ExpireNow looks in, with the expiry of the
// session that fosite checks for each: the token or code kept there.
var expirable = []struct {
	table  string
	expiry fosite.TokenType
}{
	{tableAccess, fosite.AccessToken},
	{tableRefresh, fosite.RefreshToken},
	{tableCode, fosite.AuthorizeCode},
	{tableDevice, fosite.TokenType("device_code")},
}

// ExpireNow makes the access token, refresh token, authorization code or
// device code stored under signature expire now: the expires_at column,
// which the device grant, the janitor and bulk queries read, and the
// expiry inside the serialized session, which fosite's validation reads.
// It is for test fixtures (latchtest.Expire, /dev/expire in dev mode);
// nothing in a real flow calls it. An unknown signature is ErrNotFound.
func (s *GormStore) ExpireNow(ctx context.Context, signature string) error {
	now := s.now().UTC()
	return s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
		for _, e := range expirable {
			var row requestRow
			err := tx.Table(e.table).Select("session_data").Where("signature = ?", signature).Take(&row).Error
			if err != nil {
				if err := translate(err); !errors.Is(err, fosite.ErrNotFound) {
					return err
				}
				continue
			}
			set := map[string]any{"expires_at": now}
			if row.SessionData != "" {
				session := s.newSession()
				if err := json.Unmarshal([]byte(row.SessionData), session); err != nil {
					return fmt.Errorf("%w: decode session of %s: %v", ErrUnavailable, e.table, err)
				}
				session.SetExpiresAt(e.expiry, now)
				data, err := encodeSession(session)
				if err != nil {
					return fmt.Errorf("storage: encode session: %w", err)
				}
				set["session_data"] = string(data)
			}
			return translate(tx.Table(e.table).Where("signature = ?", signature).Updates(set).Error)
		}
		return fosite.ErrNotFound
	})
}
