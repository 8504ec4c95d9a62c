package storage

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/ory/fosite"
	"gorm.io/gorm"
)

func (s *GormStore) createRequest(ctx context.Context, table, signature string, r fosite.Requester, expiry fosite.TokenType, accessSignature string) error {
	row, err := s.toRow(signature, r, expiry)
	if err != nil {
		return err
	}
	row.AccessSignature = accessSignature
	row.Origin = originOf(ctx)
	stmt := insertRequestSQL(table)
	return s.write(ctx, true, func(tx *gorm.DB) error {
		return s.exec(tx, stmt, row.Signature, row.RequestID, row.RequestedAt, row.ClientID, row.Subject,
			row.RequestedScopes, row.GrantedScopes, row.RequestedAudience, row.GrantedAudience, row.Form,
			row.SessionData, row.Extra, row.AccessSignature, row.Active, row.ExpiresAt, row.RotatedAt, row.Origin)
	})
}

// insertRequestSQL is the INSERT of a request row into table: plain SQL,
// which on the hot path costs a fraction of GORM's Create.
func insertRequestSQL(table string) string {
	return `INSERT INTO ` + table + ` (signature, request_id, requested_at, client_id, subject, requested_scopes,
		granted_scopes, requested_audience, granted_audience, form, session_data, extra, access_signature, active,
		expires_at, rotated_at, origin) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
}

// getRow reads the request row of signature in table: plain SQL scanned
// into the row, which on the hot path (every introspection, revocation and
// refresh) costs a fraction of GORM's reflective Take.
func (s *GormStore) getRow(ctx context.Context, table, signature string) (*requestRow, error) {
	var row requestRow
	var expires, rotated sql.NullTime
	rows, err := s.query(ctx, `SELECT signature, request_id, requested_at, client_id, subject, requested_scopes,
		granted_scopes, requested_audience, granted_audience, form, session_data, extra, access_signature, active,
		expires_at, rotated_at FROM `+table+` WHERE signature = ? LIMIT 1`, signature)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, translate(err)
		}
		return nil, fosite.ErrNotFound
	}
	if err := rows.Scan(&row.Signature, &row.RequestID, &row.RequestedAt, &row.ClientID, &row.Subject,
		&row.RequestedScopes, &row.GrantedScopes, &row.RequestedAudience, &row.GrantedAudience, &row.Form,
		&row.SessionData, &row.Extra, &row.AccessSignature, &row.Active, &expires, &rotated); err != nil {
		return nil, translate(err)
	}
	if expires.Valid {
		row.ExpiresAt = &expires.Time
	}
	if rotated.Valid {
		row.RotatedAt = &rotated.Time
	}
	return &row, nil
}

func (s *GormStore) getRequest(ctx context.Context, table, signature string, session fosite.Session) (*fosite.Request, *requestRow, error) {
	row, err := s.getRow(ctx, table, signature)
	if err != nil {
		return nil, nil, err
	}
	req, err := s.toRequest(ctx, row, session)
	if err != nil {
		return nil, nil, err
	}
	return req, row, nil
}

// deleteOnce deletes the row of signature in table and answers
// ErrNotFound when there was none: the way to spend a single-use row, of
// which concurrent deletes change it once.
func (s *GormStore) deleteOnce(ctx context.Context, table, signature string) error {
	return s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
		return matched(tx.Exec(`DELETE FROM `+table+` WHERE signature = ?`, signature))
	})
}

func (s *GormStore) deleteRequest(ctx context.Context, table, signature string) error {
	return s.write(ctx, false, func(tx *gorm.DB) error {
		return translate(tx.Exec(`DELETE FROM `+table+` WHERE signature = ?`, signature).Error)
	})
}

// Access tokens.

func (s *GormStore) CreateAccessTokenSession(ctx context.Context, signature string, r fosite.Requester) error {
	return s.createRequest(ctx, tableAccess, signature, r, fosite.AccessToken, "")
}

func (s *GormStore) GetAccessTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	req, _, err := s.getRequest(ctx, tableAccess, signature, session)
	if err != nil {
		return nil, err
	}
	return req, nil
}

func (s *GormStore) DeleteAccessTokenSession(ctx context.Context, signature string) error {
	return s.deleteRequest(ctx, tableAccess, signature)
}

// Refresh tokens. A refresh row is never deleted by rotation or revocation,
// only marked: reading it back with its request is what lets fosite tell
// reuse of a rotated token from an unknown one, and the token endpoint
// tell a used token from a revoked one. Rotation stamps rotated_at (and,
// without a grace period, deactivates the row); revocation only
// deactivates, so an inactive row never rotated was revoked.

// ErrRevoked is the answer for a refresh token that was revoked (at the
// revocation endpoint, by an administrator, or with its grant when a
// reuse was detected) rather than used. It is a fosite.ErrInactiveToken,
// so fosite's refresh flow treats it as it treats a used token; the token
// endpoint tells the client which of the two it was.
var ErrRevoked = fmt.Errorf("storage: the refresh token was revoked: %w", fosite.ErrInactiveToken)

func (s *GormStore) CreateRefreshTokenSession(ctx context.Context, signature, accessSignature string, r fosite.Requester) error {
	return s.createRequest(ctx, tableRefresh, signature, r, fosite.RefreshToken, accessSignature)
}

func (s *GormStore) GetRefreshTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	req, row, err := s.getRequest(ctx, tableRefresh, signature, session)
	if err != nil {
		return nil, err
	}
	if err := s.refreshRefusal(row.Active, row.RotatedAt, s.now()); err != nil {
		return req, err
	}
	return req, nil
}

// refreshRefusal says why a refresh row may not be used at now, or nil
// when it may: ErrRevoked for a row deactivated without being rotated,
// fosite.ErrInactiveToken for one rotated longer than the grace period
// ago.
func (s *GormStore) refreshRefusal(active bool, rotatedAt *time.Time, now time.Time) error {
	switch {
	case !active && rotatedAt == nil:
		return ErrRevoked
	case !active, rotatedAt != nil && !now.Before(rotatedAt.Add(s.grace)):
		return fosite.ErrInactiveToken
	}
	return nil
}

func (s *GormStore) DeleteRefreshTokenSession(ctx context.Context, signature string) error {
	return s.deleteRequest(ctx, tableRefresh, signature)
}

// RotateRefreshToken retires the refresh token just used and the access
// tokens it stands for, with one conditional update: of concurrent
// refreshes with one token only the first changes the row, and every
// other gets fosite.ErrInactiveToken (or ErrRevoked), so a refresh token
// is spent once. On PostgreSQL a second refresh waits for the first one's
// row lock and then finds the token rotated; on SQLite writers take
// turns.
//
// With a grace period the rotated token works on until the period ends:
// the update matches it while rotated_at is that recent, keeps the first
// rotation's time, and deletes only the access token issued with it, since
// a concurrent refresh inside the period must not delete the access token
// another refresh has just handed out. Without one every access token of
// the grant goes.
func (s *GormStore) RotateRefreshToken(ctx context.Context, requestID, signature string) error {
	now := s.now().UTC()
	return s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
		res := tx.Exec(`UPDATE `+tableRefresh+` SET rotated_at = COALESCE(rotated_at, ?), active = ?
			WHERE signature = ? AND request_id = ? AND active = ? AND (rotated_at IS NULL OR rotated_at > ?)`,
			now, s.grace > 0, signature, requestID, true, now.Add(-s.grace))
		if res.Error != nil {
			return translate(res.Error)
		}
		if res.RowsAffected == 0 {
			return s.rotationRefusal(tx, requestID, signature, now)
		}
		if s.grace > 0 {
			return translate(tx.Exec(`DELETE FROM `+tableAccess+` WHERE signature =
				(SELECT access_signature FROM `+tableRefresh+` WHERE signature = ?)`, signature).Error)
		}
		return translate(tx.Exec(`DELETE FROM `+tableAccess+` WHERE request_id = ?`, requestID).Error)
	})
}

// rotationRefusal says why the rotation of signature changed nothing.
func (s *GormStore) rotationRefusal(tx *gorm.DB, requestID, signature string, now time.Time) error {
	var row requestRow
	err := tx.Table(tableRefresh).Select("active", "rotated_at").
		Where("signature = ? AND request_id = ?", signature, requestID).Take(&row).Error
	if err != nil {
		return translate(err)
	}
	if err := s.refreshRefusal(row.Active, row.RotatedAt, now); err != nil {
		return err
	}
	// The row and the update disagree only at the very end of the grace
	// period (the database keeps times less precisely than Go): it ended.
	return fosite.ErrInactiveToken
}

// RevokeRefreshToken deactivates every refresh token of the grant, the
// whole rotation chain (all its tokens share the request ID), and of every
// grant exchanged from it (exchange.go). Only rows
// still active are touched: concurrent uses of one leaked token each
// revoke the grant, and on PostgreSQL revocations that locked the same
// rows in different orders deadlocked; the chain's inactive tokens need
// no lock.
func (s *GormStore) RevokeRefreshToken(ctx context.Context, requestID string) error {
	return s.write(ctx, false, func(tx *gorm.DB) error {
		return s.revokeGrant(tx, revokeRefresh, requestID)
	})
}

// RevokeAccessToken deletes every access token of the grant and of every
// grant exchanged from it.
func (s *GormStore) RevokeAccessToken(ctx context.Context, requestID string) error {
	return s.write(ctx, false, func(tx *gorm.DB) error {
		return s.revokeGrant(tx, revokeAccess, requestID)
	})
}

func (s *GormStore) RevokeClientTokens(ctx context.Context, clientID string) (int64, error) {
	return s.revokeWhere(ctx, "client_id = ?", clientID)
}

func (s *GormStore) RevokeSubjectTokens(ctx context.Context, subject string) (int64, error) {
	return s.revokeWhere(ctx, "subject = ?", subject)
}

// revokeWhere ends every grant matching cond, in one transaction: refresh
// tokens deactivated, access tokens deleted, and unused authorization
// codes invalidated (so exchanging one later also revokes what it would
// have issued), and so are device codes not yet redeemed (a device then
// gets invalid_grant). Tokens issued from a device code are ordinary
// access and refresh rows; so are those of a token exchange, and every
// grant exchanged from one of these grants ends too. It returns how many
// grants (request IDs) it ended.
func (s *GormStore) revokeWhere(ctx context.Context, cond string, args ...any) (int64, error) {
	grants := map[string]bool{}
	err := s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
		for _, table := range []string{tableRefresh, tableCode, tableDevice, tableAccess} {
			q := tx.Table(table).Where(cond, args...)
			if table != tableAccess {
				q = q.Where("active = ?", true)
			}
			var ids []string
			if err := q.Distinct().Pluck("request_id", &ids).Error; err != nil {
				return translate(err)
			}
			for _, id := range ids {
				grants[id] = true
			}
		}
		if err := revokeExchangedFrom(tx, grants); err != nil {
			return err
		}
		for _, table := range []string{tableRefresh, tableCode, tableDevice} {
			if err := tx.Table(table).Where(cond, args...).Where("active = ?", true).Update("active", false).Error; err != nil {
				return translate(err)
			}
		}
		return translate(tx.Table(tableAccess).Where(cond, args...).Delete(&requestRow{}).Error)
	})
	return int64(len(grants)), err
}

// Authorization codes.

func (s *GormStore) CreateAuthorizeCodeSession(ctx context.Context, signature string, r fosite.Requester) error {
	return s.createRequest(ctx, tableCode, signature, r, fosite.AuthorizeCode, "")
}

func (s *GormStore) GetAuthorizeCodeSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	req, row, err := s.getRequest(ctx, tableCode, signature, session)
	if err != nil {
		return nil, err
	}
	if !row.Active {
		return req, fosite.ErrInvalidatedAuthorizeCode
	}
	return req, nil
}

// InvalidateAuthorizeCodeSession marks the code used. The update is
// conditional on the code being unused, so of concurrent exchanges of one
// code exactly one changes the row (RFC 6749 §4.1.2: a code is used at
// most once); every other gets fosite.ErrInvalidatedAuthorizeCode, and
// ErrNotFound means there is no such code. On PostgreSQL a second
// exchange waits for the first one's row lock and then finds the code
// used; on SQLite writers take turns.
//
// The code's PKCE session stays until it expires with the code: a
// concurrent exchange that already passed the code check must still
// find it, and so reach this update and be told the code was used,
// rather than miss the PKCE session and never count as a reuse.
func (s *GormStore) InvalidateAuthorizeCodeSession(ctx context.Context, signature string) error {
	return s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
		res := tx.Exec(`UPDATE `+tableCode+` SET active = ? WHERE signature = ? AND active = ?`, false, signature, true)
		if res.Error != nil {
			return translate(res.Error)
		}
		if res.RowsAffected == 1 {
			return nil
		}
		var n int64
		if err := tx.Table(tableCode).Where("signature = ?", signature).Count(&n).Error; err != nil {
			return translate(err)
		}
		if n == 0 {
			return fosite.ErrNotFound
		}
		return fosite.ErrInvalidatedAuthorizeCode
	})
}

// OpenID Connect sessions, keyed by the authorization code fosite hands over
// in clear: stored under its SHA-256.

func (s *GormStore) CreateOpenIDConnectSession(ctx context.Context, code string, r fosite.Requester) error {
	return s.createRequest(ctx, tableOIDC, hashKey(code), r, fosite.AuthorizeCode, "")
}

func (s *GormStore) GetOpenIDConnectSession(ctx context.Context, code string, r fosite.Requester) (fosite.Requester, error) {
	var session fosite.Session
	if r != nil {
		session = r.GetSession()
	}
	req, _, err := s.getRequest(ctx, tableOIDC, hashKey(code), session)
	if err != nil {
		return nil, err
	}
	return req, nil
}

func (s *GormStore) DeleteOpenIDConnectSession(ctx context.Context, code string) error {
	return s.deleteRequest(ctx, tableOIDC, hashKey(code))
}

// PKCE sessions.

func (s *GormStore) CreatePKCERequestSession(ctx context.Context, signature string, r fosite.Requester) error {
	return s.createRequest(ctx, tablePKCE, signature, r, fosite.AuthorizeCode, "")
}

func (s *GormStore) GetPKCERequestSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	req, _, err := s.getRequest(ctx, tablePKCE, signature, session)
	if err != nil {
		return nil, err
	}
	return req, nil
}

// DeletePKCERequestSession does nothing: the PKCE session goes when it
// expires with its code (the janitor). fosite deletes it while checking
// the code_verifier, before the code exchange's transaction begins;
// deleted then, a code whose exchange failed afterwards (the database was
// unavailable: 503, retry) could never be exchanged again, and the person
// would have to sign in anew. Kept, a wrong code_verifier leaves the code
// usable with the right one, which RFC 7636 allows: the verifier has at
// least 256 bits of entropy. A used code is refused before its PKCE
// session is looked at (InvalidateAuthorizeCodeSession).
func (s *GormStore) DeletePKCERequestSession(ctx context.Context, signature string) error {
	return nil
}

// Pushed authorization requests, keyed by the SHA-256 of their request_uri.

func (s *GormStore) CreatePARSession(ctx context.Context, requestURI string, r fosite.AuthorizeRequester) error {
	return s.createRequest(ctx, tablePAR, hashKey(requestURI), r, fosite.PushedAuthorizeRequestContext, "")
}

func (s *GormStore) GetPARSession(ctx context.Context, requestURI string) (fosite.AuthorizeRequester, error) {
	row, err := s.getRow(ctx, tablePAR, hashKey(requestURI))
	if err != nil {
		return nil, err
	}
	return s.toAuthorizeRequest(ctx, row, nil)
}

// DeletePARSession spends a pushed request. It answers ErrNotFound when
// there was none, so that of concurrent uses of one request_uri exactly
// one goes on (RFC 9126 §4: a request_uri is used once).
func (s *GormStore) DeletePARSession(ctx context.Context, requestURI string) error {
	return s.deleteOnce(ctx, tablePAR, hashKey(requestURI))
}

// DefaultCleanupBatch is how many rows one clean-up transaction deletes at
// most: small enough that a writer queued behind it waits a few
// milliseconds, large enough that a big backlog goes in few round trips.
const DefaultCleanupBatch = 500

// cleanupTable is one table the clean-up visits: its key column and the
// condition that makes a row garbage.
type cleanupTable struct {
	name, key, expired string
}

// cleanupTables are the tables with rows that expire. Revoked access
// tokens are deleted when revoked; revoked refresh tokens and used
// authorization codes stay (inactive) until they expire, because reuse
// detection needs them, and go then.
func cleanupTables() []cleanupTable {
	var ts []cleanupTable
	// tableDevice is not in requestTables: migration 2 alters every table
	// listed there, and the device table comes with migration 4.
	for _, t := range append(requestTables[:len(requestTables):len(requestTables)], tableDevice) {
		ts = append(ts, cleanupTable{t, "signature", "expires_at IS NOT NULL AND expires_at < ?"})
	}
	return append(ts,
		cleanupTable{"used_jtis", "jti_hash", "expires_at < ?"},
		cleanupTable{tableExchanged, "request_id", "expires_at < ?"},
		cleanupTable{"login_sessions", "id", "expires_at < ?"},
		cleanupTable{tableThrottle, "counter_key", "expires_at < ?"},
		cleanupTable{tableCeremonies, "id", "expires_at < ?"},
		cleanupTable{"session_clients", "session_id", "expires_at < ?"},
		cleanupTable{"logout_deliveries", "id", "expires_at < ?"},
	)
}

// DeleteExpired removes every request row, device code, used JTI and login
// session that expired before now, in batches of DefaultCleanupBatch.
func (s *GormStore) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	return s.DeleteExpiredInBatches(ctx, now, DefaultCleanupBatch, nil)
}

// DeleteExpiredInBatches is DeleteExpired with the batch size chosen
// (<= 0: DefaultCleanupBatch). Each batch is one short transaction of its
// own, so writers interleave with a long clean-up instead of waiting for
// it. deleted, when not nil, is called after every batch that removed
// rows. On error the batches already committed stay deleted and their
// count is returned with the error.
func (s *GormStore) DeleteExpiredInBatches(ctx context.Context, now time.Time, batch int, deleted func(table string, n int64)) (int64, error) {
	if batch <= 0 {
		batch = DefaultCleanupBatch
	}
	var total int64
	for _, t := range cleanupTables() {
		// DELETE ... LIMIT is not portable; a keyed sub-select is, on
		// SQLite and PostgreSQL alike, and uses the expires_at index.
		stmt := `DELETE FROM ` + t.name + ` WHERE ` + t.key + ` IN (SELECT ` + t.key + ` FROM ` + t.name +
			` WHERE ` + t.expired + ` LIMIT ?)`
		for {
			if err := ctx.Err(); err != nil {
				return total, err
			}
			var n int64
			err := s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
				res := tx.Exec(stmt, now.UTC(), batch)
				n = res.RowsAffected
				return translate(res.Error)
			})
			if err != nil {
				return total, fmt.Errorf("delete expired %s: %w", t.name, err)
			}
			total += n
			if n > 0 && deleted != nil {
				deleted(t.name, n)
			}
			if n < int64(batch) {
				break
			}
		}
	}
	return total, nil
}
