package storage

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/latchauth/latch/secrets"
)

// Values encrypted at rest. With Options.Cipher set, every column listed in
// sealedColumns is written sealed (secrets.Cipher) and opened on read, so
// a copy of the database holds no usable private key; without it they are
// written as they are and the file's permissions are their only guard.
// Rows written before a cipher was configured stay readable until
// SealAtRest encrypts them.

// ErrSealed: a value encrypted at rest cannot be opened with the
// configured secret (none configured, another one, or the value was
// altered). Nothing may replace it silently: a new signing key would
// quietly invalidate every token the old one signed.
//
// It is also ErrUnavailable, so a request that meets it at run time (an
// instance left running with the old secret after a rotation) is answered
// 503, like any store the server cannot use, not as a client error.
var ErrSealed error = sealedError{}

type sealedError struct{}

func (sealedError) Error() string        { return "storage: cannot decrypt a value encrypted at rest" }
func (sealedError) Is(target error) bool { return target == ErrUnavailable }

// sealedColumn is one column whose values are sealed, keyed by id.
type sealedColumn struct {
	what, table, id, value string
	// where narrows the rows, for tables that also hold values that are
	// not secret.
	where string
}

// sealedColumns is every secret Latch stores. A new secret column (second
// factor seeds, connector secrets) is one more line here, and rotation
// covers it.
var sealedColumns = []sealedColumn{signingKeys, systemSecret, totpSeeds, clientSecrets, connectorConfigs, connectorData}

const systemSecretName = "system_secret"

var (
	signingKeys  = sealedColumn{what: "signing key", table: "signing_keys", id: "kid", value: "private_jwk"}
	systemSecret = sealedColumn{what: "system secret", table: "settings", id: "name", value: "value", where: "name = '" + systemSecretName + "'"}
)

// sealAD is the associated data of a value: its table and row, so a value
// copied into another row (or another table) does not open.
func sealAD(table, id string) string { return table + "\x00" + id }

// seal is what a write stores in a sealed column.
func (s *GormStore) seal(c sealedColumn, id string, plain []byte) (string, error) {
	if s.cipher == nil {
		return string(plain), nil
	}
	v, err := s.cipher.Seal(plain, sealAD(c.table, id))
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return v, nil
}

// unseal is what a read returns from a sealed column. A plaintext value
// passes as it is: it was written before a cipher was configured.
func (s *GormStore) unseal(c sealedColumn, id, stored string) ([]byte, error) {
	keyID, sealed := secrets.Sealed(stored)
	if !sealed {
		return []byte(stored), nil
	}
	if s.cipher == nil {
		return nil, fmt.Errorf("%w: %s %s is encrypted under a system secret with key id %s, and no secrets.system is configured: "+
			"set secrets.system (or LATCH_SECRETS_SYSTEM) to the secret it was encrypted under", ErrSealed, c.what, id, keyID)
	}
	plain, err := s.cipher.Open(stored, sealAD(c.table, id))
	switch {
	case errors.Is(err, secrets.ErrWrongKey):
		return nil, fmt.Errorf("%w: %s %s is encrypted under a system secret with key id %s, but the configured secrets.system has key id %s: "+
			"configure the secret it was encrypted under, or re-encrypt with `latch secrets rotate --old`", ErrSealed, c.what, id, keyID, s.cipher.KeyID())
	case err != nil:
		return nil, fmt.Errorf("%w: %s %s: %w", ErrSealed, c.what, id, err)
	}
	return plain, nil
}

// sealedRow is one value of a sealed column.
type sealedRow struct {
	ID    string
	Value string
}

// SealAtRest brings every value of sealedColumns under the configured
// cipher and reports how many it rewrote, in one transaction: plaintext
// values (a database from before encryption) are sealed, and values sealed
// under old (nil: none) are re-encrypted, which is how the system secret
// rotates. A value it cannot open (sealed under another secret, altered,
// or sealed while no cipher is configured) is ErrSealed and nothing
// changes. Every process that opens the database calls it, so a wrong
// secret stops start-up with a clear message instead of failing the first
// token request; with nothing to rewrite it only reads.
func (s *GormStore) SealAtRest(ctx context.Context, old *secrets.Cipher) (int, error) {
	if old != nil && s.cipher == nil {
		return 0, errors.New("storage: re-encrypting needs the new secret configured")
	}
	pending, err := s.unsealedRows(s.reader(ctx), old)
	if err != nil || pending == 0 {
		return 0, err
	}
	var n int
	err = s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
		for _, c := range sealedColumns {
			// Read again under the write lock (SQLite's one writer, row
			// locks on PostgreSQL): instances starting together seal each
			// row once.
			rows, err := readSealed(tx.Clauses(clause.Locking{Strength: "UPDATE"}), c)
			if err != nil {
				return err
			}
			for _, r := range rows {
				plain, rewrite, err := s.reopen(c, r, old)
				if err != nil {
					return err
				}
				if !rewrite {
					continue
				}
				v, err := s.seal(c, r.ID, plain)
				if err != nil {
					return err
				}
				if err := tx.Table(c.table).Where(c.id+" = ?", r.ID).Update(c.value, v).Error; err != nil {
					return translate(err)
				}
				n++
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// unsealedRows counts the values SealAtRest would rewrite, and fails as it
// would on a value it cannot open.
func (s *GormStore) unsealedRows(db *gorm.DB, old *secrets.Cipher) (int, error) {
	pending := 0
	for _, c := range sealedColumns {
		rows, err := readSealed(db, c)
		if err != nil {
			return 0, err
		}
		for _, r := range rows {
			_, rewrite, err := s.reopen(c, r, old)
			if err != nil {
				return 0, err
			}
			if rewrite {
				pending++
			}
		}
	}
	return pending, nil
}

// reopen decides what becomes of one stored value: rewrite (with its
// plaintext) when it is plaintext under a cipher or sealed under old;
// left alone when it already is what the configuration asks for (checked
// to open, so an altered value is found now, not at the first token
// request).
func (s *GormStore) reopen(c sealedColumn, r sealedRow, old *secrets.Cipher) (plain []byte, rewrite bool, err error) {
	keyID, sealed := secrets.Sealed(r.Value)
	switch {
	case !sealed:
		return []byte(r.Value), s.cipher != nil, nil
	case old != nil && keyID == old.KeyID():
		plain, err := old.Open(r.Value, sealAD(c.table, r.ID))
		if err != nil {
			return nil, false, fmt.Errorf("%w: %s %s with the old secret: %w", ErrSealed, c.what, r.ID, err)
		}
		return plain, true, nil
	default:
		_, err := s.unseal(c, r.ID, r.Value)
		return nil, false, err
	}
}

func readSealed(db *gorm.DB, c sealedColumn) ([]sealedRow, error) {
	q := db.Table(c.table).Select(c.id + " AS id, " + c.value + " AS value").Order(c.id)
	if c.where != "" {
		q = q.Where(c.where)
	}
	var rows []sealedRow
	if err := q.Scan(&rows).Error; err != nil {
		return nil, translate(err)
	}
	return rows, nil
}
