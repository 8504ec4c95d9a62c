package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/latchauth/latch/clients"
	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/storage"
	"github.com/latchauth/latch/users"
)

// seed upserts the clients, users and trusted issuers declared in f, by id,
// so the file stays the source of truth for what it declares.
func seed(ctx context.Context, f config.File, st storage.Store, mgr *clients.Manager) error {
	if err := users.Seed(ctx, st, f.Users); err != nil {
		return fmt.Errorf("seed users: %w", err)
	}
	for _, fc := range f.Clients {
		c, err := fc.Model()
		if err != nil {
			return err
		}
		if err := mgr.Seed(ctx, c, fc.Secret); err != nil {
			return fmt.Errorf("seed %w", err)
		}
	}
	for i, ti := range f.TrustedIssuers {
		set, err := ti.KeySet()
		if err != nil {
			return fmt.Errorf("trusted_issuers[%d]: %w", i, err)
		}
		raw, err := json.Marshal(set)
		if err != nil {
			return fmt.Errorf("trusted_issuers[%d]: %w", i, err)
		}
		err = st.UpsertTrustedIssuer(ctx, storage.TrustedIssuer{
			Issuer: ti.Issuer, Subject: ti.Subject, AllowAnySubject: ti.AllowAnySubject, Scopes: ti.Scopes, JWKS: raw,
		})
		if err != nil {
			return fmt.Errorf("trusted_issuers[%d]: %w", i, err)
		}
	}
	return nil
}
