package bench

import (
	"syscall"
	"testing"
	"time"
)

// BenchmarkTraceFlush measures one batch of flowd's trace writer as a
// JWKS endpoint under load leaves it every 250 ms: the 100 newest traces
// of the flow (store.DefaultRunsPerFlow; the first of each second with
// message snapshots, the rest light) encoded and written to bbolt in one
// transaction, older runs trimmed. The writer does this on a goroutine of
// its own; on a server with one core (GOMAXPROCS=1, as bench/run.sh pins
// it) requests wait while it runs, so its CPU per batch is how long a
// flush can hold up the requests in flight. cpu-ns is the process's CPU
// (getrusage: every goroutine, GC included) over the flush.
func BenchmarkTraceFlush(b *testing.B) {
	p := setup(b)
	const perBatch = 100
	flush := p.fd.App().FlushTraces
	flush()
	var cpu, wall time.Duration
	n := 0
	for b.Loop() {
		b.StopTimer()
		for range perBatch {
			if w := serve(p.flowd, "GET", "/.well-known/jwks.json", "", ""); w.Code != 200 {
				b.Fatalf("jwks: %d", w.Code)
			}
		}
		b.StartTimer()
		c0, t0 := processCPU(), time.Now()
		flush()
		wall += time.Since(t0)
		cpu += processCPU() - c0
		n++
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/flush")
	b.ReportMetric(float64(wall.Nanoseconds())/float64(n), "wall-ns/flush")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(n*perBatch), "cpu-ns/trace")
}

// processCPU is the user+system CPU time of the whole process.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
