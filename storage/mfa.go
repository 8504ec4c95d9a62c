package storage

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
)

// Second factors of built-in users: a TOTP seed (RFC 6238; sealed at rest
// like signing keys, sealed.go) and single-use recovery codes, stored as
// hashes only. Both go with the user (ON DELETE CASCADE).

// TOTP is a user's time-based one-time password factor. Until a first code
// confirms it, it is an enrolment in progress and does not count as a
// factor.
type TOTP struct {
	Username  string
	Secret    string // base32, as authenticator apps take it
	Confirmed bool
	// LastStep is the RFC 6238 time step of the last accepted code: a code
	// of that step or an earlier one is refused, so each code works once.
	LastStep  int64
	CreatedAt time.Time
	// stored is the seed as stored (sealed): UseTOTPStep matches it, so a
	// step is recorded only against the seed its code was checked with.
	stored string
}

type totpRow struct {
	Username  string `gorm:"primaryKey"`
	Secret    string
	Confirmed bool
	LastStep  int64
	CreatedAt time.Time
}

func (totpRow) TableName() string { return "user_totp" }

type recoveryCodeRow struct {
	Username string `gorm:"primaryKey"`
	CodeHash string `gorm:"primaryKey"`
	UsedAt   *time.Time
}

func (recoveryCodeRow) TableName() string { return "user_recovery_codes" }

var totpSeeds = sealedColumn{what: "TOTP seed", table: "user_totp", id: "username", value: "secret"}

// SaveTOTPEnrolment stores secret as username's TOTP enrolment in
// progress, replacing an earlier unconfirmed one. A confirmed TOTP is
// never replaced: that is ErrAlreadyExists (remove it first).
func (s *GormStore) SaveTOTPEnrolment(ctx context.Context, username, secret string) error {
	sealed, err := s.seal(totpSeeds, username, []byte(secret))
	if err != nil {
		return err
	}
	return s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
		var row totpRow
		err := tx.Where("username = ?", username).Take(&row).Error
		switch {
		case err == nil && row.Confirmed:
			return ErrAlreadyExists
		case err == nil:
			return translate(tx.Model(&totpRow{}).Where("username = ? AND confirmed = ?", username, false).
				Updates(map[string]any{"secret": sealed, "last_step": 0, "created_at": s.now().UTC()}).Error)
		case errors.Is(err, gorm.ErrRecordNotFound):
			return translate(tx.Create(&totpRow{Username: username, Secret: sealed, CreatedAt: s.now().UTC()}).Error)
		default:
			return translate(err)
		}
	})
}

// GetTOTP returns username's TOTP (confirmed or not), or ErrNotFound.
func (s *GormStore) GetTOTP(ctx context.Context, username string) (*TOTP, error) {
	var row totpRow
	if err := s.reader(ctx).Where("username = ?", username).Take(&row).Error; err != nil {
		return nil, translate(err)
	}
	secret, err := s.unseal(totpSeeds, row.Username, row.Secret)
	if err != nil {
		return nil, err
	}
	return &TOTP{Username: row.Username, Secret: string(secret), Confirmed: row.Confirmed, LastStep: row.LastStep,
		CreatedAt: row.CreatedAt, stored: row.Secret}, nil
}

// UseTOTPStep records that a code of time step step of t (as GetTOTP
// read it) was accepted: of any number of concurrent calls with the same
// (or an older) step exactly one succeeds, the others get ErrNotFound, as
// does a call for a seed replaced meanwhile (an enrolment restarted
// elsewhere must not be confirmed by a code of the old one). confirm
// finishes an enrolment: it matches only an unconfirmed TOTP, and a
// sign-in only a confirmed one.
func (s *GormStore) UseTOTPStep(ctx context.Context, t *TOTP, step int64, confirm bool) error {
	return s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
		return matched(tx.Model(&totpRow{}).
			Where("username = ? AND secret = ? AND last_step < ? AND confirmed = ?", t.Username, t.stored, step, !confirm).
			Updates(map[string]any{"last_step": step, "confirmed": true}))
	})
}

// ReplaceRecoveryCodes makes hashes username's recovery codes, dropping
// every earlier one, used or not.
func (s *GormStore) ReplaceRecoveryCodes(ctx context.Context, username string, hashes []string) error {
	return s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
		if err := tx.Where("username = ?", username).Delete(&recoveryCodeRow{}).Error; err != nil {
			return translate(err)
		}
		rows := make([]recoveryCodeRow, 0, len(hashes))
		for _, h := range hashes {
			rows = append(rows, recoveryCodeRow{Username: username, CodeHash: h})
		}
		if len(rows) == 0 {
			return nil
		}
		return translate(tx.Create(&rows).Error)
	})
}

// UseRecoveryCode spends the unused recovery code with that hash: of
// concurrent uses exactly one succeeds; an unknown or spent code is
// ErrNotFound.
func (s *GormStore) UseRecoveryCode(ctx context.Context, username, hash string) error {
	return s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
		return matched(tx.Model(&recoveryCodeRow{}).
			Where("username = ? AND code_hash = ? AND used_at IS NULL", username, hash).
			Update("used_at", s.now().UTC()))
	})
}

// UnusedRecoveryCodes counts username's recovery codes not yet spent.
func (s *GormStore) UnusedRecoveryCodes(ctx context.Context, username string) (int, error) {
	var n int64
	err := s.reader(ctx).Model(&recoveryCodeRow{}).Where("username = ? AND used_at IS NULL", username).Count(&n).Error
	return int(n), translate(err)
}

// DeleteTOTP removes username's TOTP and its recovery codes (the person
// turns the authenticator app off on the account page); their passkeys
// stay. ErrNotFound when the user had neither.
func (s *GormStore) DeleteTOTP(ctx context.Context, username string) error {
	return s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
		n, err := deleteTOTP(tx, username)
		if err == nil && n == 0 {
			return ErrNotFound
		}
		return err
	})
}

// DeleteSecondFactors removes every second factor of username: the TOTP,
// the recovery codes and the passkeys (an admin's reset, for a lost
// authenticator: the next sign-in asks for the password alone).
// ErrNotFound when the user had none.
func (s *GormStore) DeleteSecondFactors(ctx context.Context, username string) error {
	return s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
		n, err := deleteTOTP(tx, username)
		if err != nil {
			return err
		}
		keys := tx.Where("username = ?", username).Delete(&passkeyRow{})
		if keys.Error != nil {
			return translate(keys.Error)
		}
		if n+keys.RowsAffected == 0 {
			return ErrNotFound
		}
		return nil
	})
}

// deleteTOTP deletes username's TOTP and recovery codes in tx and counts
// the rows it deleted.
func deleteTOTP(tx *gorm.DB, username string) (int64, error) {
	totp := tx.Where("username = ?", username).Delete(&totpRow{})
	if totp.Error != nil {
		return 0, translate(totp.Error)
	}
	codes := tx.Where("username = ?", username).Delete(&recoveryCodeRow{})
	if codes.Error != nil {
		return 0, translate(codes.Error)
	}
	return totp.RowsAffected + codes.RowsAffected, nil
}

// Factor kinds in SecondFactors.
const (
	FactorTOTP    = "totp"    // a confirmed TOTP
	FactorPasskey = "passkey" // at least one passkey
)

// SecondFactors returns, for each of usernames that has one, the kinds of
// second factor it has (FactorTOTP, FactorPasskey, in that order), for
// the user list and for the sign-in, which asks a person with any of
// them for one.
func (s *GormStore) SecondFactors(ctx context.Context, usernames []string) (map[string][]string, error) {
	out := map[string][]string{}
	if len(usernames) == 0 {
		return out, nil
	}
	var totps, passkeys []string
	err := s.reader(ctx).Model(&totpRow{}).Where("confirmed = ? AND username IN ?", true, usernames).Pluck("username", &totps).Error
	if err != nil {
		return nil, translate(err)
	}
	err = s.reader(ctx).Model(&passkeyRow{}).Distinct("username").Where("username IN ?", usernames).Pluck("username", &passkeys).Error
	if err != nil {
		return nil, translate(err)
	}
	for _, n := range totps {
		out[n] = append(out[n], FactorTOTP)
	}
	for _, n := range passkeys {
		out[n] = append(out[n], FactorPasskey)
	}
	return out, nil
}
