// Package reliability holds the tests that treat Latch as a
// whole system rather than as handlers: sustained concurrent load on one
// SQLite file (TestStress), SIGKILL of a real `latch serve` in the middle
// of writes (TestCrash), storage that fails underneath a running server
// and then recovers (TestFaults*), and two processes sharing one
// PostgreSQL database (TestScaleOutPostgres).
//
// The package has no code of its own; everything is in its tests, which
// run with the others (`go test -race ./reliability/`). Each test is
// bounded in time: LATCH_STRESS_DURATION overrides the length of the
// stress run (10s, or 2s with -short), and TestScaleOutPostgres needs
// LATCH_TEST_POSTGRES_DSN (it skips without it, and fails when CI is set).
package reliability
