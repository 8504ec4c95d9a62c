package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/agnivade/levenshtein"
)

// testSuiteEnv are the LATCH_ variables that Latch's own test suite and CI
// read; the server ignores them, so they are not misspellings.
var testSuiteEnv = []string{"LATCH_PAGES_DIR", "LATCH_REQUIRE_BROWSER", "LATCH_REQUIRE_NODE", "LATCH_REQUIRE_SLAPD", "LATCH_STRESS_DURATION"}

// UnknownEnv returns one warning for every LATCH_ variable of environ
// (os.Environ's KEY=VALUE form) that ApplyEnv does not read, naming the
// known variable nearest by edit distance. A misspelt variable is
// otherwise silently ignored, and the server runs on a value the user
// believes changed. Values are never part of a warning: they may be
// secrets.
func UnknownEnv(environ []string) []string {
	known := EnvNames()
	var warnings []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix) || slices.Contains(known, name) ||
			strings.HasPrefix(name, EnvPrefix+"TEST_") || slices.Contains(testSuiteEnv, name) {
			continue
		}
		warnings = append(warnings, fmt.Sprintf("%s is not a Latch variable and is ignored; did you mean %s?", name, nearest(name, known)))
	}
	return warnings
}

// nearest is the candidate with the smallest Levenshtein distance to name;
// the first in file order on a tie.
func nearest(name string, candidates []string) string {
	best, bestDist := "", -1
	for _, c := range candidates {
		if d := levenshtein.ComputeDistance(name, c); bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}
