package engine

import (
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
	g := func(id, key string, n, claim int) Node {
		return node(id, "test.grow", map[string]any{"key": key, "n": n, "claim": claim})
	}
	tests := []struct {
		name  string
		nodes []Node
		wires []string
		big   bool // want ErrMessageTooBig
	}{
		{"honest reports under the limit", []Node{g("a", "a", 300, honestClaim("a", 300)), g("b", "b", 300, honestClaim("b", 300))},
			[]string{"t.out>a", "a.out>b"}, false},
		{"honest reports past the limit", []Node{g("a", "a", 600, honestClaim("a", 600)), g("b", "b", 600, honestClaim("b", 600))},
			[]string{"t.out>a", "a.out>b"}, true},
		// Replacing one key: the sum of reports passes the limit, the
		// message does not: the engine walks and lets it through.
		{"replacing past the summed limit", []Node{g("a", "a", 600, honestClaim("a", 600)), g("b", "a", 600, honestClaim("a", 600))},
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
		{"fan-out", []Node{g("a", "a", 600, honestClaim("a", 600)), g("b", "b", 600, honestClaim("b", 600)), node("c", "test.pass", nil)},
			[]string{"t.out>a", "a.out>b", "a.out>c"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt := newTestRuntime(t, h, Options{SnapshotsPerSecond: -1, Limits: Limits{MaxMessageBytes: 1000}})
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
