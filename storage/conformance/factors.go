package conformance

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/storage"
)

func factorTests() []subtest {
	return []subtest{
		{"SecondFactorsCountPasskeys", testSecondFactorsCountPasskeys},
		{"DeleteTOTPKeepsPasskeys", testDeleteTOTPKeepsPasskeys},
	}
}

// giveFactors gives username a confirmed TOTP, two recovery codes and
// passkeys named by ids.
func giveFactors(t *testing.T, s storage.Store, username string, ids ...string) {
	t.Helper()
	require.NoError(t, s.SaveTOTPEnrolment(ctx(t), username, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"))
	totp, err := s.GetTOTP(ctx(t), username)
	require.NoError(t, err)
	require.NoError(t, s.UseTOTPStep(ctx(t), totp, 1, true))
	require.NoError(t, s.ReplaceRecoveryCodes(ctx(t), username, []string{username + "-h1", username + "-h2"}))
	for _, id := range ids {
		require.NoError(t, s.CreatePasskey(ctx(t), &storage.Passkey{ID: id, Username: username, Name: id, Credential: []byte(`{}`)}))
	}
}

// testSecondFactorsCountPasskeys: a passkey is a second factor, listed once
// however many a person has; an admin's reset removes every factor.
func testSecondFactorsCountPasskeys(t *testing.T, s storage.Store) {
	for _, name := range []string{"alice", "bob", "carol"} {
		createUser(t, s, name)
	}
	giveFactors(t, s, "alice", "alice-1", "alice-2")
	require.NoError(t, s.CreatePasskey(ctx(t), &storage.Passkey{ID: "bob-1", Username: "bob", Name: "Key", Credential: []byte(`{}`)}))

	got, err := s.SecondFactors(ctx(t), []string{"alice", "bob", "carol"})
	require.NoError(t, err)
	require.Equal(t, map[string][]string{
		"alice": {storage.FactorTOTP, storage.FactorPasskey},
		"bob":   {storage.FactorPasskey},
	}, got)

	require.NoError(t, s.DeleteSecondFactors(ctx(t), "alice"))
	requireNotFound(t, s.DeleteSecondFactors(ctx(t), "alice"), "a second reset")
	keys, err := s.ListPasskeys(ctx(t), "alice")
	require.NoError(t, err)
	require.Empty(t, keys, "the reset removes the passkeys")
	n, err := s.UnusedRecoveryCodes(ctx(t), "alice")
	require.NoError(t, err)
	require.Zero(t, n, "and the recovery codes")
	require.NoError(t, s.DeleteSecondFactors(ctx(t), "bob"), "a passkey alone is a factor to reset")
	got, err = s.SecondFactors(ctx(t), []string{"alice", "bob"})
	require.NoError(t, err)
	require.Empty(t, got)
}

// testDeleteTOTPKeepsPasskeys: turning the authenticator app off removes
// the TOTP and the recovery codes of that person only, and no passkey.
func testDeleteTOTPKeepsPasskeys(t *testing.T, s storage.Store) {
	createUser(t, s, "alice")
	createUser(t, s, "bob")
	giveFactors(t, s, "alice", "alice-1")
	giveFactors(t, s, "bob")

	require.NoError(t, s.DeleteTOTP(ctx(t), "alice"))
	requireNotFound(t, s.DeleteTOTP(ctx(t), "alice"), "nothing left to remove")
	_, err := s.GetTOTP(ctx(t), "alice")
	requireNotFound(t, err, "the TOTP")
	n, err := s.UnusedRecoveryCodes(ctx(t), "alice")
	require.NoError(t, err)
	require.Zero(t, n)
	keys, err := s.ListPasskeys(ctx(t), "alice")
	require.NoError(t, err)
	require.Len(t, keys, 1, "the passkey stays")

	_, err = s.GetTOTP(ctx(t), "bob")
	require.NoError(t, err, "another person's TOTP stays")
	n, err = s.UnusedRecoveryCodes(ctx(t), "bob")
	require.NoError(t, err)
	require.Equal(t, 2, n)
	got, err := s.SecondFactors(ctx(t), []string{"alice", "bob"})
	require.NoError(t, err)
	require.Equal(t, map[string][]string{"alice": {storage.FactorPasskey}, "bob": {storage.FactorTOTP}}, got)
}
