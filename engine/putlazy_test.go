package engine

import (
	"context"
	"maps"
	"reflect"
	"testing"
)

// sharedLazy is one immutable value shared by every run (as jose.jwks's
// msg.jwks): Value returns a new copy each call, Lookup answers members.
type sharedLazy struct {
	base   map[string]any
	copies *int
}

func (l *sharedLazy) Value() any {
	*l.copies++
	return maps.Clone(l.base)
}

func (l *sharedLazy) Lookup(path []string) (any, bool) {
	if len(path) != 1 {
		return nil, false
	}
	return l.base[path[0]], true
}

// TestPutLazy: a Lazy a block puts with Exec.PutLazy is handled as a
// trigger's: blocks with Spec.LazyMessage read its members without a copy,
// the VM, any other block, fan-out copies and snapshots see the built
// value, and a block changing its copy never changes the shared value or
// what the next run sees.
func TestPutLazy(t *testing.T) {
	h := newHarness()
	reg := testRegistry(t, h)
	var copies int
	shared := &sharedLazy{base: map[string]any{"a": "alpha", "n": 7}, copies: &copies}
	type seen struct {
		isLazy bool
		got    any
	}
	var obs []seen
	// test.put puts the shared value at msg.doc. It is not LazyMessage:
	// the value is put after the engine built the trigger's message.
	reg.MustRegister(Spec{Type: "test.put", Title: "Put", Category: "test", Outputs: []string{"out"}, Bounded: true},
		func(*Setup) (Block, error) {
			return BlockFunc(func(_ context.Context, x *Exec, msg Msg) (string, error) {
				x.PutLazy(msg, "doc", shared)
				return "out", nil
			}), nil
		})
	reg.MustRegister(Spec{Type: "test.peek", Title: "Peek", Category: "test", Outputs: []string{"out"}, LazyMessage: true, Bounded: true,
		Fields: []Field{{Name: "expr", Kind: KindExpr}}},
		func(s *Setup) (Block, error) {
			e := s.Config.Expr("expr")
			return BlockFunc(func(_ context.Context, x *Exec, msg Msg) (string, error) {
				_, isLazy := msg["doc"].(Lazy) // before Eval: the VM builds it
				v, err := e.Eval(x, msg)
				obs = append(obs, seen{isLazy, v})
				return "out", err
			}), nil
		})
	// test.poke changes msg.doc.a in place: it must get a map of its own.
	reg.MustRegister(Spec{Type: "test.poke", Title: "Poke", Category: "test", Outputs: []string{"out"}},
		func(*Setup) (Block, error) {
			return BlockFunc(func(_ context.Context, _ *Exec, msg Msg) (string, error) {
				doc, ok := msg["doc"].(map[string]any)
				if !ok {
					return "", &ExprError{Msg: "msg.doc is not a built map"}
				}
				doc["a"] = "changed"
				return "out", nil
			}), nil
		})
	peek := func(id, expr string) Node { return node(id, "test.peek", map[string]any{"expr": expr}) }
	put := node("p", "test.put", nil)
	tests := []struct {
		name    string
		nodes   []Node
		wires   []string
		full    bool
		seen    []seen
		capture any // msg.doc at the capture block c (nil: none)
		copies  int
	}{
		{name: "members are read without a copy",
			nodes: []Node{put, peek("a", `msg.doc.a`), peek("b", `msg.doc.n`)}, wires: []string{"t.out>p", "p.out>a", "a.out>b"},
			seen: []seen{{true, "alpha"}, {true, 7}}, copies: 0},
		{name: "the VM gets a built copy",
			nodes: []Node{put, peek("a", `msg.doc.a + "!"`), peek("b", `msg.doc.a`)}, wires: []string{"t.out>p", "p.out>a", "a.out>b"},
			seen: []seen{{true, "alpha!"}, {false, "alpha"}}, copies: 1},
		{name: "a block that changes it gets its own copy",
			nodes: []Node{put, node("k", "test.poke", nil), node("c", "test.capture", nil)}, wires: []string{"t.out>p", "p.out>k", "k.out>c"},
			capture: map[string]any{"a": "changed", "n": 7}, copies: 1},
		// Wires run in canonical order: a gets the copy, c the original.
		{name: "fan-out copies are built",
			nodes: []Node{put, node("c", "test.capture", nil), peek("a", `msg.doc.a`)}, wires: []string{"t.out>p", "p.out>a", "p.out>c"},
			seen: []seen{{false, "alpha"}}, capture: map[string]any{"a": "alpha", "n": 7}, copies: 2},
		{name: "a run with snapshots shows the value",
			nodes: []Node{put, peek("a", `msg.doc.a`)}, wires: []string{"t.out>p", "p.out>a"}, full: true,
			seen: []seen{{true, "alpha"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt := newTestRuntime(t, h, Options{Registry: reg, SnapshotsPerSecond: -1})
			deploy(t, rt, mkFlow("f", append([]Node{node("t", "test.trigger", nil)}, tc.nodes...), tc.wires...), 1)
			rt.ring("f").snaps.rate = map[bool]int64{true: -1, false: 0}[tc.full] // full: every run; light: none
			copies, obs = 0, nil
			delete(h.captured, "c")
			tr, err := h.trigger("t").FireSized(t.Context(), Msg{"x": 1}, 100)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(obs, tc.seen) {
				t.Errorf("peek blocks saw %+v, want %+v", obs, tc.seen)
			}
			if !tc.full && copies != tc.copies {
				t.Errorf("copied %d times, want %d", copies, tc.copies)
			}
			if tc.capture != nil {
				got := h.msgs("c")
				if len(got) != 1 || !reflect.DeepEqual(got[0]["doc"], tc.capture) {
					t.Errorf("capture got %v, want doc %v", got, tc.capture)
				}
			}
			if want := map[string]any{"a": "alpha", "n": 7}; !reflect.DeepEqual(shared.base, want) {
				t.Fatalf("the shared value changed: %v", shared.base)
			}
			// Light runs keep no snapshot; a full run's steps after the
			// put show the built value.
			for i, st := range tr.Steps {
				got, _ := st.Msg.(map[string]any)
				if tc.full != (got != nil) {
					t.Errorf("step %d: snapshot %v in a run with snapshots %v", i, st.Msg, tc.full)
				} else if tc.full && i >= 2 && !reflect.DeepEqual(got["doc"], map[string]any{"a": "alpha", "n": 7}) {
					t.Errorf("step %d snapshot of doc: %#v", i, got["doc"])
				}
			}
		})
	}
}

// TestPutLazyNoRun: a block called outside a run (a nil Exec) puts the
// built value.
func TestPutLazyNoRun(t *testing.T) {
	var copies int
	shared := &sharedLazy{base: map[string]any{"a": "alpha"}, copies: &copies}
	msg := Msg{}
	var x *Exec
	x.PutLazy(msg, "doc", shared)
	if got, ok := msg["doc"].(map[string]any); !ok || !reflect.DeepEqual(got, shared.base) || copies != 1 {
		t.Errorf("msg.doc = %#v (%d copies), want a built copy of %v", msg["doc"], copies, shared.base)
	}
}
