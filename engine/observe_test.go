package engine

import (
	"maps"
	"sync"
	"testing"
	"time"
)

// fakeObserver counts what the runtime reports, keyed by the labels it
// resolved at deploy.
type fakeObserver struct {
	mu       sync.Mutex
	resolved []string       // "runs:flow", "errs:flow/node/type" in call order
	counts   map[string]int // "ok:flow", "error:flow", "errs:flow/node/type"
}

type fakeCounter struct {
	o   *fakeObserver
	key string
}

func (c fakeCounter) Inc() { c.o.add(c.key) }

type fakeRuns struct {
	o    *fakeObserver
	flow string
}

func (r fakeRuns) Finished(ok bool, d time.Duration) {
	if d <= 0 {
		r.o.add("nonpositive:" + r.flow)
	}
	if ok {
		r.o.add("ok:" + r.flow)
	} else {
		r.o.add("error:" + r.flow)
	}
}

func (o *fakeObserver) add(k string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.counts[k]++
}

func (o *fakeObserver) Runs(flow string) RunObserver {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.resolved = append(o.resolved, "runs:"+flow)
	return fakeRuns{o, flow}
}

func (o *fakeObserver) StepErrors(flow, node, typ string) Counter {
	o.mu.Lock()
	defer o.mu.Unlock()
	k := "errs:" + flow + "/" + node + "/" + typ
	o.resolved = append(o.resolved, k)
	return fakeCounter{o, k}
}

func (o *fakeObserver) snapshot() (map[string]int, []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return maps.Clone(o.counts), append([]string(nil), o.resolved...)
}

// TestObserverCountsRunsAndStepErrors: the runtime resolves its
// instruments at deploy (never when only validating) and counts every
// run's outcome and every failed step, handled by an error wire or not.
func TestObserverCountsRunsAndStepErrors(t *testing.T) {
	h := newHarness()
	obs := &fakeObserver{counts: map[string]int{}}
	rt := newTestRuntime(t, h, Options{Observer: obs})
	f := mkFlow("f", []Node{node("t", "test.trigger", nil), node("x", "test.fail", map[string]any{"message": "nope"}),
		node("c", "test.capture", nil)}, "t.out>x", "x.error>c")
	if err := rt.Validate(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	if _, resolved := obs.snapshot(); len(resolved) != 0 {
		t.Fatalf("validation resolved instruments %v", resolved)
	}
	deploy(t, rt, f, 1)
	g := mkFlow("g", []Node{node("t", "test.trigger", nil), node("x", "test.fail", map[string]any{"message": "nope"})}, "t.out>x")
	deploy(t, rt, g, 1)
	for range 2 {
		if _, err := rt.Run(t.Context(), "f", "", Msg{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := rt.Run(t.Context(), "g", "", Msg{}); err == nil {
		t.Fatal("run of g did not fail")
	}
	counts, resolved := obs.snapshot()
	wantCounts := map[string]int{
		"ok:f": 2, "errs:f/x/test.fail": 2,
		"error:g": 1, "errs:g/x/test.fail": 1,
	}
	if !maps.Equal(counts, wantCounts) {
		t.Errorf("counts %v, want %v", counts, wantCounts)
	}
	wantResolved := []string{
		"runs:f", "errs:f/t/test.trigger", "errs:f/x/test.fail", "errs:f/c/test.capture",
		"runs:g", "errs:g/t/test.trigger", "errs:g/x/test.fail",
	}
	if len(resolved) != len(wantResolved) {
		t.Fatalf("resolved %v, want %v", resolved, wantResolved)
	}
	for i := range resolved {
		if resolved[i] != wantResolved[i] {
			t.Errorf("resolved[%d] = %q, want %q", i, resolved[i], wantResolved[i])
		}
	}
}
