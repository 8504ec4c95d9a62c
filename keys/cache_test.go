package keys_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/keys"
	"github.com/latchauth/latch/storage"
)

// TestCacheAcrossInstances: B trusts what it read for less than 5 s by its
// clock, so a rotation on A reaches B within 5 s, not sooner.
func TestCacheAcrossInstances(t *testing.T) {
	ctx := context.Background()
	path, clk := dbPath(t), newClock()
	a := newManager(t, openStore(t, path), "ES256", clk)
	b := newManager(t, openStore(t, path), "ES256", clk)
	require.NoError(t, a.Ensure(ctx))
	oldKID := currentKID(t, b) // B reads the store now
	require.Equal(t, []string{oldKID}, publishedKIDs(t, b))

	// Same instant as the first key: the JWKS must still list the signing
	// key first although created_at ties.
	require.NoError(t, a.Rotate(ctx, time.Hour))
	newKID := currentKID(t, a)
	require.NotEqual(t, oldKID, newKID)

	for _, step := range []struct {
		advance       time.Duration
		wantSigning   string
		wantPublished []string
	}{
		{0, oldKID, []string{oldKID}},
		{4 * time.Second, oldKID, []string{oldKID}},
		{time.Second - time.Nanosecond, oldKID, []string{oldKID}},
		{time.Nanosecond, newKID, []string{newKID, oldKID}}, // 5 s: stale
	} {
		clk.Advance(step.advance)
		require.Equal(t, step.wantSigning, currentKID(t, b), "B signing after %s", step.advance)
		require.Equal(t, step.wantPublished, publishedKIDs(t, b), "B publishing after %s", step.advance)
		require.Equal(t, newKID, currentKID(t, a), "A")
	}
}

// TestCacheClockBackwards: a clock that steps back does not extend trust.
func TestCacheClockBackwards(t *testing.T) {
	ctx := context.Background()
	path, clk := dbPath(t), newClock()
	a := newManager(t, openStore(t, path), "ES256", clk)
	b := newManager(t, openStore(t, path), "ES256", clk)
	require.NoError(t, a.Ensure(ctx))
	oldKID := currentKID(t, b)
	require.NoError(t, a.Rotate(ctx, time.Hour))
	clk.Advance(-time.Second)
	require.NotEqual(t, oldKID, currentKID(t, b))
}

func TestGetPrivateKeyReturnsACopy(t *testing.T) {
	ctx := context.Background()
	m := newManager(t, openStore(t, dbPath(t)), "ES256", newClock())
	require.NoError(t, m.Ensure(ctx))
	k, err := m.GetPrivateKey(ctx)
	require.NoError(t, err)
	kid := k.(*jose.JSONWebKey).KeyID
	k.(*jose.JSONWebKey).KeyID = "tampered"
	require.Equal(t, kid, currentKID(t, m))
}

func TestStoreErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		op   func(context.Context, *keys.Manager) error
	}{
		{"Ensure", func(ctx context.Context, m *keys.Manager) error { return m.Ensure(ctx) }},
		{"Rotate", func(ctx context.Context, m *keys.Manager) error { return m.Rotate(ctx, time.Hour) }},
		{"GetPrivateKey", func(ctx context.Context, m *keys.Manager) error {
			_, err := m.GetPrivateKey(ctx)
			return err
		}},
		{"PublicKeys", func(ctx context.Context, m *keys.Manager) error {
			_, err := m.PublicKeys(ctx)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st := openStore(t, dbPath(t))
			m := newManager(t, st, "ES256", newClock())
			require.NoError(t, st.Close())
			err := tc.op(ctx, m)
			require.ErrorIs(t, err, storage.ErrUnavailable)
		})
	}

	// A warm cache keeps serving for its 5 s, then the failure shows: no
	// stale key is trusted longer because the database is down.
	t.Run("cache expires while the store is down", func(t *testing.T) {
		ctx := context.Background()
		clk := newClock()
		st := openStore(t, dbPath(t))
		m := newManager(t, st, "ES256", clk)
		require.NoError(t, m.Ensure(ctx))
		kid := currentKID(t, m)
		require.NoError(t, st.Close())

		clk.Advance(4 * time.Second)
		require.Equal(t, kid, currentKID(t, m))
		clk.Advance(time.Second)
		_, err := m.GetPrivateKey(ctx)
		require.ErrorIs(t, err, storage.ErrUnavailable)
		_, err = m.PublicKeys(ctx)
		require.ErrorIs(t, err, storage.ErrUnavailable)
	})
}

// TestConcurrentUse runs signing and publishing while the key rotates and
// the cache expires, for the race detector.
func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	m := newManager(t, openStore(t, dbPath(t)), "ES256", clk)
	require.NoError(t, m.Ensure(ctx))

	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if _, err := m.GetPrivateKey(ctx); err != nil {
					errs <- err
					return
				}
				if _, err := m.PublicKeys(ctx); err != nil {
					errs <- err
					return
				}
				clk.Advance(time.Second)
			}
		})
	}
	wg.Go(func() {
		for range 3 {
			if err := m.Rotate(ctx, time.Hour); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// BenchmarkGetPrivateKey measures the cached path fosite takes for every
// ID token and JWT access token.
func BenchmarkGetPrivateKey(b *testing.B) {
	for _, alg := range []string{"RS256", "ES256"} {
		b.Run(alg, func(b *testing.B) {
			ctx := context.Background()
			frozen := newClock() // never advances: the cache never expires
			m := newManager(b, openStore(b, dbPath(b)), alg, frozen)
			if err := m.Ensure(ctx); err != nil {
				b.Fatal(err)
			}
			if _, err := m.GetPrivateKey(ctx); err != nil { // fills the cache
				b.Fatal(err)
			}
			b.Run("serial", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := m.GetPrivateKey(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := m.GetPrivateKey(ctx); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		})
	}
}
