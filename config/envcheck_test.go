package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestUnknownEnvNamesTheNearestKnownVariable(t *testing.T) {
	got := UnknownEnv([]string{
		"LATCH_ISSUR=https://id.example.com",
		"LATCH_DATABASE_DNS=/srv/latch.db",
		"LATCH_ISSUER=https://id.example.com", // known
		"PATH=/usr/bin",                       // not ours
		"LATCH_TEST_POSTGRES_DSN=host=x",      // the test suite's
		"LATCH_STRESS_DURATION=1s",            // the test suite's
		"LATCH_REQUIRE_NODE=1",                // CI's, for nodetests
		"LATCH_LOG_LEVL=debug=yes",            // a value with "=" is not part of the name
	})
	want := []string{
		"LATCH_ISSUR is not a Latch variable and is ignored; did you mean LATCH_ISSUER?",
		"LATCH_DATABASE_DNS is not a Latch variable and is ignored; did you mean LATCH_DATABASE_DSN?",
		"LATCH_LOG_LEVL is not a Latch variable and is ignored; did you mean LATCH_LOG_LEVEL?",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("UnknownEnv =\n%q\nwant\n%q", got, want)
	}
}

func TestUnknownEnvNeverShowsAValue(t *testing.T) {
	warnings := UnknownEnv([]string{"LATCH_SECRET_SYSTEM=s3cr3t-value-that-must-not-leak"})
	if len(warnings) != 1 {
		t.Fatalf("got %q, want one warning", warnings)
	}
	for _, w := range warnings {
		if want := "did you mean LATCH_SECRETS_SYSTEM?"; !strings.Contains(w, want) || strings.Contains(w, "s3cr3t") {
			t.Errorf("warning %q: want %q and no value", w, want)
		}
	}
}
