package config

import (
	"os"
	"path/filepath"
	"testing"
)

// TestLoadResolvesRelativePathsAgainstTheFilesFolder: a config file read
// from another working directory names the same files as from its own.
func TestLoadResolvesRelativePathsAgainstTheFilesFolder(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	writeConfig := func(t *testing.T, body string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(t.TempDir()) // anywhere but dir

	for _, tc := range []struct {
		name, yaml string
		got        func(File) string
		want       string
	}{
		{"sqlite path", "database: {dsn: data/latch.db}\n", func(f File) string { return f.Database.DSN }, filepath.Join(dir, "data/latch.db")},
		{"default dsn", "", func(f File) string { return f.Database.DSN }, filepath.Join(dir, "latch.db")},
		{"sqlite URI keeps its parameters", "database: {dsn: 'file:latch.db?_busy_timeout=5000'}\n", func(f File) string { return f.Database.DSN },
			"file:" + filepath.Join(dir, "latch.db") + "?_busy_timeout=5000"},
		{"absolute path unchanged", "database: {dsn: /srv/latch.db}\n", func(f File) string { return f.Database.DSN }, "/srv/latch.db"},
		{"memory unchanged", "database: {dsn: ':memory:'}\n", func(f File) string { return f.Database.DSN }, ":memory:"},
		{"postgres DSN unchanged", "database: {driver: postgres, dsn: 'host=db dbname=latch'}\n", func(f File) string { return f.Database.DSN }, "host=db dbname=latch"},
		{"tls cert", "tls: {cert_file: tls/cert.pem, key_file: tls/key.pem}\n", func(f File) string { return f.TLS.CertFile }, filepath.Join(dir, "tls/cert.pem")},
		{"tls key", "tls: {cert_file: tls/cert.pem, key_file: tls/key.pem}\n", func(f File) string { return f.TLS.KeyFile }, filepath.Join(dir, "tls/key.pem")},
		{"jwks_file", "trusted_issuers: [{issuer: https://ci.example.com, subject: bot, jwks_file: ci.json, scopes: [deploy]}]\n",
			func(f File) string { return f.TrustedIssuers[0].JWKSFile }, filepath.Join(dir, "ci.json")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeConfig(t, tc.yaml)
			f, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.got(f); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestEnvironmentPathsStayRelativeToTheWorkingDirectory: a variable is
// typed in a shell, so its path means what the shell means.
func TestEnvironmentPathsStayRelativeToTheWorkingDirectory(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte("database: {dsn: file.db}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.ApplyEnv(func(k string) string { return map[string]string{"LATCH_DATABASE_DSN": "env.db"}[k] }); err != nil {
		t.Fatal(err)
	}
	if f.Database.DSN != "env.db" {
		t.Errorf("dsn = %q, want env.db as given", f.Database.DSN)
	}
}

// TestIssuerSetOnlyWhenConfigured: only an issuer left at its default may
// follow the listen address.
func TestIssuerSetOnlyWhenConfigured(t *testing.T) {
	noEnv := func(string) string { return "" }
	for _, tc := range []struct {
		name, yaml string
		env        func(string) string
		want       bool
	}{
		{"default", "listen: 127.0.0.1:0\n", noEnv, false},
		{"in the file", "issuer: https://auth.example.com\n", noEnv, true},
		{"even the default value, written out", "issuer: http://127.0.0.1:8080\n", noEnv, true},
		{"by LATCH_ISSUER", "", func(k string) string { return map[string]string{"LATCH_ISSUER": "https://id.example.com"}[k] }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse("config.yaml", []byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if err := f.ApplyEnv(tc.env); err != nil {
				t.Fatal(err)
			}
			if f.IssuerSet != tc.want {
				t.Errorf("IssuerSet = %v, want %v", f.IssuerSet, tc.want)
			}
		})
	}
}
