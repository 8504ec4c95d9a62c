package storage

import (
	"testing"
	"time"
)

// TestReloadClientKeepsCache: a refused secret's reload leaves the cache
// alone when the stored secret hash is the one checked (no entry dropped,
// no generation bump that would stop concurrent reads from caching), and
// replaces just that entry when another process rotated the secret.
func TestReloadClientKeepsCache(t *testing.T) {
	st := openTestFile(t)
	grant(t, st, "rk1")
	grant(t, st, "rk2")
	ctx := t.Context()
	for _, id := range []string{"c-rk1", "c-rk2"} {
		if _, err := st.GetClient(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	_, gen, _ := st.clients.get("c-rk1", time.Now())

	changed, err := st.ReloadClient(ctx, "c-rk1")
	if err != nil || changed {
		t.Fatalf("unchanged row: changed %v, err %v", changed, err)
	}
	_, after, ok := st.clients.get("c-rk2", time.Now())
	if after != gen || !ok {
		t.Fatalf("a reload of an unchanged client touched the cache: gen %d -> %d, c-rk2 cached %v", gen, after, ok)
	}

	// Another process rotates c-rk1's secret after this request read it
	// (the memo, unlike the cache, cannot expire on a slow machine).
	ctx = WithClientMemo(ctx)
	if _, err := st.GetClient(ctx, "c-rk1"); err != nil {
		t.Fatal(err)
	}
	if err := st.writePool.Exec("UPDATE clients SET secret_hash = ? WHERE id = ?", "sha256$rotated", "c-rk1").Error; err != nil {
		t.Fatal(err)
	}
	changed, err = st.ReloadClient(ctx, "c-rk1")
	if err != nil {
		t.Fatal(err)
	}
	if !changed {
		t.Fatal("a secret rotated behind the store's back: changed is false")
	}
	if c, _, ok := st.clients.get("c-rk1", time.Now()); ok && c.SecretHash != "sha256$rotated" {
		t.Fatalf("the cache holds %q after the reload", c.SecretHash)
	}
}
