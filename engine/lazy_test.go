package engine

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
)

// testLazy is a Lazy whose build is counted; it answers Lookup for
// ["a"] without building.
type testLazy struct {
	builds *int
	built  map[string]any
}

func (l *testLazy) Value() any {
	if l.built == nil {
		*l.builds++
		l.built = map[string]any{"a": "alpha", "token": "secret-token-value", "n": map[string]any{"b": "beta"}}
	}
	return l.built
}

func (l *testLazy) Lookup(path []string) (any, bool) {
	if l.built == nil && len(path) == 1 && path[0] == "a" {
		return "alpha", true
	}
	return nil, false
}

var lazyBuilt = map[string]any{"a": "alpha", "token": "secret-token-value", "n": map[string]any{"b": "beta"}}

// TestLazyMessage: a Lazy value of a trigger's message stays unbuilt
// through blocks with Spec.LazyMessage that read it through Lookup and
// fast-path expressions; an expression on the VM, any other block, a
// snapshot, a fan-out copy and a catch run all see the built value, built
// once; traces never hold the Lazy itself and redact inside it as in any
// message.
func TestLazyMessage(t *testing.T) {
	h := newHarness()
	reg := testRegistry(t, h)
	type seen struct {
		isLazy bool
		got    any
		builds int
	}
	var builds int
	var obs []seen
	// test.aware: LazyMessage; evaluates "expr" and records what it saw.
	// Bounded as well: otherwise the size check after it walks, and builds.
	aware := Spec{Type: "test.aware", Title: "Aware", Category: "test", Outputs: []string{"out"}, LazyMessage: true, Bounded: true,
		Fields: []Field{{Name: "expr", Kind: KindExpr}}}
	if err := reg.Register(aware, func(s *Setup) (Block, error) {
		e := s.Config.Expr("expr")
		return BlockFunc(func(_ context.Context, x *Exec, msg Msg) (string, error) {
			_, isLazy := msg["req"].(Lazy)
			v, err := e.Eval(x, msg)
			if err != nil {
				return "", err
			}
			obs = append(obs, seen{isLazy, v, builds})
			msg["seen"] = v
			return "out", nil
		}), nil
	}); err != nil {
		t.Fatal(err)
	}
	aw := func(id, expr string) Node { return node(id, "test.aware", map[string]any{"expr": expr}) }
	tests := []struct {
		name    string
		nodes   []Node
		wires   []string
		full    bool
		seen    []seen // by the aware blocks, in order
		capture any    // msg.req at the capture block c (nil: none)
		builds  int
	}{
		{name: "lookup and fast path leave it unbuilt",
			nodes: []Node{aw("a", `msg.req.a`), aw("b", `"const"`)}, wires: []string{"t.out>a", "a.out>b"},
			seen: []seen{{true, "alpha", 0}, {true, "const", 0}}, builds: 0},
		{name: "a path the lazy cannot answer builds it",
			nodes: []Node{aw("a", `msg.req.n.b`), aw("b", `msg.req.a`)}, wires: []string{"t.out>a", "a.out>b"},
			seen: []seen{{true, "beta", 1}, {true, "alpha", 1}}, builds: 1},
		{name: "the VM builds it in place",
			nodes: []Node{aw("a", `msg.req.a + "!"`), aw("b", `msg.req.a`)}, wires: []string{"t.out>a", "a.out>b"},
			seen: []seen{{true, "alpha!", 1}, {false, "alpha", 1}}, builds: 1},
		{name: "another block gets it built",
			nodes: []Node{aw("a", `msg.req.a`), node("c", "test.capture", nil)}, wires: []string{"t.out>a", "a.out>c"},
			seen: []seen{{true, "alpha", 0}}, capture: lazyBuilt, builds: 1},
		// Wires run in canonical order: a gets the copy, c the original.
		{name: "fan-out copies are built, once",
			nodes: []Node{node("c", "test.capture", nil), aw("a", `msg.req.a`)}, wires: []string{"t.out>a", "t.out>c"},
			seen: []seen{{false, "alpha", 1}}, capture: lazyBuilt, builds: 1},
		{name: "a run with snapshots builds it for the trace",
			nodes: []Node{aw("a", `msg.req.a`)}, wires: []string{"t.out>a"}, full: true,
			seen: []seen{{true, "alpha", 1}}, builds: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			builds, obs = 0, nil
			delete(h.captured, "c")
			rt := newTestRuntime(t, h, Options{Registry: reg, SnapshotsPerSecond: -1})
			deploy(t, rt, mkFlow("f", append([]Node{node("t", "test.trigger", nil)}, tc.nodes...), tc.wires...), 1)
			if !tc.full {
				rt.ring("f").snaps.rate = 0
			}
			tr, err := h.trigger("t").FireSized(t.Context(), Msg{"req": &testLazy{builds: &builds}, "x": 1}, 200)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(obs, tc.seen) {
				t.Errorf("aware blocks saw %+v, want %+v", obs, tc.seen)
			}
			if builds != tc.builds {
				t.Errorf("built %d times, want %d", builds, tc.builds)
			}
			if tc.capture != nil {
				got := h.msgs("c")
				if len(got) != 1 || !reflect.DeepEqual(got[0]["req"], tc.capture) {
					t.Errorf("capture got %v, want req %v", got, tc.capture)
				}
			}
			data, err := EncodeTrace(tr)
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Steps []struct {
					Msg map[string]any `json:"msg"`
				} `json:"steps"`
			}
			if err := json.Unmarshal(data, &doc); err != nil {
				t.Fatal(err)
			}
			for i, st := range doc.Steps {
				if !tc.full {
					if st.Msg != nil {
						t.Errorf("light run: step %d has a snapshot", i)
					}
					continue
				}
				want := map[string]any{"a": "alpha", "token": Redacted, "n": map[string]any{"b": "beta"}}
				if !reflect.DeepEqual(st.Msg["req"], want) {
					t.Errorf("step %d snapshot of req: %v, want %v", i, st.Msg["req"], want)
				}
			}
		})
	}
}

// A failed run's catch flow gets the failing message with Lazy values built.
func TestLazyMessageCatch(t *testing.T) {
	h := newHarness()
	rt := newTestRuntime(t, h, Options{})
	deploy(t, rt, mkFlow("f", []Node{node("t", "test.trigger", nil), node("x", "test.fail", nil),
		node("k", "test.catch", nil), node("c", "test.capture", nil)}, "t.out>x", "k.out>c"), 1)
	var builds int
	if _, err := h.trigger("t").Fire(t.Context(), Msg{"req": &testLazy{builds: &builds}}); err == nil {
		t.Fatal("run did not fail")
	}
	got := h.msgs("c")
	if len(got) != 1 {
		t.Fatalf("catch runs: %d", len(got))
	}
	m, _ := got[0]["message"].(Msg)
	if m == nil {
		m, _ = got[0]["message"].(map[string]any)
	}
	if !reflect.DeepEqual(m["req"], lazyBuilt) {
		t.Errorf("catch message req %#v, want the built value", m["req"])
	}
}
