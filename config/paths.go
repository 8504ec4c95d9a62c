package config

import (
	"path/filepath"
	"strings"
)

// resolvePaths makes the relative file paths of a configuration file
// relative to the folder that holds it, as nginx, Caddy and Prometheus do:
// `latch clients list --config /srv/latch/config.yaml`, run from any
// folder or from cron, must open /srv/latch/latch.db and never create an
// empty latch.db in the working directory. It covers the built-in default
// dsn too, so a file that leaves database.dsn out keeps its database
// beside itself. Values from LATCH_* variables and flags are applied
// afterwards and stay relative to the working directory, like any path
// typed in a shell.
func (f *File) resolvePaths(dir string) {
	if f.Database.Driver == "sqlite" {
		f.Database.DSN = resolveSQLite(dir, f.Database.DSN)
	}
	f.TLS.CertFile = resolvePath(dir, f.TLS.CertFile)
	f.TLS.KeyFile = resolvePath(dir, f.TLS.KeyFile)
	for i := range f.TrustedIssuers {
		f.TrustedIssuers[i].JWKSFile = resolvePath(dir, f.TrustedIssuers[i].JWKSFile)
	}
}

func resolvePath(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// resolveSQLite resolves the file of a SQLite DSN: a plain path or a
// "file:PATH?params" URI. In-memory databases have no file.
func resolveSQLite(dir, dsn string) string {
	if dsn == ":memory:" || strings.Contains(dsn, "mode=memory") {
		return dsn
	}
	rest, isURI := strings.CutPrefix(dsn, "file:")
	if !isURI {
		return resolvePath(dir, dsn)
	}
	path, query, hasQuery := strings.Cut(rest, "?")
	if path == "" || path == ":memory:" {
		return dsn
	}
	out := "file:" + resolvePath(dir, path)
	if hasQuery {
		out += "?" + query
	}
	return out
}
