package clients

import (
	"context"
	"errors"
	"fmt"

	"github.com/ory/fosite"
)

// Store is what management needs of the storage layer (storage.Store
// satisfies it; this package cannot import storage, which imports it).
type Store interface {
	GetClient(ctx context.Context, id string) (fosite.Client, error)
	CreateClient(ctx context.Context, c *Client) error
	UpdateClient(ctx context.Context, c *Client) error
	UpsertClient(ctx context.Context, c *Client) error
	ListClients(ctx context.Context) ([]*Client, error)
	DeleteClient(ctx context.Context, id string) error
}

// Manager creates and changes clients for the CLI, the admin API and config
// seeding, so secrets are hashed and clients validated the same way on
// every path.
type Manager struct {
	Store  Store
	Hasher *Hasher
	// Rules are the deployment's client rules (insecure_http).
	Rules Rules
}

// Create stores a new client. For a confidential client with an empty
// secret it generates one; the clear secret is returned once and never
// stored.
func (m *Manager) Create(ctx context.Context, c *Client, secret string) (string, error) {
	secret, err := m.setSecret(c, secret)
	if err != nil {
		return "", err
	}
	Defaults(c)
	if err := m.Rules.Validate(c); err != nil {
		return "", err
	}
	if err := m.Store.CreateClient(ctx, c); err != nil {
		return "", err
	}
	return secret, nil
}

// Update replaces a client's settings and keeps its secret hash.
func (m *Manager) Update(ctx context.Context, c *Client) error {
	old, err := m.Get(ctx, c.ID)
	if err != nil {
		return err
	}
	if c.IsPublic() {
		c.SecretHash = ""
	} else if c.SecretHash == "" {
		c.SecretHash = old.SecretHash
		if c.JWTSecret == "" {
			c.JWTSecret = old.JWTSecret
		}
	}
	if c.GetTokenEndpointAuthMethod() != AuthMethodSecretJWT {
		// Only client_secret_jwt needs the secret in clear; a client that
		// leaves it keeps only the hash.
		c.JWTSecret = ""
	}
	if c.RegistrationTokenHash == "" {
		// A dynamically registered client keeps its RFC 7592 token.
		c.RegistrationTokenHash = old.RegistrationTokenHash
	}
	Defaults(c)
	if err := m.Rules.Validate(c); err != nil {
		return err
	}
	return m.Store.UpdateClient(ctx, c)
}

// RotateSecret gives a confidential client a new generated secret, returned
// once. The old secret stops working on every instance at once: the
// verified-secret cache is keyed by the stored hash (and a
// client_secret_jwt client's sealed copy is replaced with it).
func (m *Manager) RotateSecret(ctx context.Context, id string) (string, error) {
	c, err := m.Get(ctx, id)
	if err != nil {
		return "", err
	}
	if m := c.GetTokenEndpointAuthMethod(); !NeedsSecret(m) {
		return "", fmt.Errorf("clients: %s authenticates with %s and has no secret to rotate", id, m)
	}
	secret, err := NewSecret(c)
	if err != nil {
		return "", err
	}
	if err := m.Store.UpdateClient(ctx, c); err != nil {
		return "", err
	}
	return secret, nil
}

// Get returns one client.
func (m *Manager) Get(ctx context.Context, id string) (*Client, error) {
	fc, err := m.Store.GetClient(ctx, id)
	if err != nil {
		return nil, err
	}
	c, ok := fc.(*Client)
	if !ok {
		return nil, fmt.Errorf("clients: store returned %T", fc)
	}
	return c, nil
}

// List returns every client, sorted by id.
func (m *Manager) List(ctx context.Context) ([]*Client, error) { return m.Store.ListClients(ctx) }

// Delete removes a client and every token issued to it.
func (m *Manager) Delete(ctx context.Context, id string) error { return m.Store.DeleteClient(ctx, id) }

// Seed creates or replaces a client declared in config.yaml. A clear secret
// there is chosen by a person, so it is hashed with argon2id; if the stored
// hash already matches it, the hash is kept (no re-hash at every start).
func (m *Manager) Seed(ctx context.Context, c *Client, secret string) error {
	if secret != "" {
		old, err := m.Get(ctx, c.ID)
		switch {
		case err == nil && old.SecretHash != "" && m.Hasher.Compare(ctx, []byte(old.SecretHash), []byte(secret)) == nil:
			c.SetSecret(secret, old.SecretHash)
		case err == nil || errors.Is(err, fosite.ErrNotFound):
			hash, err := HashChosen(secret)
			if err != nil {
				return err
			}
			c.SetSecret(secret, hash)
		default:
			return err
		}
	}
	Defaults(c)
	if err := m.Rules.Validate(c); err != nil {
		return fmt.Errorf("client %s: %w", c.ID, err)
	}
	return m.Store.UpsertClient(ctx, c)
}

// setSecret hashes secret into c, generating one for a confidential client
// without. It returns the clear secret to show once.
func (m *Manager) setSecret(c *Client, secret string) (string, error) {
	c.SecretHash, c.JWTSecret = "", ""
	if c.IsPublic() {
		if secret != "" {
			return "", errors.New("secret: a public client (token_endpoint_auth_method none) has no secret")
		}
		return "", nil
	}
	if c.GetTokenEndpointAuthMethod() == AuthMethodPrivateKey && secret == "" {
		return "", nil
	}
	if secret == "" {
		return NewSecret(c)
	}
	hash, err := HashChosen(secret)
	if err != nil {
		return "", err
	}
	c.SetSecret(secret, hash)
	return secret, nil
}
