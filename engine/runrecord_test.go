package engine

import (
	"context"
	"fmt"
	"testing"
	"unsafe"
)

// A run's trace, working state and id are one allocation (runRecord)
// that lives as long as the trace. Once the run ends, the record must not
// keep the run's messages, expression environment or marked secrets
// alive through the traces the ring keeps.
func TestRunRecordReleased(t *testing.T) {
	big := string(make([]byte, 1<<16))
	tests := []struct {
		name     string
		fail     bool
		fanOut   bool
		snapshot int // Options.SnapshotsPerSecond
	}{
		{name: "light chain", snapshot: 1},
		{name: "full chain", snapshot: -1},
		{name: "fan-out", fanOut: true, snapshot: 1},
		{name: "failed step", fail: true, snapshot: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness()
			reg := NewRegistry()
			reg.MustRegister(Spec{Type: "test.trigger", Trigger: true, Outputs: []string{"out"}},
				func(s *Setup) (Block, error) { return &testTrigger{h: h, node: s.NodeID}, nil })
			reg.MustRegister(Spec{Type: "test.mark", Outputs: []string{"out"}},
				func(*Setup) (Block, error) {
					return BlockFunc(func(_ context.Context, x *Exec, m Msg) (string, error) {
						x.MarkSecret("a-secret-value-of-this-run")
						_ = x.Env(m) // the VM's environment holds the message
						if tc.fail {
							return "", fmt.Errorf("failed on purpose")
						}
						return "out", nil
					}), nil
				})
			rt, err := New(Options{Registry: reg, SnapshotsPerSecond: tc.snapshot})
			if err != nil {
				t.Fatal(err)
			}
			defer rt.Close(t.Context())
			ws := []string{"t.out>a", "a.out>b"}
			if tc.fanOut {
				ws = append(ws, "a.out>c")
			}
			nodes := []Node{node("t", "test.trigger", nil), node("a", "test.mark", nil), node("b", "test.mark", nil), node("c", "test.mark", nil)}
			if err := rt.Deploy(t.Context(), mkFlow("f", nodes, ws...), 1); err != nil {
				t.Fatal(err)
			}
			// Run twice: the ring keeps the first trace while the second runs.
			var tr *Trace
			for range 2 {
				tr, err = h.tctx["t"].Fire(t.Context(), Msg{"body": big})
				if (err != nil) != tc.fail {
					t.Fatalf("run error %v, want failure %v", err, tc.fail)
				}
			}
			if got := rt.Traces("f"); len(got) != 2 || got[0] != tr {
				t.Fatalf("ring holds %d traces, newest %p, want 2 with %p", len(got), got[0], tr)
			}
			for i, kept := range rt.Traces("f") {
				rs := &(*runRecord)(unsafe.Pointer(kept)).rs
				if rs.x.stepMsg != nil || rs.x.env.Msg != nil || rs.x.env.Flow != nil {
					t.Errorf("trace %d: the record keeps the step's message or environment", i)
				}
				if rs.x.secrets != nil || rs.sn != nil {
					t.Errorf("trace %d: the record keeps the marked secrets (%d) or the snapper", i, len(rs.x.secrets))
				}
				for j, q := range rs.queue {
					if q.msg != nil || q.snap != nil || q.n != nil {
						t.Errorf("trace %d: queue entry %d keeps a message", i, j)
					}
				}
				if kept.ID != rs.x.RunID || len(kept.ID) != runIDLen {
					t.Errorf("trace %d: id %q, run id %q", i, kept.ID, rs.x.RunID)
				}
			}
		})
	}
}

// The record is sized to stay in the 1024-byte size class: a field added
// to Trace, Exec or runState that pushes it past costs every run 128
// bytes more (the next class is 1152), so it should be a decision.
func TestRunRecordSizeClass(t *testing.T) {
	if n := unsafe.Sizeof(runRecord{}); n > 1024 {
		t.Errorf("runRecord is %d bytes, past the 1024-byte size class", n)
	}
}
