package storage

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/latchauth/latch/clients"
)

// TestLogoutQueueIsBounded: with MaxLogoutDeliveries queued, ending a
// session queues nothing more, still ends it, and counts what it dropped.
func TestLogoutQueueIsBounded(t *testing.T) {
	ctx := t.Context()
	st, err := Open(ctx, Options{Driver: "sqlite", DSN: filepath.Join(t.TempDir(), "q.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	c := &clients.Client{ID: "rp", GrantTypes: []string{clients.GrantClientCredentials}, SecretHash: clients.HashGenerated("s")}
	if err := st.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	rows := make([]logoutDeliveryRow, MaxLogoutDeliveries)
	for i := range rows {
		rows[i] = logoutDeliveryRow{ID: fmt.Sprintf("d-%05d", i), ClientID: "rp", Subject: "alice", SessionID: "h",
			NextAttemptAt: now.Add(time.Hour), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	err = st.tx(ctx, func(_ context.Context, tx *gorm.DB) error { return tx.CreateInBatches(rows, 500).Error })
	if err != nil {
		t.Fatal(err)
	}
	if err := st.UpsertUser(ctx, &User{Username: "alice", PasswordHash: "$2a$04$abcdefghijklmnopqrstuu5Pp3Wc0/5nQk6pH0sQ7k0wH7h6oJ1Ri"}); err != nil {
		t.Fatal(err)
	}
	ls := &LoginSession{ID: "s", Username: "alice", AuthTime: now, ExpiresAt: now.Add(time.Hour)}
	if err := st.CreateLoginSession(ctx, ls); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordSessionClient(ctx, ls, "rp"); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteLoginSession(ctx, ls.ID); err != nil {
		t.Fatalf("a full queue must not keep a session from ending: %v", err)
	}
	if _, err := st.GetLoginSession(ctx, ls.ID); err == nil {
		t.Fatal("the session still exists")
	}
	n, err := st.CountLogoutDeliveries(ctx)
	if err != nil || n != MaxLogoutDeliveries {
		t.Fatalf("queued %d (%v), want the cap %d", n, err, MaxLogoutDeliveries)
	}
	if got := st.LogoutDeliveriesDropped(); got != 1 {
		t.Fatalf("dropped %d, want 1", got)
	}
}
