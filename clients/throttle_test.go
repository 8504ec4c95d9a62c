package clients

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/latchauth/latch/passhash"
)

// TestWrongSecretBudget: after failureBurst wrong secrets for one stored
// hash, a check that would need argon2id is refused with a ThrottledError
// without running it; the secret verified before still passes, and
// another client's hash has its own budget.
func TestWrongSecretBudget(t *testing.T) {
	hash, err := HashChosen("the right secret")
	if err != nil {
		t.Fatal(err)
	}
	other, err := HashChosen("another client's secret")
	if err != nil {
		t.Fatal(err)
	}
	var runs atomic.Int64
	h := NewHasher(100)
	h.Verify = func(hash, secret string) error { runs.Add(1); return passhash.Verify(hash, secret) }
	ctx := t.Context()
	if err := h.Compare(ctx, []byte(hash), []byte("the right secret")); err != nil {
		t.Fatal(err)
	}
	for i := range failureBurst {
		if err := h.Compare(ctx, []byte(hash), fmt.Appendf(nil, "guess %d", i)); !errors.Is(err, ErrMismatch) {
			t.Fatalf("guess %d: %v, want ErrMismatch", i, err)
		}
	}
	if got := runs.Load(); got != failureBurst+1 {
		t.Fatalf("%d argon2id runs, want one per check (%d)", got, failureBurst+1)
	}
	var throttled *ThrottledError
	if err := h.Compare(ctx, []byte(hash), []byte("one guess too many")); !errors.As(err, &throttled) || throttled.RetryAfter <= 0 {
		t.Fatalf("over the budget: %v, want a ThrottledError with RetryAfter", err)
	}
	if got := runs.Load(); got != failureBurst+1 {
		t.Fatal("a throttled check ran argon2id")
	}
	if err := h.Compare(ctx, []byte(hash), []byte("the right secret")); err != nil {
		t.Fatalf("the verified secret over the budget: %v", err)
	}
	if err := h.Compare(ctx, []byte(other), []byte("another client's secret")); err != nil {
		t.Fatalf("another client: %v", err)
	}
}
