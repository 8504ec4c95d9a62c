package storage_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/storage"
)

const totpSeed = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

// TestStolenDatabaseHoldsNoTOTPSeed: a TOTP seed is sealed like a signing
// key, reads back, and rotation of the system secret covers it.
func TestStolenDatabaseHoldsNoTOTPSeed(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, db database) {
		ctx := context.Background()
		s := db.open(t, newCipher(t, secretA))
		require.NoError(t, s.CreateUser(ctx, &storage.User{Username: "alice"}))
		require.NoError(t, s.SaveTOTPEnrolment(ctx, "alice", totpSeed))

		stolen := db.column(t, "SELECT secret FROM user_totp WHERE username = 'alice'")
		require.NotContains(t, stolen, totpSeed)
		require.True(t, strings.HasPrefix(stolen, "enc:v1:"), "stored %q", stolen)
		got, err := s.GetTOTP(ctx, "alice")
		require.NoError(t, err)
		require.Equal(t, totpSeed, got.Secret)

		rotated := db.open(t, newCipher(t, secretB))
		_, err = rotated.SealAtRest(ctx, newCipher(t, secretA))
		require.NoError(t, err)
		got, err = rotated.GetTOTP(ctx, "alice")
		require.NoError(t, err)
		require.Equal(t, totpSeed, got.Secret, "rotation re-encrypts the seed")
	})
}

// TestTOTPStepAndRecoveryCodeUsedOnce: of concurrent uses of one time step
// or one recovery code exactly one succeeds; an older step never does; a
// confirmed TOTP is not replaced by a new enrolment; a reset removes both.
func TestTOTPStepAndRecoveryCodeUsedOnce(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, db database) {
		ctx := context.Background()
		s := db.open(t, nil)
		require.NoError(t, s.CreateUser(ctx, &storage.User{Username: "alice"}))
		require.NoError(t, s.SaveTOTPEnrolment(ctx, "alice", "ABANDONEDSEED234"))
		abandoned, err := s.GetTOTP(ctx, "alice")
		require.NoError(t, err)
		require.NoError(t, s.SaveTOTPEnrolment(ctx, "alice", totpSeed), "an enrolment restarts with a new seed")
		require.ErrorIs(t, s.UseTOTPStep(ctx, abandoned, 10, true), storage.ErrNotFound, "a code of the replaced seed confirms nothing")
		pending, err := s.GetTOTP(ctx, "alice")
		require.NoError(t, err)
		require.Equal(t, totpSeed, pending.Secret)
		require.ErrorIs(t, s.UseTOTPStep(ctx, pending, 10, false), storage.ErrNotFound, "an unconfirmed TOTP signs nobody in")
		require.NoError(t, s.UseTOTPStep(ctx, pending, 10, true))
		require.ErrorIs(t, s.SaveTOTPEnrolment(ctx, "alice", totpSeed), storage.ErrAlreadyExists)
		f, err := s.SecondFactors(ctx, []string{"alice", "bob"})
		require.NoError(t, err)
		require.Equal(t, map[string][]string{"alice": {storage.FactorTOTP}}, f)

		require.NoError(t, s.ReplaceRecoveryCodes(ctx, "alice", []string{"h1", "h2"}))
		var wins, losses int
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var err error
				if i%2 == 0 {
					err = s.UseTOTPStep(ctx, pending, 11, false)
				} else {
					err = s.UseRecoveryCode(ctx, "alice", "h1")
				}
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case errors.Is(err, storage.ErrNotFound):
					losses++
				default:
					t.Errorf("unexpected error %v", err)
				}
			}()
		}
		wg.Wait()
		require.Equal(t, 2, wins, "one use of the step and one of the code")
		require.Equal(t, 6, losses)
		require.ErrorIs(t, s.UseTOTPStep(ctx, pending, 10, false), storage.ErrNotFound, "an older step")
		n, err := s.UnusedRecoveryCodes(ctx, "alice")
		require.NoError(t, err)
		require.Equal(t, 1, n)

		require.NoError(t, s.DeleteSecondFactors(ctx, "alice"))
		require.ErrorIs(t, s.DeleteSecondFactors(ctx, "alice"), storage.ErrNotFound)
		_, err = s.GetTOTP(ctx, "alice")
		require.ErrorIs(t, err, storage.ErrNotFound)
	})
}
