package latchtest_test

import (
	"slices"
	"testing"
	"time"

	"github.com/latchauth/latch/latchtest"
)

// BenchmarkNew: a server ready to answer, from nothing. The target is a
// median under 20 ms (reported as ms/median); the first New of a process
// also makes the process's RSA key and password hash.
func BenchmarkNew(b *testing.B) {
	var took []time.Duration
	for b.Loop() {
		start := time.Now()
		srv := latchtest.New(b)
		took = append(took, time.Since(start))
		b.StopTimer()
		srv.Close()
		b.StartTimer()
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2])/float64(time.Millisecond), "ms/median")
}
