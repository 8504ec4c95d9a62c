package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Exchanged grants (RFC 8693). A token issued by a token exchange is a
// grant of its own (its own request ID, its own client), so revoking it
// never touches the grant it came from; but it came from that grant, so
// revoking the subject token's grant revokes it too. The table below is
// the closure of that relation: one row for each grant exchanged from
// another and each of that one's ancestors, so a revocation finds every
// grant derived from its grant, through chains of exchanges, with one
// indexed lookup and no recursion. A row lives as long as the longest
// lived token of its exchange; an exchange chain is at most
// MaxExchangeDepth long, which bounds the rows one exchange writes.

const tableExchanged = "exchanged_grants"

// MaxExchangeDepth is how many exchanges deep a grant may be derived from
// a grant that was not exchanged.
const MaxExchangeDepth = 8

// ErrExchangeTooDeep refuses an exchange from a grant already
// MaxExchangeDepth exchanges deep.
var ErrExchangeTooDeep = errors.New("storage: the grant is exchanged from too many others already")

// LinkExchangedGrant records requestID as exchanged from parentID, and so
// from every grant parentID was exchanged from, until expiresAt. It
// answers ErrExchangeTooDeep when parentID is already MaxExchangeDepth
// exchanges deep.
func (s *GormStore) LinkExchangedGrant(ctx context.Context, requestID, parentID string, expiresAt time.Time) error {
	exp := expiresAt.UTC()
	return s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
		var depth int64
		if err := tx.Table(tableExchanged).Where("request_id = ?", parentID).Count(&depth).Error; err != nil {
			return translate(err)
		}
		if depth >= MaxExchangeDepth {
			return ErrExchangeTooDeep
		}
		if err := tx.Exec(`INSERT INTO `+tableExchanged+` (request_id, ancestor_request_id, expires_at)
			SELECT ?, ancestor_request_id, ? FROM `+tableExchanged+` WHERE request_id = ?`, requestID, exp, parentID).Error; err != nil {
			return translate(err)
		}
		return translate(tx.Exec(`INSERT INTO `+tableExchanged+` (request_id, ancestor_request_id, expires_at) VALUES (?, ?, ?)`,
			requestID, parentID, exp).Error)
	})
}

// ExtendExchangedGrant keeps the links of requestID, an exchanged grant,
// until at least expiresAt: a refresh of an exchanged refresh token
// outlives the exchange, and its grant must stay revocable with its
// origin's as long as it lives.
func (s *GormStore) ExtendExchangedGrant(ctx context.Context, requestID string, expiresAt time.Time) error {
	exp := expiresAt.UTC()
	return s.write(ctx, false, func(tx *gorm.DB) error {
		return translate(tx.Exec(`UPDATE `+tableExchanged+` SET expires_at = ? WHERE request_id = ? AND expires_at < ?`,
			exp, requestID, exp).Error)
	})
}

// ExchangedFrom lists the grants exchanged, directly or through a chain,
// from requestID.
func (s *GormStore) ExchangedFrom(ctx context.Context, requestID string) ([]string, error) {
	var ids []string
	err := s.reader(ctx).Table(tableExchanged).Where("ancestor_request_id = ?", requestID).Order("request_id").Pluck("request_id", &ids).Error
	return ids, translate(err)
}

// grantRevocation is one table's statement of a revocation, written three
// ways for its condition on the grant (fmt verb %s):
//
//   - own: the grant itself, request_id = ?;
//   - exchanged: the grants exchanged from it, found through the
//     ancestor index of exchanged_grants;
//   - union: both at once, request_id IN (SELECT ? UNION ALL SELECT ...).
//
// PostgreSQL runs union: one round trip, and both parts looked up by
// index (an OR instead made it scan the whole table). SQLite, in process,
// has no round trips to save but pays for union in the batcher, where
// every write waits: it builds a temporary table for the IN list on every
// run, even when, as for nearly every grant, nothing was exchanged from
// it; that made the two statements of a revocation cost four times the
// plain ones. So SQLite runs own, probes the ancestor index, and runs
// exchanged only when the probe finds a row.
type grantRevocation struct{ own, exchanged, union string }

func newGrantRevocation(format string) grantRevocation {
	const derived = `SELECT request_id FROM ` + tableExchanged + ` WHERE ancestor_request_id = ?`
	return grantRevocation{
		own:       fmt.Sprintf(format, `request_id = ?`),
		exchanged: fmt.Sprintf(format, `request_id IN (`+derived+`)`),
		union:     fmt.Sprintf(format, `request_id IN (SELECT CAST(? AS VARCHAR(64)) UNION ALL `+derived+`)`),
	}
}

// The two revocations of a grant: its refresh tokens deactivated (only
// those still active: see RevokeRefreshToken), its access tokens deleted.
var (
	revokeRefresh = newGrantRevocation(`UPDATE ` + tableRefresh + ` SET active = FALSE WHERE %s AND active = TRUE`)
	revokeAccess  = newGrantRevocation(`DELETE FROM ` + tableAccess + ` WHERE %s`)
)

// anyExchangedSQL is SQLite's probe: is any grant exchanged from this one?
const anyExchangedSQL = `SELECT EXISTS (SELECT 1 FROM ` + tableExchanged + ` WHERE ancestor_request_id = ?)`

// revokeGrant runs r, in tx, for requestID and every grant exchanged from
// it, through chains (the table holds each grant's every ancestor).
func (s *GormStore) revokeGrant(tx *gorm.DB, r grantRevocation, requestID string) error {
	if s.dialect != "sqlite" {
		return s.exec(tx, r.union, requestID, requestID)
	}
	if err := s.exec(tx, r.own, requestID); err != nil {
		return err
	}
	var exchanged bool
	if err := s.queryRow(tx, anyExchangedSQL, requestID).Scan(&exchanged); err != nil || !exchanged {
		return translate(err)
	}
	return s.exec(tx, r.exchanged, requestID)
}

// revokeExchangedFrom ends, inside tx, every grant exchanged from one of
// grants, and adds them to grants: access tokens deleted, refresh tokens
// deactivated. revokeWhere calls it before it deletes the rows it
// matches, since a grant is found by its tokens.
func revokeExchangedFrom(tx *gorm.DB, grants map[string]bool) error {
	ids := make([]string, 0, len(grants))
	for id := range grants {
		ids = append(ids, id)
	}
	const chunk = 500
	for len(ids) > 0 {
		n := min(chunk, len(ids))
		var derived []string
		if err := tx.Table(tableExchanged).Where("ancestor_request_id IN ?", ids[:n]).Distinct().Pluck("request_id", &derived).Error; err != nil {
			return translate(err)
		}
		ids = ids[n:]
		if len(derived) == 0 {
			continue
		}
		for _, id := range derived {
			grants[id] = true
		}
		if err := tx.Table(tableRefresh).Where("request_id IN ? AND active = ?", derived, true).Update("active", false).Error; err != nil {
			return translate(err)
		}
		if err := tx.Exec(`DELETE FROM `+tableAccess+` WHERE request_id IN ?`, derived).Error; err != nil {
			return translate(err)
		}
	}
	return nil
}
