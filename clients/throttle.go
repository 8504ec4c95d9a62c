package clients

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ThrottledError refuses a secret check without running it: the client's
// stored secret has had too many wrong guesses lately. RetryAfter is when
// the next check will be run.
type ThrottledError struct {
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("clients: too many wrong secrets for this client; retry in %s", e.RetryAfter.Round(time.Second))
}

// maxBudgets bounds the budgets kept: one per stored slow hash that had a
// wrong secret, so at most one per client with a chosen secret. Past it
// the table starts again, as the client cache does.
const maxBudgets = 10000

// failureBudgets is a token bucket of wrong secrets per stored hash, keyed
// by the SHA-256 of the hash so no hash is kept twice in memory.
type failureBudgets struct {
	mu      sync.Mutex
	burst   int
	every   time.Duration
	buckets map[[32]byte]*rate.Limiter
}

func newFailureBudgets(burst int, every time.Duration) *failureBudgets {
	return &failureBudgets{burst: burst, every: every, buckets: map[[32]byte]*rate.Limiter{}}
}

// exhausted returns how long until hash may be checked again, or 0 when
// its budget has a failure left.
func (b *failureBudgets) exhausted(hash []byte, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.buckets[sha256.Sum256(hash)]
	if l == nil || l.TokensAt(now) >= 1 {
		return 0
	}
	return max(time.Second, time.Duration((1-l.TokensAt(now))*float64(b.every)))
}

// spend takes one failure from the budget of hash.
func (b *failureBudgets) spend(hash []byte, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := sha256.Sum256(hash)
	l := b.buckets[k]
	if l == nil {
		if len(b.buckets) >= maxBudgets {
			b.buckets = map[[32]byte]*rate.Limiter{}
		}
		l = rate.NewLimiter(rate.Every(b.every), b.burst)
		b.buckets[k] = l
	}
	l.AllowN(now, 1)
}
