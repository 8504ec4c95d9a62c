package config

import (
	"strings"
	"testing"
	"time"
)

func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestApplyEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		check   func(File) bool
		wantErr []string // each must start a line of the error
	}{
		{"string", map[string]string{"LATCH_ISSUER": "https://id.example.com", "LATCH_DATABASE_DSN": "x.db"},
			func(f File) bool { return f.Issuer == "https://id.example.com" && f.Database.DSN == "x.db" }, nil},
		{"nested strings", map[string]string{"LATCH_DATABASE_DRIVER": "postgres", "LATCH_LOG_LEVEL": "debug",
			"LATCH_SECRETS_SYSTEM": "s", "LATCH_ADMIN_TOKEN": "t", "LATCH_TLS_CERT_FILE": "c.pem"},
			func(f File) bool {
				return f.Database.Driver == "postgres" && f.Log.Level == "debug" && f.Secrets.System == "s" &&
					f.Admin.Token == "t" && f.TLS.CertFile == "c.pem"
			}, nil},
		{"bool", map[string]string{"LATCH_INSECURE_HTTP": "true", "LATCH_TOKENS_REFRESH_TOKEN_ROTATION": "false"},
			func(f File) bool { return f.InsecureHTTP && !f.Tokens.RefreshTokenRotation }, nil},
		{"duration", map[string]string{"LATCH_TOKENS_ACCESS_TOKEN_LIFESPAN": "5m", "LATCH_JANITOR_INTERVAL": "0s"},
			func(f File) bool {
				return f.Tokens.AccessTokenLifespan.Duration == 5*time.Minute && f.Janitor.Interval.Duration == 0
			}, nil},
		{"empty is ignored", map[string]string{"LATCH_LISTEN": ""},
			func(f File) bool { return f.Listen == "127.0.0.1:8080" }, nil},
		{"bad values, each named", map[string]string{
			"LATCH_TOKENS_ACCESS_TOKEN_LIFESPAN": "abc",
			"LATCH_REGISTRATION_ENABLED":         "sure",
			"LATCH_LISTEN":                       "0.0.0.0:1",
		}, func(f File) bool { return f.Listen == "0.0.0.0:1" }, []string{
			`LATCH_TOKENS_ACCESS_TOKEN_LIFESPAN: invalid duration "abc"`,
			`LATCH_REGISTRATION_ENABLED: invalid boolean "sure"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := Default()
			err := f.ApplyEnv(mapEnv(tt.env))
			if tt.wantErr == nil && err != nil {
				t.Fatalf("ApplyEnv: %v", err)
			}
			if tt.wantErr != nil {
				if err == nil {
					t.Fatal("no error")
				}
				lines := strings.Split(err.Error(), "\n")
				if len(lines) != len(tt.wantErr) {
					t.Errorf("got %d errors, want %d: %v", len(lines), len(tt.wantErr), err)
				}
				for _, w := range tt.wantErr {
					if !containsPrefix(lines, w) {
						t.Errorf("no error line starts with %q: %v", w, err)
					}
				}
			}
			if !tt.check(f) {
				t.Errorf("unexpected result: %+v", f)
			}
		})
	}
}

// Environment beats the file, which beats the defaults.
func TestEnvPrecedence(t *testing.T) {
	f := parse(t, "listen: 127.0.0.1:9000\nlog: {level: warn, format: json}\n")
	if err := f.ApplyEnv(mapEnv(map[string]string{"LATCH_LOG_LEVEL": "error"})); err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"env over file", f.Log.Level, "error"},
		{"file without env", f.Log.Format, "json"},
		{"file over default", f.Listen, "127.0.0.1:9000"},
		{"default", f.Database.DSN, "latch.db"},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if c.got != c.want {
				t.Errorf("got %q, want %q", c.got, c.want)
			}
		})
	}
}

func TestEnvNames(t *testing.T) {
	names := EnvNames()
	all := " " + strings.Join(names, " ") + " "
	for _, want := range []string{
		"LATCH_ISSUER", "LATCH_LISTEN", "LATCH_INSECURE_HTTP", "LATCH_TLS_KEY_FILE", "LATCH_SHUTDOWN_TIMEOUT",
		"LATCH_LOG_FORMAT", "LATCH_JANITOR_INTERVAL", "LATCH_DATABASE_DRIVER", "LATCH_DATABASE_DSN",
		"LATCH_SECRETS_SYSTEM", "LATCH_ADMIN_TOKEN", "LATCH_TOKENS_DEVICE_CODE_LIFESPAN",
		"LATCH_TOKENS_REFRESH_TOKEN_GRACE_PERIOD", "LATCH_TOKENS_ID_TOKEN_SIGNING_ALG", "LATCH_REGISTRATION_INITIAL_ACCESS_TOKEN",
		"LATCH_MFA_REQUIRED", "LATCH_LOGIN_PASSWORD_FORM",
		"LATCH_TOKENS_DPOP_REQUIRE_NONCE",
	} {
		if !strings.Contains(all, " "+want+" ") {
			t.Errorf("EnvNames lacks %s", want)
		}
	}
	for _, n := range names {
		if strings.HasPrefix(n, "LATCH_CLIENTS") || strings.HasPrefix(n, "LATCH_USERS") || strings.HasPrefix(n, "LATCH_TRUSTED") || strings.HasPrefix(n, "LATCH_CONNECTORS") {
			t.Errorf("lists have no variables, got %s", n)
		}
	}
	if len(names) != 29 {
		t.Errorf("got %d names, want 29: %v", len(names), names)
	}
}
