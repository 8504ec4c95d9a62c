package storage

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// migration is one versioned schema step. Steps are plain SQL so what each
// version did stays readable and never changes with the Go models; {{...}}
// placeholders stand for the few types the two dialects spell differently.
type migration struct {
	version int
	name    string
	sql     []string
}

// requestTables hold fosite requests; they share one row shape (Hydra's
// design): the token is known only by its signature, the request and
// session are serialized, and what we query by is indexed.
var requestTables = []string{tableAccess, tableRefresh, tableCode, tableOIDC, tablePKCE, tablePAR, tableChallenge}

func requestTableDDL(table string) []string {
	return []string{
		`CREATE TABLE ` + table + ` (
			signature          VARCHAR(128) PRIMARY KEY,
			request_id         VARCHAR(64)  NOT NULL,
			requested_at       {{ts}}       NOT NULL,
			client_id          VARCHAR(255) NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
			subject            VARCHAR(255) NOT NULL DEFAULT '',
			requested_scopes   TEXT NOT NULL DEFAULT '',
			granted_scopes     TEXT NOT NULL DEFAULT '',
			requested_audience TEXT NOT NULL DEFAULT '',
			granted_audience   TEXT NOT NULL DEFAULT '',
			form               TEXT NOT NULL DEFAULT '',
			session_data       TEXT NOT NULL DEFAULT '',
			extra              TEXT NOT NULL DEFAULT '',
			access_signature   VARCHAR(128) NOT NULL DEFAULT '',
			active             BOOLEAN NOT NULL DEFAULT TRUE,
			expires_at         {{ts}} NULL
		)`,
		`CREATE INDEX ` + table + `_request_id_idx ON ` + table + ` (request_id)`,
		`CREATE INDEX ` + table + `_client_id_idx ON ` + table + ` (client_id)`,
		`CREATE INDEX ` + table + `_subject_idx ON ` + table + ` (subject)`,
		`CREATE INDEX ` + table + `_expires_at_idx ON ` + table + ` (expires_at)`,
	}
}

func migrations() []migration {
	v1 := []string{
		`CREATE TABLE clients (
			id          VARCHAR(255) PRIMARY KEY,
			secret_hash TEXT NOT NULL DEFAULT '',
			data        TEXT NOT NULL,
			created_at  {{ts}} NOT NULL,
			updated_at  {{ts}} NOT NULL
		)`,
		`CREATE TABLE users (
			username       VARCHAR(255) PRIMARY KEY,
			password_hash  TEXT NOT NULL,
			email          VARCHAR(255) NOT NULL DEFAULT '',
			email_verified BOOLEAN NOT NULL DEFAULT FALSE,
			name           VARCHAR(255) NOT NULL DEFAULT '',
			groups_json    TEXT NOT NULL DEFAULT '[]',
			claims_json    TEXT NOT NULL DEFAULT '{}',
			created_at     {{ts}} NOT NULL,
			updated_at     {{ts}} NOT NULL
		)`,
		`CREATE TABLE signing_keys (
			kid         VARCHAR(64) PRIMARY KEY,
			algorithm   VARCHAR(16) NOT NULL,
			private_jwk TEXT NOT NULL,
			created_at  {{ts}} NOT NULL,
			retired_at  {{ts}} NULL,
			expires_at  {{ts}} NULL
		)`,
		`CREATE TABLE settings (
			name  VARCHAR(64) PRIMARY KEY,
			value TEXT NOT NULL
		)`,
		`CREATE TABLE trusted_issuers (
			issuer            VARCHAR(255) NOT NULL,
			subject           VARCHAR(255) NOT NULL,
			allow_any_subject BOOLEAN NOT NULL DEFAULT FALSE,
			scopes            TEXT NOT NULL DEFAULT '',
			jwks              TEXT NOT NULL,
			PRIMARY KEY (issuer, subject)
		)`,
		`CREATE TABLE used_jtis (
			jti_hash   VARCHAR(64) PRIMARY KEY,
			expires_at {{ts}} NOT NULL
		)`,
		`CREATE INDEX used_jtis_expires_at_idx ON used_jtis (expires_at)`,
	}
	for _, t := range []string{tableAccess, tableRefresh, tableCode, tableOIDC, tablePKCE, tablePAR} {
		v1 = append(v1, requestTableDDL(t)...)
	}
	v2 := append(requestTableDDL(tableChallenge),
		`CREATE TABLE login_sessions (
			id         VARCHAR(64) PRIMARY KEY,
			username   VARCHAR(255) NOT NULL REFERENCES users(username) ON DELETE CASCADE,
			auth_time  {{ts}} NOT NULL,
			expires_at {{ts}} NOT NULL
		)`,
		`CREATE INDEX login_sessions_username_idx ON login_sessions (username)`,
		`CREATE INDEX login_sessions_expires_at_idx ON login_sessions (expires_at)`,
		`CREATE TABLE consents (
			username   VARCHAR(255) NOT NULL REFERENCES users(username) ON DELETE CASCADE,
			client_id  VARCHAR(255) NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
			scopes     TEXT NOT NULL,
			created_at {{ts}} NOT NULL,
			PRIMARY KEY (username, client_id)
		)`,
		`CREATE INDEX consents_client_id_idx ON consents (client_id)`,
	)
	// rotated_at: when a refresh token was rotated while a grace period
	// lets it work a little longer. Every request table gets it so all
	// keep one row shape.
	for _, t := range requestTables {
		v2 = append(v2, `ALTER TABLE `+t+` ADD COLUMN rotated_at {{ts}} NULL`)
	}
	return []migration{
		{version: 1, name: "initial schema", sql: v1},
		{version: 2, name: "login sessions, consents, authorization challenges, refresh grace", sql: v2},
		{version: 3, name: "registration access tokens", sql: []string{
			`ALTER TABLE clients ADD COLUMN registration_token_hash VARCHAR(64) NOT NULL DEFAULT ''`,
		}},
		// The device table starts as the shared request row (rotated_at
		// included, as migration 2 gave every request table), so the row
		// shape stays one; the device columns follow.
		{version: 4, name: "device authorization (RFC 8628)", sql: append(requestTableDDL(tableDevice),
			`ALTER TABLE `+tableDevice+` ADD COLUMN rotated_at {{ts}} NULL`,
			`ALTER TABLE `+tableDevice+` ADD COLUMN user_code_signature VARCHAR(64) NOT NULL DEFAULT ''`,
			`ALTER TABLE `+tableDevice+` ADD COLUMN status VARCHAR(16) NOT NULL DEFAULT 'pending'`,
			`ALTER TABLE `+tableDevice+` ADD COLUMN interval_seconds INTEGER NOT NULL DEFAULT 5`,
			`ALTER TABLE `+tableDevice+` ADD COLUMN last_polled_at {{ts}} NULL`,
			`CREATE UNIQUE INDEX `+tableDevice+`_user_code_idx ON `+tableDevice+` (user_code_signature)`,
		)},
		{version: 5, name: "origin of unauthenticated rows (pending.go)", sql: originDDL()},
		{version: 7, name: "failure counters of login throttling", sql: []string{
			`CREATE TABLE ` + tableThrottle + ` (
				counter_key     VARCHAR(64) PRIMARY KEY,
				failures        INTEGER NOT NULL,
				last_failure_at {{ts}} NOT NULL,
				expires_at      {{ts}} NOT NULL
			)`,
			`CREATE INDEX ` + tableThrottle + `_expires_at_idx ON ` + tableThrottle + ` (expires_at)`,
		}},
		// Second factors go with their user; a login session remembers
		// which factors it verified (RFC 8176 amr values, space-separated;
		// empty in sessions from before: a password).
		{version: 14, name: "second factors: TOTP, recovery codes, session amr", sql: []string{
			`CREATE TABLE user_totp (
				username   VARCHAR(255) PRIMARY KEY REFERENCES users(username) ON DELETE CASCADE,
				secret     TEXT NOT NULL,
				confirmed  BOOLEAN NOT NULL DEFAULT FALSE,
				last_step  BIGINT NOT NULL DEFAULT 0,
				created_at {{ts}} NOT NULL
			)`,
			`CREATE TABLE user_recovery_codes (
				username  VARCHAR(255) NOT NULL REFERENCES users(username) ON DELETE CASCADE,
				code_hash VARCHAR(64) NOT NULL,
				used_at   {{ts}} NULL,
				PRIMARY KEY (username, code_hash)
			)`,
			`ALTER TABLE login_sessions ADD COLUMN amr VARCHAR(255) NOT NULL DEFAULT ''`,
		}},
		// What the account page shows of each session: the browser it
		// was started in, from where, and when it was last used.
		{version: 15, name: "login session device, address and last use; passkeys", sql: []string{
			`ALTER TABLE login_sessions ADD COLUMN user_agent VARCHAR(256) NOT NULL DEFAULT ''`,
			`ALTER TABLE login_sessions ADD COLUMN address VARCHAR(64) NOT NULL DEFAULT ''`,
			`ALTER TABLE login_sessions ADD COLUMN last_seen_at {{ts}} NULL`,
			// Passkeys (WebAuthn credentials), several per user; the
			// credential record (public key, sign counter, backup flags)
			// is go-webauthn's JSON.
			`CREATE TABLE passkeys (
				id           VARCHAR(255) PRIMARY KEY,
				username     VARCHAR(255) NOT NULL REFERENCES users(username) ON DELETE CASCADE,
				name         VARCHAR(64)  NOT NULL,
				credential   TEXT NOT NULL,
				created_at   {{ts}} NOT NULL,
				last_used_at {{ts}} NULL
			)`,
			`CREATE INDEX passkeys_username_idx ON passkeys (username)`,
			// WebAuthn ceremonies waiting for the authenticator's answer:
			// single-use, short-lived, counted per address.
			`CREATE TABLE webauthn_ceremonies (
				id          VARCHAR(64) PRIMARY KEY,
				kind        VARCHAR(16) NOT NULL,
				username    VARCHAR(255) NOT NULL DEFAULT '',
				address_key VARCHAR(64) NOT NULL,
				data        TEXT NOT NULL,
				expires_at  {{ts}} NOT NULL
			)`,
			`CREATE INDEX webauthn_ceremonies_address_idx ON webauthn_ceremonies (address_key, expires_at)`,
			`CREATE INDEX webauthn_ceremonies_expires_at_idx ON webauthn_ceremonies (expires_at)`,
		}},
		// RFC 8693: which grant was exchanged from which (exchange.go).
		{version: 17, name: "token exchange lineage", sql: []string{
			`CREATE TABLE ` + tableExchanged + ` (
				request_id          VARCHAR(64) NOT NULL,
				ancestor_request_id VARCHAR(64) NOT NULL,
				expires_at          {{ts}} NOT NULL,
				PRIMARY KEY (request_id, ancestor_request_id)
			)`,
			`CREATE INDEX ` + tableExchanged + `_ancestor_idx ON ` + tableExchanged + ` (ancestor_request_id)`,
			`CREATE INDEX ` + tableExchanged + `_expires_at_idx ON ` + tableExchanged + ` (expires_at)`,
		}},
		// OIDC Back-Channel Logout 1.0 (backchannel.go): the clients each
		// login session took part in (by the session's stored handle; no
		// foreign key, so that recording one never fails on a session
		// ended a moment before), and the queue of logout tokens to send.
		// A deleted client takes its rows with it.
		{version: 18, name: "back-channel logout: session clients and the delivery queue", sql: []string{
			`CREATE TABLE session_clients (
				session_id VARCHAR(64)  NOT NULL,
				client_id  VARCHAR(255) NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
				subject    VARCHAR(255) NOT NULL,
				created_at {{ts}} NOT NULL,
				expires_at {{ts}} NOT NULL,
				PRIMARY KEY (session_id, client_id)
			)`,
			`CREATE INDEX session_clients_expires_at_idx ON session_clients (expires_at)`,
			`CREATE TABLE logout_deliveries (
				id              VARCHAR(64)  PRIMARY KEY,
				client_id       VARCHAR(255) NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
				subject         VARCHAR(255) NOT NULL,
				session_id      VARCHAR(64)  NOT NULL,
				attempts        INTEGER NOT NULL DEFAULT 0,
				next_attempt_at {{ts}} NOT NULL,
				created_at      {{ts}} NOT NULL,
				expires_at      {{ts}} NOT NULL
			)`,
			`CREATE INDEX logout_deliveries_next_attempt_at_idx ON logout_deliveries (next_attempt_at)`,
			`CREATE INDEX logout_deliveries_expires_at_idx ON logout_deliveries (expires_at)`,
		}},
		// The secret of a client_secret_jwt client (RFC 7523 §2.2), which
		// verifies its HMAC assertions: sealed like a signing key
		// (clientSecrets), empty for every other client.
		{version: 19, name: "client_secret_jwt secrets, sealed", sql: []string{
			`ALTER TABLE clients ADD COLUMN jwt_secret TEXT NOT NULL DEFAULT ''`,
		}},
		// Upstream identity providers (connectors.go): those of
		// config.yaml and those added by the CLI or admin API, the whole
		// config sealed at rest since it holds the upstream client secret;
		// the links of upstream subjects to local users, with what a
		// refresh needs to ask the upstream again (sealed); and which
		// connector a login session signed in through. The per-attempt
		// state of an upstream sign-in is a webauthn_ceremonies row (kind
		// "upstream"): single-use, short-lived, counted per address.
		{version: 20, name: "connectors: upstream identity providers and links", sql: []string{
			`CREATE TABLE connectors (
				id         VARCHAR(64) PRIMARY KEY,
				type       VARCHAR(16) NOT NULL,
				name       VARCHAR(64) NOT NULL,
				source     VARCHAR(16) NOT NULL,
				config     TEXT NOT NULL,
				created_at {{ts}} NOT NULL,
				updated_at {{ts}} NOT NULL
			)`,
			`CREATE TABLE connector_links (
				id           VARCHAR(64) PRIMARY KEY,
				connector_id VARCHAR(64) NOT NULL,
				subject      VARCHAR(255) NOT NULL,
				username     VARCHAR(255) NOT NULL REFERENCES users(username) ON DELETE CASCADE,
				data         TEXT NOT NULL DEFAULT '',
				created_at   {{ts}} NOT NULL,
				updated_at   {{ts}} NOT NULL
			)`,
			`CREATE UNIQUE INDEX connector_links_subject_idx ON connector_links (connector_id, subject)`,
			`CREATE UNIQUE INDEX connector_links_user_idx ON connector_links (connector_id, username)`,
			`CREATE INDEX connector_links_username_idx ON connector_links (username)`,
			`ALTER TABLE login_sessions ADD COLUMN connector VARCHAR(64) NOT NULL DEFAULT ''`,
		}},
	}
}

type schemaMigration struct {
	Version   int `gorm:"primaryKey"`
	Name      string
	AppliedAt time.Time
}

func (schemaMigration) TableName() string { return "schema_migrations" }

// Migrate brings the schema to the newest version. It is idempotent and safe
// to run from several processes at once: SQLite serialises them on the write
// lock, PostgreSQL on an advisory lock held for the transaction.
func (s *GormStore) Migrate(ctx context.Context) error {
	err := s.tx(ctx, func(_ context.Context, tx *gorm.DB) error {
		if s.dialect == "postgres" {
			if err := tx.Exec(`SELECT pg_advisory_xact_lock(4242424242)`).Error; err != nil {
				return err
			}
		}
		if err := tx.Exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       VARCHAR(255) NOT NULL,
			applied_at ` + s.ddlType("{{ts}}") + ` NOT NULL)`).Error; err != nil {
			return err
		}
		var applied []int
		if err := tx.Model(&schemaMigration{}).Pluck("version", &applied).Error; err != nil {
			return err
		}
		done := map[int]bool{}
		for _, v := range applied {
			done[v] = true
		}
		for _, m := range migrations() {
			if done[m.version] {
				continue
			}
			for _, stmt := range m.sql {
				if err := tx.Exec(s.ddlType(stmt)).Error; err != nil {
					return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
				}
			}
			rec := schemaMigration{Version: m.version, Name: m.name, AppliedAt: s.now().UTC()}
			if err := tx.Create(&rec).Error; err != nil {
				return err
			}
			s.log.Info("applied migration", "version", m.version, "name", m.name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	// Outside the transaction above: preparing needs the write connection.
	if _, inTx := txOf(ctx); !inTx {
		if err := s.prepareWrites(ctx); err != nil {
			return fmt.Errorf("migrate: prepare writes: %w", err)
		}
	}
	return nil
}

// SchemaVersion returns the newest applied migration (0 for an empty database).
func (s *GormStore) SchemaVersion(ctx context.Context) (int, error) {
	var v *int
	err := s.readPool.WithContext(ctx).Model(&schemaMigration{}).Select("MAX(version)").Scan(&v).Error
	if err != nil {
		return 0, translate(err)
	}
	if v == nil {
		return 0, nil
	}
	return *v, nil
}

func (s *GormStore) ddlType(stmt string) string {
	ts := "DATETIME"
	if s.dialect == "postgres" {
		ts = "TIMESTAMPTZ"
	}
	return strings.ReplaceAll(stmt, "{{ts}}", ts)
}
