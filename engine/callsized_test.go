package engine

import (
	"context"
	"errors"
	"testing"
)

// TestCallSized: a call that passes the bound of its message (CallSized)
// lets the sub-run skip the walk at its start and hands back the bound of
// the answer; the size limit holds all the same, inside the sub-flow and
// after the call, and a bound past the limit is walked, not trusted.
func TestCallSized(t *testing.T) {
	h := newHarness()
	reg := testRegistry(t, h)
	var gotIn, gotOut, gotSize int
	reg.MustRegister(Spec{Type: "test.callsized", Title: "Call", Category: "test", Outputs: []string{"ok"},
		Fields: []Field{{Name: "hint", Kind: KindInt}}},
		func(s *Setup) (Block, error) {
			hint := int(s.Config.Int("hint"))
			return BlockFunc(func(ctx context.Context, x *Exec, msg Msg) (string, error) {
				size := x.MessageBound()
				gotIn = size
				if hint != 0 {
					size = hint
				}
				port, out, outSize, err := x.CallSized(ctx, "sub", msg, size)
				if err != nil {
					return "", err
				}
				gotOut, gotSize = outSize, MessageSize(out)
				ReplaceMsg(msg, out)
				return port, nil
			}), nil
		})
	grow := func(n int) Node {
		return node("grow", "test.grow", map[string]any{"key": "g", "n": n, "claim": honestClaim("g", n)})
	}
	tests := []struct {
		name  string
		sub   []Node
		wires []string
		hint  int
		big   bool // want ErrMessageTooBig
		known bool // want a bound of the answer
	}{
		{name: "bound in and out", sub: []Node{grow(100)},
			wires: []string{"in.out>grow", "grow.out>ret"}, known: true},
		{name: "sub-flow grows past the limit", sub: []Node{grow(2000)},
			wires: []string{"in.out>grow", "grow.out>ret"}, big: true},
		{name: "a bound past the limit is walked", sub: []Node{grow(100)},
			wires: []string{"in.out>grow", "grow.out>ret"}, hint: 5000, known: true},
		{name: "unknown after a bounded block", sub: []Node{node("p", "test.bounded", nil)},
			wires: []string{"in.out>p", "p.out>ret"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt := newTestRuntime(t, h, Options{Registry: reg, SnapshotsPerSecond: -1, Limits: Limits{MaxMessageBytes: 1000}})
			deploy(t, rt, mkFlow("sub", append([]Node{node("in", "test.entry", nil), node("ret", "test.ret", nil)}, tc.sub...), tc.wires...), 1)
			deploy(t, rt, mkFlow("app", []Node{node("go", "test.trigger", nil),
				node("call", "test.callsized", map[string]any{"hint": tc.hint}), node("c", "test.capture", nil)},
				"go.out>call", "call.ok>c"), 1)
			rt.ring("app").snaps.rate = 0 // light runs: the only ones that trust bounds
			rt.ring("sub").snaps.rate = 0
			gotIn, gotOut, gotSize = -2, -2, -2
			_, err := h.trigger("go").FireSized(t.Context(), Msg{"a": "b"}, MessageSize(Msg{"a": "b"}))
			if got := errors.Is(err, ErrMessageTooBig); got != tc.big {
				t.Fatalf("too big: %v, want %v (err %v)", got, tc.big, err)
			}
			if gotIn != MessageSize(Msg{"a": "b"}) {
				t.Errorf("MessageBound at the call = %d, want the trigger's %d", gotIn, MessageSize(Msg{"a": "b"}))
			}
			if tc.big {
				return
			}
			if known := gotOut >= 0; known != tc.known {
				t.Errorf("answer's bound %d: known %v, want %v", gotOut, known, tc.known)
			}
			if gotOut >= 0 && gotOut < gotSize {
				t.Errorf("answer's bound %d is under its size %d", gotOut, gotSize)
			}
		})
	}
}
