package users

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"image/png"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"

	"github.com/latchauth/latch/storage"
)

// Second factors: TOTP (RFC 6238, the settings every authenticator app
// takes: SHA-1, 6 digits, 30 s) and recovery codes.

// ErrWrongCode: the one-time code or recovery code is wrong, was already
// used, or (TOTP) is outside the accepted window.
var ErrWrongCode = errors.New("users: wrong or used code")

const (
	totpPeriod = 30
	// totpSkew is how many time steps either side of now are accepted:
	// a phone's clock a little off, or a code typed as it changes.
	totpSkew = 1
	// RecoveryCodeCount is how many recovery codes a user gets at once.
	RecoveryCodeCount = 10
	// maxCodeLength caps what is hashed or compared.
	maxCodeLength = 64
)

var totpOpts = hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// TOTPEnrolment is a freshly generated TOTP seed, as the enrolment page
// shows it.
type TOTPEnrolment struct {
	Secret string // base32, to type into an app
	URL    string // otpauth:// URI, what the QR code holds
	// Fingerprint names this seed without revealing it: the enrolment
	// form carries it, so a code confirms only the seed the person saw.
	Fingerprint string
	// QRCode is a data: URI of a PNG of the QR code, so the page makes no
	// request to anyone to show it.
	QRCode string
}

// NewTOTP generates a seed for username at issuer (the name an app lists
// it under) and stores it as the user's enrolment in progress; the first
// correct code (ConfirmTOTP) makes it a factor.
func (a *Authenticator) NewTOTP(ctx context.Context, issuer, username string) (*TOTPEnrolment, error) {
	key, err := totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: username, Period: totpPeriod, SecretSize: 20,
		Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return nil, fmt.Errorf("users: generate TOTP seed: %w", err)
	}
	if err := a.Factors.SaveTOTPEnrolment(ctx, username, key.Secret()); err != nil {
		return nil, err
	}
	return enrolment(key)
}

// PendingTOTP returns the seed of username's enrolment in progress, to show
// it again after a wrong code; storage.ErrNotFound when there is none.
func (a *Authenticator) PendingTOTP(ctx context.Context, issuer, username string) (*TOTPEnrolment, error) {
	t, err := a.Factors.GetTOTP(ctx, username)
	if err != nil {
		return nil, err
	}
	if t.Confirmed {
		return nil, storage.ErrNotFound
	}
	seed, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(t.Secret)
	if err != nil {
		return nil, fmt.Errorf("users: TOTP seed of %s: %w", username, err)
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: username, Period: totpPeriod,
		Secret: seed, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return nil, fmt.Errorf("users: TOTP seed of %s: %w", username, err)
	}
	return enrolment(key)
}

// enrolment is what the enrolment page shows of key.
func enrolment(key *otp.Key) (*TOTPEnrolment, error) {
	img, err := key.Image(240, 240)
	if err != nil {
		return nil, fmt.Errorf("users: draw TOTP QR code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("users: encode TOTP QR code: %w", err)
	}
	return &TOTPEnrolment{Secret: key.Secret(), URL: key.URL(), Fingerprint: fingerprint(key.Secret()),
		QRCode: "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())}, nil
}

// ConfirmTOTP finishes username's enrolment of the seed with that
// fingerprint with its first code, and returns the user's new recovery
// codes, in clear, to be shown once. A seed replaced meanwhile (the
// enrolment restarted in another browser) is ErrWrongCode.
func (a *Authenticator) ConfirmTOTP(ctx context.Context, username, seedFingerprint, code, remoteAddr string, now time.Time) ([]string, error) {
	if err := a.checkTOTP(ctx, username, seedFingerprint, code, remoteAddr, now, true); err != nil {
		return nil, err
	}
	return a.NewRecoveryCodes(ctx, username)
}

// VerifySecondFactor checks code as username's second factor, under the
// same rate limit as passwords: a TOTP code (each accepted once) or, when
// it is not six digits, a recovery code (each usable once). It returns the
// RFC 8176 amr value of what was verified: "otp" for both, a recovery
// code being a one-time password printed in advance.
func (a *Authenticator) VerifySecondFactor(ctx context.Context, username, code, remoteAddr string, now time.Time) (string, error) {
	code = strings.TrimSpace(code)
	if len(code) == int(otp.DigitsSix) && strings.Trim(code, "0123456789") == "" {
		return "otp", a.checkTOTP(ctx, username, "", code, remoteAddr, now, false)
	}
	counters, err := a.admit(ctx, username, remoteAddr)
	if err != nil {
		return "", err
	}
	err = a.Factors.UseRecoveryCode(ctx, username, HashRecoveryCode(code))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return "", a.failCode(ctx, counters)
	case err != nil:
		return "", err
	}
	return "otp", nil
}

// checkTOTP accepts code if it is the code of a time step within the skew
// of now that is newer than the last accepted one, and records that step
// with a conditional update: of two concurrent uses of one code exactly
// one wins. An enrolment (confirm) must also be of the seed whose
// fingerprint the form carried.
func (a *Authenticator) checkTOTP(ctx context.Context, username, seedFingerprint, code, remoteAddr string, now time.Time, confirm bool) error {
	counters, err := a.admit(ctx, username, remoteAddr)
	if err != nil {
		return err
	}
	t, err := a.Factors.GetTOTP(ctx, username)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return a.failCode(ctx, counters)
	case err != nil:
		return err
	case t.Confirmed == confirm:
		return a.failCode(ctx, counters)
	case confirm && subtle.ConstantTimeCompare([]byte(fingerprint(t.Secret)), []byte(seedFingerprint)) != 1:
		return a.failCode(ctx, counters)
	}
	step, ok := matchStep(t.Secret, strings.TrimSpace(code), now)
	if !ok || step <= t.LastStep {
		return a.failCode(ctx, counters)
	}
	err = a.Factors.UseTOTPStep(ctx, t, step, confirm)
	if errors.Is(err, storage.ErrNotFound) {
		return a.failCode(ctx, counters) // a concurrent use won
	}
	return err
}

// matchStep returns the time step within the skew of now whose code is
// code, comparing every candidate in constant time.
func matchStep(secret, code string, now time.Time) (int64, bool) {
	if len(code) > maxCodeLength {
		return 0, false
	}
	current := now.Unix() / totpPeriod
	var found int64
	ok := false
	for step := current - totpSkew; step <= current+totpSkew; step++ {
		want, err := hotp.GenerateCodeCustom(secret, uint64(step), totpOpts)
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			found, ok = step, true
		}
	}
	return found, ok
}

// admit returns the login counters of username from addr, or a
// *RateLimitedError while they say wait. Passwords and second-factor
// codes count against the same counters: a wrong code costs what a wrong
// password does.
func (a *Authenticator) admit(ctx context.Context, username, addr string) ([]Counter, error) {
	counters := a.counters(username, addr)
	if a.Throttle != nil {
		wait, err := a.Throttle.Wait(ctx, counters...)
		if err != nil {
			return nil, err
		}
		if wait > 0 {
			return nil, &RateLimitedError{RetryAfter: wait}
		}
	}
	return counters, nil
}

// failCode counts a wrong code like a wrong password.
func (a *Authenticator) failCode(ctx context.Context, counters []Counter) error {
	if err := a.fail(ctx, counters); !errors.Is(err, ErrInvalidCredentials) {
		return err
	}
	return ErrWrongCode
}

// NewRecoveryCodes replaces username's recovery codes with ten new ones
// and returns them in clear; only their hashes are stored. Each has 80
// random bits, so an unsalted SHA-256 is enough: no guess list reaches it.
func (a *Authenticator) NewRecoveryCodes(ctx context.Context, username string) ([]string, error) {
	codes := make([]string, RecoveryCodeCount)
	hashes := make([]string, RecoveryCodeCount)
	for i := range codes {
		raw := make([]byte, 10)
		if _, err := rand.Read(raw); err != nil {
			return nil, err
		}
		s := strings.ToLower(base32.StdEncoding.EncodeToString(raw))
		codes[i] = s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16]
		hashes[i] = HashRecoveryCode(codes[i])
	}
	if err := a.Factors.ReplaceRecoveryCodes(ctx, username, hashes); err != nil {
		return nil, err
	}
	return codes, nil
}

// HashRecoveryCode is what is stored of a recovery code: case, spaces and
// dashes do not matter when it is typed back.
func HashRecoveryCode(code string) string {
	if len(code) > maxCodeLength {
		code = code[:maxCodeLength]
	}
	norm := strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' {
			return -1
		}
		return r
	}, strings.ToLower(code))
	sum := sha256.Sum256([]byte(norm))
	return hex.EncodeToString(sum[:])
}

// fingerprint is the first 128 bits of a seed's SHA-256, in hex.
func fingerprint(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:16])
}
