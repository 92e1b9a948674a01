package engine

import (
	"context"
	"reflect"
	"testing"
)

// TestCallKeepsLazy: a Lazy value of the caller's message (msg.req) and a
// map (msg.x) cross a sub-flow call unbuilt and uncopied when no block on
// either side needs them whole, and come back as the caller's own values;
// a sub-flow that needs them whole gets deep copies, so what it changes in
// place never reaches the caller's values (after a failed call the
// caller's message is the one it had), and a call that succeeds hands
// back the sub-flow's changed copies.
func TestCallKeepsLazy(t *testing.T) {
	h := newHarness()
	reg := testRegistry(t, h)
	lazyOnly := func(typ string, outputs []string, f func(ctx context.Context, x *Exec, msg Msg) (string, error)) {
		reg.MustRegister(Spec{Type: typ, Title: typ, Category: "test", Outputs: outputs, LazyMessage: true, Bounded: true},
			func(*Setup) (Block, error) { return BlockFunc(f), nil })
	}
	lazyOnly("test.lret", nil, func(_ context.Context, x *Exec, msg Msg) (string, error) { return "", x.Return("ok", msg) })
	lazyOnly("test.lcall", []string{"ok"}, func(ctx context.Context, x *Exec, msg Msg) (string, error) {
		// With the message's bound, as core.call: a sub-run that walks
		// its message to check its size builds it.
		port, out, _, err := x.CallSized(ctx, "sub", msg, x.MessageBound())
		if err != nil {
			return "", err
		}
		ReplaceMsg(msg, out)
		return port, nil
	})
	var own *testLazy // the caller's Lazy
	var after []any   // what the caller's probe found at msg.req
	var afterX []any  // and at msg.x
	var origX map[string]any
	var builds int // the caller's Lazy's builds, when the probe ran
	var read []any // what the sub-flow's reader found at msg.req.a
	lazyOnly("test.probe", []string{"out"}, func(_ context.Context, _ *Exec, msg Msg) (string, error) {
		after = append(after, msg["req"])
		afterX = append(afterX, msg["x"])
		builds = *own.builds
		return "out", nil
	})
	lazyOnly("test.read", []string{"out"}, func(_ context.Context, _ *Exec, msg Msg) (string, error) {
		read = append(read, MsgPath(msg, "req", "a"), MsgPath(msg, "x", "y"))
		return "out", nil
	})
	// test.change is an ordinary block: the engine builds msg.req first.
	reg.MustRegister(Spec{Type: "test.change", Title: "Change", Category: "test", Outputs: []string{"out"}},
		func(*Setup) (Block, error) {
			return BlockFunc(func(_ context.Context, _ *Exec, msg Msg) (string, error) {
				req := msg["req"].(map[string]any)
				req["a"] = "changed"
				req["n"].(map[string]any)["b"] = "changed"
				msg["x"].(map[string]any)["n"].(map[string]any)["b"] = "changed"
				return "out", nil
			}), nil
		})
	changed := map[string]any{"a": "changed", "token": "secret-token-value", "n": map[string]any{"b": "changed"}}
	newX := func() map[string]any { return map[string]any{"y": "z", "n": map[string]any{"b": "c"}} }
	changedX := map[string]any{"y": "z", "n": map[string]any{"b": "changed"}}
	tests := []struct {
		name   string
		sub    []Node
		wires  []string
		fail   bool
		builds int
		read   []any
		same   bool // the probe after the call finds the caller's own Lazy
		req    any  // msg.req built after the call (nil: the caller's own, unchanged)
	}{
		{name: "read through Lookup: never built", sub: []Node{node("r", "test.read", nil)},
			wires: []string{"in.out>r", "r.out>ret"}, read: []any{"alpha", "z"}, same: true},
		{name: "built and changed in the sub-flow: the caller gets the copy", sub: []Node{node("x", "test.change", nil)},
			wires: []string{"in.out>x", "x.out>ret"}, builds: 1, req: changed},
		{name: "built and changed, then the sub-flow fails: the caller's is untouched",
			sub:   []Node{node("x", "test.change", nil), node("f", "test.fail", nil)},
			wires: []string{"in.out>x", "x.out>f", "f.out>ret"}, fail: true, builds: 1, same: true},
		{name: "read after a build: the copy's value", sub: []Node{node("x", "test.change", nil), node("r", "test.read", nil)},
			wires: []string{"in.out>x", "x.out>r", "r.out>ret"}, builds: 1, read: []any{"changed", "z"}, req: changed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			own, after, afterX, read, builds, origX = &testLazy{builds: new(int)}, nil, nil, nil, -1, newX()
			delete(h.captured, "c")
			rt := newTestRuntime(t, h, Options{Registry: reg, SnapshotsPerSecond: -1})
			deploy(t, rt, mkFlow("sub", append([]Node{node("in", "test.entry", nil), node("ret", "test.lret", nil)}, tc.sub...),
				tc.wires...), 1)
			deploy(t, rt, mkFlow("app", []Node{node("t", "test.trigger", nil), node("call", "test.lcall", nil),
				node("p", "test.probe", nil), node("c", "test.capture", nil)},
				"t.out>call", "call.ok>p", "call.error>p", "p.out>c"), 1)
			rt.ring("app").snaps.rate = 0
			rt.ring("sub").snaps.rate = 0
			if _, err := h.trigger("t").FireSized(t.Context(), Msg{"req": own, "x": origX, "s": "text"}, 200); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(read, tc.read) {
				t.Errorf("the sub-flow read %v, want %v", read, tc.read)
			}
			if len(after) != 1 {
				t.Fatalf("probe ran %d times", len(after))
			}
			if got := after[0] == any(own); got != tc.same {
				t.Errorf("after the call msg.req is the caller's own Lazy: %v, want %v (%T)", got, tc.same, after[0])
			}
			if got := reflect.ValueOf(afterX[0]).UnsafePointer() == reflect.ValueOf(origX).UnsafePointer(); got != tc.same {
				t.Errorf("after the call msg.x is the caller's own map: %v, want %v", got, tc.same)
			}
			if builds != tc.builds {
				t.Errorf("built %d times by the end of the call, want %d", builds, tc.builds)
			}
			got := h.msgs("c")
			if len(got) != 1 {
				t.Fatalf("captured %d messages", len(got))
			}
			want := tc.req
			if want == nil {
				want = lazyBuilt
			}
			if !reflect.DeepEqual(got[0]["req"], want) {
				t.Errorf("msg.req after the call %v, want %v", got[0]["req"], want)
			}
			wantX := changedX
			if tc.req == nil {
				wantX = newX()
			}
			if !reflect.DeepEqual(got[0]["x"], wantX) || got[0]["s"] != "text" {
				t.Errorf("msg.x after the call %v, want %v (msg.s %v)", got[0]["x"], wantX, got[0]["s"])
			}
			if !reflect.DeepEqual(origX, newX()) {
				t.Errorf("the caller's msg.x holds %v", origX)
			}
			if _, failed := got[0]["error"]; failed != tc.fail {
				t.Errorf("error port: %v, want %v", failed, tc.fail)
			}
			// The caller's own value, built, never shows the sub-flow's change.
			if !reflect.DeepEqual(own.Value(), lazyBuilt) {
				t.Errorf("the caller's Lazy holds %v", own.Value())
			}
		})
	}
}
