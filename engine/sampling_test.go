package engine

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestSnapshotRate: past SnapshotsPerSecond, triggered runs leave light
// traces (path, ports, durations; no messages), except that a failed
// step keeps its message; Runtime.Run always takes snapshots.
func TestSnapshotRate(t *testing.T) {
	h := newHarness()
	rt := newTestRuntime(t, h, Options{SnapshotsPerSecond: 3})
	deploy(t, rt, mkFlow("f", []Node{node("t", "test.trigger", nil),
		node("s", "test.set", map[string]any{"set": map[string]string{"x": "msg.n * 2"}}),
		node("c", "test.capture", nil)}, "t.out>s", "s.out>c"), 1)
	tc := h.trigger("t")
	var full, light int
	for i := range 10 {
		tr, err := tc.Fire(t.Context(), Msg{"n": i})
		if err != nil {
			t.Fatal(err)
		}
		if got := stepSummary(tr); len(got) != 3 || got[1] != "s:out" {
			t.Fatalf("steps %v", got)
		}
		if tr.Light {
			light++
			for _, s := range tr.Steps {
				if s.Msg != nil || s.Node == "" || s.Type == "" {
					t.Errorf("light trace step %+v", s)
				}
			}
			continue
		}
		full++
		if m, _ := tr.Steps[1].Msg.(map[string]any); m["x"] != i*2 {
			t.Errorf("full trace step 1 msg %v", tr.Steps[1].Msg)
		}
	}
	// Ten runs in well under a second (a second boundary may fall between
	// them, giving a second allowance).
	if full < 3 || full > 6 || light != 10-full {
		t.Errorf("full %d light %d, want 3 (at most 6 across a second boundary)", full, light)
	}
	// The messages reached the blocks all the same.
	if got := h.msgs("c"); len(got) != 10 || got[9]["x"] != 18 {
		t.Errorf("captured %d messages", len(got))
	}
	// Manual runs are always complete.
	tr, err := rt.Run(t.Context(), "f", "t", Msg{"n": 5})
	if err != nil || tr.Light || tr.Steps[2].Msg == nil {
		t.Errorf("Run: light %v, %v", tr.Light, err)
	}
}

func TestSnapshotRateFailedStepKeepsMessage(t *testing.T) {
	h := newHarness()
	rt := newTestRuntime(t, h, Options{SnapshotsPerSecond: 1})
	deploy(t, rt, mkFlow("f", []Node{node("t", "test.trigger", nil),
		node("s", "test.set", map[string]any{"set": map[string]string{"password": "'hunter2'", "y": "1"}}),
		node("f", "test.fail", nil)}, "t.out>s", "s.out>f"), 1)
	tc := h.trigger("t")
	var tr *Trace
	for range 3 {
		var err error
		tr, err = tc.Fire(t.Context(), Msg{"n": 1})
		if !errors.Is(err, errTestFail) {
			t.Fatalf("err %v", err)
		}
	}
	if !tr.Light || tr.Status != StatusError || tr.ErrorNode != "f" {
		t.Fatalf("third run: light %v status %s node %s", tr.Light, tr.Status, tr.ErrorNode)
	}
	last := tr.Steps[len(tr.Steps)-1]
	m, _ := last.Msg.(map[string]any)
	if last.Node != "f" || m["y"] != 1 || m["password"] != Redacted {
		t.Errorf("failed step %+v", last)
	}
	if tr.Steps[0].Msg != nil || tr.Steps[1].Msg != nil {
		t.Errorf("steps before the failure carry messages in a light trace")
	}
}

// The size limit holds in light traces too.
func TestSnapshotRateSizeLimit(t *testing.T) {
	h := newHarness()
	rt := newTestRuntime(t, h, Options{SnapshotsPerSecond: -1, Limits: Limits{MaxMessageBytes: 1000}})
	deploy(t, rt, mkFlow("f", []Node{node("t", "test.trigger", nil),
		node("s", "test.set", map[string]any{"set": map[string]string{"big": "repeat('x', 2000)"}})}, "t.out>s"), 1)
	rt.ring("f").snaps.rate = 0 // every run light
	_, err := h.trigger("t").Fire(t.Context(), Msg{})
	if !errors.Is(err, ErrMessageTooBig) {
		t.Errorf("light run with a 2000-byte message: %v", err)
	}
	if _, err := h.trigger("t").Fire(t.Context(), Msg{"big": string(make([]byte, 2000))}); !errors.Is(err, ErrMessageTooBig) {
		t.Errorf("light run started with a 2000-byte message: %v", err)
	}
}

func (r *Runtime) ring(flow string) *traceRing { return r.ringFor(flow) }

// TestRunContext: the lazily timed run context behaves as
// context.WithTimeout would, for blocks that wait, derive or only check.
func TestRunContext(t *testing.T) {
	parent, cancelParent := context.WithCancel(t.Context())
	defer cancelParent()
	c := &runCtx{Context: parent, deadline: time.Now().Add(time.Hour)}
	if d, ok := c.Deadline(); !ok || !d.Equal(c.deadline) {
		t.Errorf("Deadline %v %v", d, ok)
	}
	if c.Err() != nil || c.timer.Load() != nil {
		t.Fatal("Err made a timer or failed early")
	}
	// A derived context is cancelled with the parent.
	child, cancelChild := context.WithCancel(c)
	defer cancelChild()
	cancelParent()
	select {
	case <-child.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("derived context not cancelled with the caller's")
	}
	if !errors.Is(c.Err(), context.Canceled) || !errors.Is(child.Err(), context.Canceled) {
		t.Errorf("Err %v, child %v", c.Err(), child.Err())
	}

	// The deadline: Err sees it without Done; Done closes at it.
	c2 := &runCtx{Context: t.Context(), deadline: time.Now().Add(30 * time.Millisecond)}
	select {
	case <-c2.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed at the deadline")
	}
	if !errors.Is(c2.Err(), context.DeadlineExceeded) || !errors.Is(context.Cause(c2), context.DeadlineExceeded) {
		t.Errorf("after the deadline: %v, cause %v", c2.Err(), context.Cause(c2))
	}
	c3 := &runCtx{Context: t.Context(), deadline: time.Now().Add(-time.Millisecond)}
	if !errors.Is(c3.Err(), context.DeadlineExceeded) {
		t.Errorf("past deadline: %v", c3.Err())
	}
	select {
	case <-c3.Done():
	default:
		t.Error("Done open after Err reported the deadline")
	}

	// A caller's earlier deadline wins.
	early, cancel := context.WithDeadline(t.Context(), time.Now().Add(time.Minute))
	defer cancel()
	c4 := &runCtx{Context: early, deadline: time.Now().Add(time.Hour)}
	if d, _ := c4.Deadline(); d.After(time.Now().Add(2 * time.Minute)) {
		t.Errorf("Deadline %v, want the caller's", d)
	}
	// Values come from the caller's context.
	type key struct{}
	c5 := &runCtx{Context: context.WithValue(t.Context(), key{}, "v"), deadline: time.Now().Add(time.Hour)}
	if c5.Value(key{}) != "v" {
		t.Error("value lost")
	}
	_ = c5.Done()
	if c5.Value(key{}) != "v" {
		t.Error("value lost once timed")
	}
	// stop cancels, before or after Done was asked for.
	c5.stop()
	c6 := &runCtx{Context: t.Context(), deadline: time.Now().Add(time.Hour)}
	c6.stop()
	for i, c := range []*runCtx{c5, c6} {
		select {
		case <-c.Done():
		default:
			t.Errorf("ctx %d: Done open after stop", i)
		}
		if !errors.Is(c.Err(), context.Canceled) {
			t.Errorf("ctx %d: Err after stop %v", i, c.Err())
		}
	}
	if c6.Value(key{}) != nil || (&runCtx{Context: context.WithValue(t.Context(), key{}, 1)}).Value(key{}) != 1 {
		t.Error("values")
	}
}

// A block still waiting when the run ends (a goroutine it started) sees
// the run's context cancelled, as with context.WithTimeout.
func TestRunContextEndsWithRun(t *testing.T) {
	h := newHarness()
	rt := newTestRuntime(t, h, Options{})
	got := make(chan context.Context, 1)
	reg := rt.Registry()
	if err := reg.Register(Spec{Type: "test.grab", Title: "Grab", Category: "test", Outputs: []string{"out"}},
		func(*Setup) (Block, error) {
			return BlockFunc(func(ctx context.Context, _ *Exec, _ Msg) (string, error) {
				got <- ctx
				return "out", nil
			}), nil
		}); err != nil {
		t.Fatal(err)
	}
	deploy(t, rt, mkFlow("f", []Node{node("t", "test.trigger", nil), node("g", "test.grab", nil)}, "t.out>g"), 1)
	if _, err := rt.Run(t.Context(), "f", "", nil); err != nil {
		t.Fatal(err)
	}
	ctx := <-got
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("run context still open after the run")
	}
	if d, ok := ctx.Deadline(); !ok || time.Until(d) > 31*time.Second {
		t.Errorf("deadline %v %v", d, ok)
	}
}

// A step whose error goes out of a wired error port keeps its message in a
// light run too; the steps after it do not.
func TestSnapshotRateHandledErrorKeepsMessage(t *testing.T) {
	h := newHarness()
	rt := newTestRuntime(t, h, Options{SnapshotsPerSecond: 1})
	deploy(t, rt, mkFlow("f", []Node{node("t", "test.trigger", nil), node("f", "test.fail", nil),
		node("p", "test.pass", nil)}, "t.out>f", "f.error>p"), 1)
	var tr *Trace
	for range 3 {
		var err error
		if tr, err = h.trigger("t").Fire(t.Context(), Msg{"n": 7}); err != nil {
			t.Fatal(err)
		}
	}
	if !tr.Light || len(tr.Steps) != 3 {
		t.Fatalf("light %v steps %v", tr.Light, stepSummary(tr))
	}
	m, _ := tr.Steps[1].Msg.(map[string]any)
	if tr.Steps[1].Port != ErrorPort || m["n"] != 7 || m["error"] == nil {
		t.Errorf("failed step %+v", tr.Steps[1])
	}
	if tr.Steps[0].Msg != nil || tr.Steps[2].Msg != nil {
		t.Errorf("other steps carry messages: %v / %v", tr.Steps[0].Msg, tr.Steps[2].Msg)
	}
}

// FireSized: the trigger's bound replaces the engine's walk of the first
// message in a light run; a bound over the limit fails the run at the
// trigger, as the walk would.
func TestFireSized(t *testing.T) {
	h := newHarness()
	rt := newTestRuntime(t, h, Options{SnapshotsPerSecond: -1, Limits: Limits{MaxMessageBytes: 1000}})
	deploy(t, rt, mkFlow("f", []Node{node("t", "test.trigger", nil), node("c", "test.capture", nil)}, "t.out>c"), 1)
	rt.ring("f").snaps.rate = 0 // light runs
	tc := h.trigger("t")
	if _, err := tc.FireSized(t.Context(), Msg{"a": 1}, 2000); !errors.Is(err, ErrMessageTooBig) {
		t.Errorf("bound over the limit: %v", err)
	}
	if tr, err := tc.FireSized(t.Context(), Msg{"a": 1}, 50); err != nil || tr.Status != StatusOK {
		t.Errorf("bound under the limit: %v", err)
	}
	if got := MessageSize(Msg{"a": "xy"}); got != 2+len("a")+4+len("xy")+2 {
		t.Errorf("MessageSize %d", got)
	}
	// A full run walks the message anyway (it snapshots it).
	rt.ring("f").snaps.rate = -1
	if _, err := tc.FireSized(t.Context(), Msg{"big": string(make([]byte, 2000))}, 10); !errors.Is(err, ErrMessageTooBig) {
		t.Errorf("full run with an under-bound: %v", err)
	}
}

func TestFastClock(t *testing.T) {
	var c fastClock
	for i := range 1000 {
		before := time.Now()
		got := c.now()
		after := time.Now()
		if got.Before(before.Add(-time.Millisecond)) || got.After(after.Add(time.Millisecond)) {
			t.Fatalf("read %d: %v not within [%v, %v]", i, got, before, after)
		}
		if d := time.Since(got); d < -time.Millisecond {
			t.Fatalf("monotonic reading ahead by %v", -d)
		}
	}
	// A stale base is replaced by a fresh reading.
	old := time.Now().Add(-2 * fastClockResync)
	c.base.Store(&old)
	if got := c.now(); time.Since(got) > time.Second {
		t.Errorf("stale base kept: %v", got)
	}
}
