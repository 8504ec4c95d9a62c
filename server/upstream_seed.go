package server

import (
	"context"
	"errors"
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/storage"
)

// Connector sources: config.yaml's are upserted at every start, so the
// file stays their source of truth; the CLI's and the admin API's are
// kept until deleted.
const (
	ConnectorFromConfig = "config"
	ConnectorFromAPI    = "api"
)

// ConnectorRecord is c as the store keeps it: the whole config as YAML,
// sealed at rest with the client secret inside.
func ConnectorRecord(c config.Connector, source string) (*storage.Connector, error) {
	raw, err := yaml.Marshal(c)
	if err != nil {
		return nil, err
	}
	return &storage.Connector{ID: c.ID, Type: c.Type, Name: c.Name, Source: source, Config: raw}, nil
}

// seedConnectors upserts the connectors of config.yaml.
func seedConnectors(ctx context.Context, list []config.Connector, st storage.Store) error {
	if len(list) == 0 {
		return nil
	}
	cs, ok := st.(storage.Connectors)
	if !ok {
		return errors.New("seed connectors: the store keeps no connectors")
	}
	for i, c := range list {
		rec, err := ConnectorRecord(c, ConnectorFromConfig)
		if err != nil {
			return fmt.Errorf("connectors[%d]: %w", i, err)
		}
		if err := cs.UpsertConnector(ctx, rec); err != nil {
			return fmt.Errorf("connectors[%d]: %w", i, err)
		}
	}
	return nil
}
