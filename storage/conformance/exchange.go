package conformance

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/latchauth/latch/storage"
)

// exchangeTests cover the lineage of exchanged grants (RFC 8693): revoking
// a grant revokes every grant exchanged from it, through chains, by every
// path that revokes; revoking an exchanged grant leaves its ancestors.
func exchangeTests() []subtest {
	return []subtest{
		{"ExchangeRevokeCascades", testExchangeRevokeCascades},
		{"ExchangeRevokeChildLeavesParent", testExchangeRevokeChildLeavesParent},
		{"ExchangeRevokeInUnitCascades", testExchangeRevokeInUnitCascades},
		{"ExchangeBulkRevokeCascades", testExchangeBulkRevokeCascades},
		{"ExchangeDeleteClientCascades", testExchangeDeleteClientCascades},
		{"ExchangeDepthBounded", testExchangeDepthBounded},
		{"ExchangeLinksExpire", testExchangeLinksExpire},
		{"ExchangeLinksExtended", testExchangeLinksExtended},
	}
}

func exchangeStore(t *testing.T, s storage.Store) storage.ExchangedGrants {
	t.Helper()
	x, ok := s.(storage.ExchangedGrants)
	if !ok {
		t.Skipf("%T does not keep exchanged grants", s)
	}
	return x
}

// chain stores grant "root" of client app, "mid" of api exchanged from
// it, and "leaf" of api exchanged from mid; plus an unrelated "other".
func chain(t *testing.T, s storage.Store) storage.ExchangedGrants {
	t.Helper()
	x := exchangeStore(t, s)
	app, api := createClient(t, s, "app"), createClient(t, s, "api")
	issue(t, s, app, "root", "alice", "at-root", "rt-root")
	issue(t, s, api, "mid", "alice", "at-mid", "rt-mid")
	issue(t, s, api, "leaf", "alice", "at-leaf", "rt-leaf")
	issue(t, s, app, "other", "bob", "at-other", "rt-other")
	exp := now().Add(time.Hour)
	require.NoError(t, x.LinkExchangedGrant(ctx(t), "mid", "root", exp))
	require.NoError(t, x.LinkExchangedGrant(ctx(t), "leaf", "mid", exp))
	got, err := x.ExchangedFrom(ctx(t), "root")
	require.NoError(t, err)
	require.Equal(t, []string{"leaf", "mid"}, got, "grants exchanged from root, through the chain")
	return x
}

func testExchangeRevokeCascades(t *testing.T, s storage.Store) {
	chain(t, s)
	require.NoError(t, s.RevokeRefreshToken(ctx(t), "root"))
	require.NoError(t, s.RevokeAccessToken(ctx(t), "root"))
	for _, g := range []string{"root", "mid", "leaf"} {
		requireAccess(t, s, "at-"+g, false)
		requireInactive(t, s, "rt-"+g, g)
	}
	requireAccess(t, s, "at-other", true)
	requireActive(t, s, "rt-other", "other")
}

func testExchangeRevokeChildLeavesParent(t *testing.T, s storage.Store) {
	chain(t, s)
	require.NoError(t, s.RevokeRefreshToken(ctx(t), "mid"))
	require.NoError(t, s.RevokeAccessToken(ctx(t), "mid"))
	requireAccess(t, s, "at-mid", false)
	requireAccess(t, s, "at-leaf", false)
	requireInactive(t, s, "rt-leaf", "leaf")
	requireAccess(t, s, "at-root", true)
	requireActive(t, s, "rt-root", "root")
}

// testExchangeRevokeInUnitCascades: revoked as the revocation endpoint
// revokes (both statements one unit of work, one transaction), a grant
// takes every grant exchanged from it, directly (two siblings) and through
// the chain; a grant nothing was exchanged from takes only itself.
func testExchangeRevokeInUnitCascades(t *testing.T, s storage.Store) {
	x := chain(t, s)
	u, ok := s.(storage.UnitOfWork)
	if !ok {
		t.Skipf("%T has no unit of work", s)
	}
	issue(t, s, createClient(t, s, "sib-client"), "sib", "alice", "at-sib", "rt-sib")
	require.NoError(t, x.LinkExchangedGrant(ctx(t), "sib", "root", now().Add(time.Hour)))
	revoke := func(id string) {
		uctx, finish := u.Unit(ctx(t))
		require.NoError(t, finish(errors.Join(s.RevokeRefreshToken(uctx, id), s.RevokeAccessToken(uctx, id))))
	}
	revoke("other")
	requireAccess(t, s, "at-other", false)
	requireInactive(t, s, "rt-other", "other")
	requireAccess(t, s, "at-root", true)
	requireAccess(t, s, "at-sib", true)
	revoke("root")
	for _, g := range []string{"root", "mid", "leaf", "sib"} {
		requireAccess(t, s, "at-"+g, false)
		requireInactive(t, s, "rt-"+g, g)
	}
}

func testExchangeBulkRevokeCascades(t *testing.T, s storage.Store) {
	chain(t, s)
	// The exchanged grants are api's, and bob's grant is not alice's:
	// revoking app's grants ends root and what came from it.
	n, err := s.RevokeClientTokens(ctx(t), "app")
	require.NoError(t, err)
	require.EqualValues(t, 4, n, "root, other, and the two grants exchanged from root")
	requireAccess(t, s, "at-leaf", false)
	requireInactive(t, s, "rt-mid", "mid")
}

func testExchangeDeleteClientCascades(t *testing.T, s storage.Store) {
	chain(t, s)
	require.NoError(t, s.DeleteClient(ctx(t), "app"))
	requireAccess(t, s, "at-mid", false)
	requireAccess(t, s, "at-leaf", false)
	requireInactive(t, s, "rt-leaf", "leaf")
}

func testExchangeDepthBounded(t *testing.T, s storage.Store) {
	x := exchangeStore(t, s)
	exp := now().Add(time.Hour)
	parent := "g0"
	for i := 1; i <= storage.MaxExchangeDepth; i++ {
		child := "g" + string(rune('0'+i))
		require.NoError(t, x.LinkExchangedGrant(ctx(t), child, parent, exp), "depth %d", i)
		parent = child
	}
	err := x.LinkExchangedGrant(ctx(t), "too-deep", parent, exp)
	require.Truef(t, errors.Is(err, storage.ErrExchangeTooDeep), "want ErrExchangeTooDeep, got %v", err)
	got, err := x.ExchangedFrom(ctx(t), "g0")
	require.NoError(t, err)
	require.Len(t, got, storage.MaxExchangeDepth)
}

func testExchangeLinksExpire(t *testing.T, s storage.Store) {
	x := exchangeStore(t, s)
	require.NoError(t, x.LinkExchangedGrant(ctx(t), "old", "root", now().Add(-time.Minute)))
	require.NoError(t, x.LinkExchangedGrant(ctx(t), "new", "root", now().Add(time.Hour)))
	_, err := s.DeleteExpired(ctx(t), now())
	require.NoError(t, err)
	got, err := x.ExchangedFrom(ctx(t), "root")
	require.NoError(t, err)
	require.Equal(t, []string{"new"}, got)
}

// testExchangeLinksExtended: a refreshed exchanged grant keeps its links
// (to every ancestor) as long as its new refresh token lives.
func testExchangeLinksExtended(t *testing.T, s storage.Store) {
	x := exchangeStore(t, s)
	require.NoError(t, x.LinkExchangedGrant(ctx(t), "mid", "root", now().Add(time.Minute)))
	require.NoError(t, x.LinkExchangedGrant(ctx(t), "leaf", "mid", now().Add(time.Minute)))
	require.NoError(t, x.ExtendExchangedGrant(ctx(t), "leaf", now().Add(time.Hour)))
	require.NoError(t, x.ExtendExchangedGrant(ctx(t), "leaf", now().Add(time.Second)), "never shortened")
	_, err := s.DeleteExpired(ctx(t), now().Add(2*time.Minute))
	require.NoError(t, err)
	got, err := x.ExchangedFrom(ctx(t), "root")
	require.NoError(t, err)
	require.Equal(t, []string{"leaf"}, got, "leaf's links outlive mid's")
}
