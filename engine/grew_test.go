package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestGrew: a step that reports what it added (Exec.Grew) is checked
// against the size limit by adding that to the size known before it; the
// engine walks the message when the size is unknown (after a Bounded
// block, which reports nothing) or when the sum passes the limit, so an
// honest report never refuses a message the walk would let through.
func TestGrew(t *testing.T) {
	h := newHarness()
	reg := testRegistry(t, h)
	// test.grow writes "x" * n at msg[key], reporting claim bytes (-1: no report).
	grow := Spec{Type: "test.grow", Title: "Grow", Category: "test", Outputs: []string{"out"},
		Fields: []Field{{Name: "key", Kind: KindString}, {Name: "n", Kind: KindInt}, {Name: "claim", Kind: KindInt}}}
	if err := reg.Register(grow, func(s *Setup) (Block, error) {
		key, n, claim := s.Config.String("key"), int(s.Config.Int("n")), int(s.Config.Int("claim"))
		return BlockFunc(func(_ context.Context, x *Exec, msg Msg) (string, error) {
			msg[key] = strings.Repeat("x", n)
			if claim >= 0 {
				x.Grew(claim)
			}
			return "out", nil
		}), nil
	}); err != nil {
		t.Fatal(err)
	}
	bounded := Spec{Type: "test.bounded", Title: "Bounded", Category: "test", Outputs: []string{"out"}, Bounded: true}
	if err := reg.Register(bounded, func(*Setup) (Block, error) {
		return BlockFunc(func(context.Context, *Exec, Msg) (string, error) { return "out", nil }), nil
	}); err != nil {
		t.Fatal(err)
	}
	g := func(id, key string, n, claim int) Node {
		return node(id, "test.grow", map[string]any{"key": key, "n": n, "claim": claim})
	}
	honest := func(key string, n int) int { return len(key) + 4 + n + 2 }
	tests := []struct {
		name  string
		nodes []Node
		wires []string
		big   bool // want ErrMessageTooBig
	}{
		{"honest reports under the limit", []Node{g("a", "a", 300, honest("a", 300)), g("b", "b", 300, honest("b", 300))},
			[]string{"t.out>a", "a.out>b"}, false},
		{"honest reports past the limit", []Node{g("a", "a", 600, honest("a", 600)), g("b", "b", 600, honest("b", 600))},
			[]string{"t.out>a", "a.out>b"}, true},
		// Replacing one key: the sum of reports passes the limit, the
		// message does not: the engine walks and lets it through.
		{"replacing past the summed limit", []Node{g("a", "a", 600, honest("a", 600)), g("b", "a", 600, honest("a", 600))},
			[]string{"t.out>a", "a.out>b"}, false},
		// A lying report is trusted when the size before is known...
		{"under-report after a known size", []Node{g("a", "a", 2000, 1)},
			[]string{"t.out>a"}, false},
		// ...but not after a Bounded block: the size is then unknown.
		{"under-report after a bounded block", []Node{node("p", "test.bounded", nil), g("a", "a", 2000, 1)},
			[]string{"t.out>p", "p.out>a"}, true},
		{"no report: walked", []Node{g("a", "a", 2000, -1)},
			[]string{"t.out>a"}, true},
		// Fan-out copies keep the known size.
		{"fan-out", []Node{g("a", "a", 600, honest("a", 600)), g("b", "b", 600, honest("b", 600)), node("c", "test.pass", nil)},
			[]string{"t.out>a", "a.out>b", "a.out>c"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt := newTestRuntime(t, h, Options{Registry: reg, SnapshotsPerSecond: -1, Limits: Limits{MaxMessageBytes: 1000}})
			deploy(t, rt, mkFlow("f", append([]Node{node("t", "test.trigger", nil)}, tc.nodes...), tc.wires...), 1)
			rt.ring("f").snaps.rate = 0 // light runs: the only ones that trust reports
			_, err := h.trigger("t").FireSized(t.Context(), Msg{}, 2)
			if got := errors.Is(err, ErrMessageTooBig); got != tc.big {
				t.Errorf("too big: %v, want %v (err %v)", got, tc.big, err)
			}
			// A run with snapshots walks every step, whatever the reports.
			rt.ring("f").snaps.rate = -1
			_, err = h.trigger("t").FireSized(t.Context(), Msg{}, 2)
			want := tc.big || strings.Contains(tc.name, "under-report")
			if got := errors.Is(err, ErrMessageTooBig); got != want {
				t.Errorf("full run: too big %v, want %v (err %v)", got, want, err)
			}
		})
	}
}
