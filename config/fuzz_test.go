package config

import "testing"

// FuzzParse decodes arbitrary YAML with Parse and validates what it gets:
// neither may panic.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"",
		"issuer: http://127.0.0.1:8080\ninsecure_http: true\n",
		"listen: ':8080'\nshutdown_timeout: 5s\n",
		"database:\n  driver: sqlite\n  dsn: ':memory:'\n",
		"clients:\n  - id: a\n    redirect_uris: [http://x/cb]\n",
		"unknown: 1\n",
		"listen: [1, 2]\n",
		"a: 1\n---\nb: 2\n",
		"---\n---\n",
		"shutdown_timeout: forever\n",
		"&a [*a]\n",
		"{",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		cfg, err := Parse("fuzz.yaml", []byte(data))
		if err != nil {
			return
		}
		_ = cfg.Validate()
	})
}
