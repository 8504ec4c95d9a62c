//go:build race

package reliability_test

// raceEnabled: the tests run under the race detector, so the latch binary
// they start is built with it too (and from the same cached packages).
const raceEnabled = true
