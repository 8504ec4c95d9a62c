package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/server"
	"github.com/latchauth/latch/storage"
)

// Pre-minting: what the operations use up is made before the clock starts.

const (
	// introspectPool access tokens are introspected round-robin: they stay
	// valid, so a thousand give the store a realistic spread of lookups.
	introspectPool = 1000
	// maxPool caps a pool of revoke tokens or codes.
	maxPool = 1_000_000
	// minPool is the smallest pool of revoke tokens or codes.
	minPool = 100
	// The rates pools are sized for when -tokens does not say, per second
	// of -d: revokeRate for -op revoke, above its target so that a
	// server that meets it does not run dry; codeRate for -op code and
	// mixedRate for all of -op mixed (split by mixWeights), which have no
	// target, well above what they were measured at.
	revokeRate = 10_000
	codeRate   = 2_000
	mixedRate  = 20_000
	// mintBatch mints share one transaction: every commit waits for an
	// fsync, and pre-minting should not take much longer than the run it
	// prepares.
	mintBatch = 1000

	benchScopes = "read write offline_access openid"
	// benchUser approves the authorization codes and owns the refresh
	// tokens: a user with a profile, as after a real sign-in.
	benchUser        = "bench-user"
	benchRedirectURI = "http://127.0.0.1:5555/callback"
)

// pools are how many of each consumable is pre-minted.
type pools struct {
	Introspect int // access tokens, introspected round-robin
	Revoke     int // access tokens, each revoked once
	Refresh    int // refresh tokens, one chain per worker
	Codes      int // authorization codes, each exchanged once
}

// fixture is what the timed phase needs: where the server is, who to
// authenticate as, and the pre-minted tokens and codes.
type fixture struct {
	URL          string
	ClientID     string
	ClientSecret string
	RedirectURI  string
	Introspect   []string
	Revoke       []string
	Refresh      []string
	Codes        []authCode
	// MintSeconds is how long preparing took.
	MintSeconds float64
}

// authCode is an authorization code and the PKCE verifier it was minted
// for.
type authCode struct {
	Code     string
	Verifier string
}

// poolsFor sizes the pools of o's operation for o's duration.
func poolsFor(o options) pools {
	consumable := func(rate float64) int {
		if o.tokens > 0 {
			return o.tokens
		}
		n := int(math.Ceil(rate * o.duration.Seconds()))
		return min(max(n, minPool), maxPool)
	}
	var p pools
	switch o.op {
	case "cc":
	case "introspect":
		p.Introspect = introspectPool
	case "revoke":
		p.Revoke = consumable(revokeRate)
	case "refresh":
		p.Refresh = o.concurrency
	case "code":
		p.Codes = consumable(codeRate)
	case "mixed":
		total := 0
		for _, w := range mixWeights {
			total += w
		}
		share := func(p op) float64 { return mixedRate * float64(mixWeights[p]) / float64(total) }
		p.Introspect = introspectPool
		p.Revoke = consumable(share(opRevoke))
		if o.url == "" { // refresh tokens and codes need the own server
			p.Refresh = o.concurrency
			p.Codes = consumable(share(opCode))
		}
	}
	return p
}

func (p pools) String() string {
	var parts []string
	for _, c := range []struct {
		n    int
		what string
	}{
		{p.Introspect, "access tokens to introspect"},
		{p.Revoke, "access tokens to revoke"},
		{p.Refresh, "refresh tokens"},
		{p.Codes, "authorization codes"},
	} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c.n, c.what))
		}
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

// premint prepares the database of f: it creates the benchmark's client
// as `latch clients create` does (the clients manager on the store, a
// generated secret, client_secret_basic) and a user, then mints the pools
// with the server's own strategies, as IssueTokens and IssueAuthorizeCode
// store them.
func premint(ctx context.Context, f config.File, p pools, stderr io.Writer) (*fixture, error) {
	start := time.Now()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := server.OpenStore(ctx, f, log)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	mgr := &clients.Manager{Store: st, Hasher: clients.NewHasher(1)}
	c := &clients.Client{
		ID:                      "bench-" + randomHex(4),
		Name:                    "Load benchmark",
		TokenEndpointAuthMethod: clients.AuthMethodBasic,
		GrantTypes:              []string{clients.GrantClientCredentials, clients.GrantRefreshToken, clients.GrantAuthorizationCode},
		ResponseTypes:           []string{"code"},
		RedirectURIs:            []string{benchRedirectURI},
		Scopes:                  strings.Fields(benchScopes),
	}
	secret, err := mgr.Create(ctx, c, "")
	if err != nil {
		return nil, fmt.Errorf("create client: %w", err)
	}
	err = st.UpsertUser(ctx, &storage.User{Username: benchUser, Name: "Bench User", Email: "bench@example.com", EmailVerified: true})
	if err != nil {
		return nil, fmt.Errorf("create user: %w", err)
	}
	fx := &fixture{ClientID: c.ID, ClientSecret: secret, RedirectURI: benchRedirectURI}

	// The minting Server has the configuration the served one will have,
	// so it creates the system secret and signing key the served one will
	// load. Its store lets a batch of mints share one transaction.
	minter, err := server.New(ctx, server.ConfigFromFile(f, batchStore{st}, log, nil))
	if err != nil {
		return nil, err
	}
	access := func(ctx context.Context) (string, error) {
		t, err := minter.IssueTokens(ctx, server.TokenRequest{ClientID: c.ID, Scopes: []string{"read"}})
		if err != nil {
			return "", err
		}
		return t.AccessToken, nil
	}
	if fx.Introspect, err = mintBatched(ctx, st, p.Introspect, access); err != nil {
		return nil, fmt.Errorf("access tokens: %w", err)
	}
	if fx.Revoke, err = mintBatched(ctx, st, p.Revoke, access); err != nil {
		return nil, fmt.Errorf("access tokens: %w", err)
	}
	fx.Refresh, err = mintBatched(ctx, st, p.Refresh, func(ctx context.Context) (string, error) {
		t, err := minter.IssueTokens(ctx, server.TokenRequest{ClientID: c.ID, Subject: benchUser, Scopes: []string{"read"}, Refresh: true})
		if err != nil {
			return "", err
		}
		return t.RefreshToken, nil
	})
	if err != nil {
		return nil, fmt.Errorf("refresh tokens: %w", err)
	}
	fx.Codes, err = mintBatched(ctx, st, p.Codes, func(ctx context.Context) (authCode, error) {
		verifier := randomHex(32) // 64 characters, within RFC 7636's 43 to 128
		sum := sha256.Sum256([]byte(verifier))
		code, err := minter.IssueAuthorizeCode(ctx, server.CodeRequest{
			ClientID: c.ID, Subject: benchUser, RedirectURI: benchRedirectURI, Scopes: []string{"openid", "offline_access", "read"},
			CodeChallenge: base64.RawURLEncoding.EncodeToString(sum[:]), Nonce: randomHex(8),
		})
		return authCode{Code: code, Verifier: verifier}, err
	})
	if err != nil {
		return nil, fmt.Errorf("authorization codes: %w", err)
	}
	fx.MintSeconds = time.Since(start).Seconds()
	return fx, nil
}

// mintBatched calls mint n times, mintBatch calls to a transaction of st.
func mintBatched[T any](ctx context.Context, st storage.Store, n int, mint func(context.Context) (T, error)) ([]T, error) {
	out := make([]T, 0, n)
	for len(out) < n {
		txCtx, err := st.BeginTX(ctx)
		if err != nil {
			return nil, err
		}
		batchCtx := context.WithValue(txCtx, inBatch{}, true)
		for i := min(mintBatch, n-len(out)); i > 0; i-- {
			v, err := mint(batchCtx)
			if err != nil {
				_ = st.Rollback(txCtx)
				return nil, err
			}
			out = append(out, v)
		}
		if err := st.Commit(txCtx); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// inBatch marks the context of a mintBatched transaction.
type inBatch struct{}

// batchStore is the store of the minting Server. Inside a batch, the
// transactions the server begins around each mint join the batch's
// transaction (which the store carries in the context) and their commits
// wait for the batch's; the rows written are the same.
type batchStore struct {
	storage.Store
}

func (b batchStore) BeginTX(ctx context.Context) (context.Context, error) {
	if ctx.Value(inBatch{}) != nil {
		return ctx, nil
	}
	return b.Store.BeginTX(ctx)
}

func (b batchStore) Commit(ctx context.Context) error {
	if ctx.Value(inBatch{}) != nil {
		return nil
	}
	return b.Store.Commit(ctx)
}

// Rollback inside a batch leaves the rollback to mintBatched, which sees
// the mint's error.
func (b batchStore) Rollback(ctx context.Context) error {
	if ctx.Value(inBatch{}) != nil {
		return nil
	}
	return b.Store.Rollback(ctx)
}

// randomHex is n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand, Go ≥ 1.24)
	return hex.EncodeToString(b)
}
