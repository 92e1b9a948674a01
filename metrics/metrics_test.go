package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestRouteObserverStatuses: each status gets its own series on first
// use; a status no server sends (a bug upstream, never client input)
// lands in "0" instead of growing the label set.
func TestRouteObserverStatuses(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg, Sources{})
	if err != nil {
		t.Fatal(err)
	}
	r := m.Requests("api", "in", "GET /x")
	for _, st := range []int{200, 200, 401, 99, 600, 70000, -1} {
		r.Observe(st, time.Millisecond)
	}
	tests := []struct {
		status string
		want   float64
	}{{"200", 2}, {"401", 1}, {"0", 4}}
	for _, tt := range tests {
		if got := testutil.ToFloat64(m.httpReqs.WithLabelValues("api", "GET /x", tt.status)); got != tt.want {
			t.Errorf("status %s: %v, want %v", tt.status, got, tt.want)
		}
	}
	if n := testutil.CollectAndCount(m.httpReqs); n != 3 {
		t.Errorf("%d request series, want 3", n)
	}
	if _, err := New(reg, Sources{}); err == nil {
		t.Error("registering twice on one registry did not fail")
	}
}

// TestAllocationFreeHotPath: counting a verdict, a request and a run
// allocates nothing once the instruments are resolved.
func TestAllocationFreeHotPath(t *testing.T) {
	m, err := New(prometheus.NewRegistry(), Sources{})
	if err != nil {
		t.Fatal(err)
	}
	valid := m.TokenValidation("f", "n", "")
	req := m.Requests("f", "in", "GET /x")
	req.Observe(200, time.Millisecond) // resolves the 200 series
	run := m.Runs("f")
	if a := testing.AllocsPerRun(1000, func() {
		valid.Inc()
		req.Observe(200, time.Millisecond)
		run.Finished(true, time.Millisecond)
	}); a != 0 {
		t.Errorf("%v allocations per request", a)
	}
}
