package storage

import (
	"context"
	"sync"
	"time"

	"github.com/ory/fosite"

	"github.com/latchauth/latch/clients"
)

// The client cache. fosite reads the client of every token request,
// introspection and revocation; reading and decoding its row was a sixth
// of an introspection. A client read from the database is trusted for
// clientCacheTTL, within SPEC's five seconds for in-process caches: a
// client changed or deleted by another process (an instance behind the
// same load balancer, or the CLI) is seen within that time everywhere,
// and one changed through this store at once, since every write to a
// client empties the cache. Callers get their own copy of the cached
// client, so none can change another's.

const (
	clientCacheTTL  = 2 * time.Second
	clientCacheSize = 10000
)

type cachedClient struct {
	client *clients.Client
	until  time.Time
}

type clientCache struct {
	mu sync.Mutex
	// gen counts invalidations: a read that began before one must not
	// store what it read.
	gen     uint64
	entries map[string]cachedClient
}

func (c *clientCache) get(id string, now time.Time) (*clients.Client, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[id]
	if !ok || now.After(e.until) {
		return nil, c.gen, false
	}
	return e.client.Clone(), c.gen, true
}

func (c *clientCache) put(id string, cl *clients.Client, gen uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.entries == nil || len(c.entries) >= clientCacheSize {
		c.entries = map[string]cachedClient{}
	}
	c.entries[id] = cachedClient{client: cl.Clone(), until: now.Add(clientCacheTTL)}
}

func (c *clientCache) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.entries = nil
}

func (c *clientCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.entries, id)
}

// ForgetClient drops the client id from the cache and from ctx's memo, so
// the next GetClient reads it from the database: for a refused secret,
// which may be newer than the cached client.
func (s *GormStore) ForgetClient(ctx context.Context, id string) {
	s.clients.forget(id)
	if memo := memoOf(ctx); memo != nil {
		memo.mu.Lock()
		delete(memo.clients, id)
		memo.mu.Unlock()
	}
}

type memoKey struct{}

// clientMemo holds the clients one request has read.
type clientMemo struct {
	mu      sync.Mutex
	clients map[string]fosite.Client
}

// WithClientMemo returns a context under which GetClient reads each
// client from the database once: fosite reads the client to authenticate
// it and again for every token it looks up. Use it for one request only,
// and not around a change of the client.
func WithClientMemo(ctx context.Context) context.Context {
	return context.WithValue(ctx, memoKey{}, &clientMemo{clients: map[string]fosite.Client{}})
}

func memoOf(ctx context.Context) *clientMemo {
	m, _ := ctx.Value(memoKey{}).(*clientMemo)
	return m
}

// ReloadClient reads client id from the database (ClientReloader). When
// its secret hash differs from the one callers in ctx were given (from
// ctx's memo or the cache), that one entry is replaced and changed is
// true. Otherwise nothing changes: no entry is dropped and the cache's
// generation stays, so a wrong secret costs other callers nothing.
func (s *GormStore) ReloadClient(ctx context.Context, id string) (bool, error) {
	if _, inTx := txOf(ctx); inTx {
		return false, nil // read through the transaction: already fresh
	}
	now := time.Now()
	given, gen, cached := s.clients.get(id, now)
	memo := memoOf(ctx)
	if memo != nil {
		memo.mu.Lock()
		if c, ok := memo.clients[id].(*clients.Client); ok {
			given = c
		}
		memo.mu.Unlock()
	}
	if given == nil {
		return false, nil // fosite read the row itself just now
	}
	var row clientRow
	if err := s.reader(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return false, translate(err)
	}
	fresh, err := s.clientOf(&row)
	if err != nil || fresh.SecretHash == given.SecretHash {
		return false, err
	}
	if cached {
		s.clients.put(id, fresh, gen, now)
	}
	if memo != nil {
		memo.mu.Lock()
		memo.clients[id] = fresh
		memo.mu.Unlock()
	}
	return true, nil
}
