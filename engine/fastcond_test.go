package engine

import (
	"maps"
	"math/rand/v2"
	"reflect"
	"testing"
)

// TestFastCond: conditions of the fast shape are compiled to it, and on
// random messages (members absent, nil, strings, bools, numbers, lists,
// maps, typed maps, Lazy values) Eval gives exactly what the VM gives,
// value and error, whether the fast form decided or passed to the VM.
func TestFastCond(t *testing.T) {
	tests := []struct {
		src  string
		fast bool
	}{
		{`msg.a == "x"`, true},
		{`msg.a != "x"`, true},
		{`"x" == msg.a`, true},
		{`msg.a.b == true`, true},
		{`msg.a == false`, true},
		{`type(msg.a) == "map"`, true},
		{`type(msg.a) != "string"`, true},
		{`type(msg.a) == "map" && msg.a.b == "x"`, true},
		{`type(msg.a) != "map" || msg.a.b == nil || msg.a.b == ""`, true},
		{`msg.a == nil`, true},
		{`msg.a.b != nil`, true},
		{`msg.a == "x" || msg.b == "y"`, true},
		{`!(msg.a == "x") and not (msg.b == true)`, true},
		{`msg.a == "x" && msg.a.b == "y"`, true},
		{`msg.a?.b == "x"`, false},
		{`msg.a == 1`, false},
		{`msg.a`, false},
		{`msg.a == msg.b`, false},
		{`len(msg.a) == 1`, false},
		{`type(msg.a) == msg.b`, false},
	}
	values := []any{nil, "x", "y", "", "map", true, false, 1, 1.0, []any{"x"}, map[string]string{"b": "x"}, map[string]any(nil), []any(nil)}
	// Lazy values sit at the top of a message only (see Lazy).
	lazies := []any{condLazy{v: "x"}, condLazy{v: map[string]any{"b": "x"}}, condLazy{v: map[string]any{"b": true}}}
	var leaf func(r *rand.Rand, depth int) any
	leaf = func(r *rand.Rand, depth int) any {
		if depth < 2 && r.IntN(3) == 0 {
			m := map[string]any{}
			if r.IntN(4) > 0 {
				m["b"] = leaf(r, depth+1)
			}
			return m
		}
		return values[r.IntN(len(values))]
	}
	r := rand.New(rand.NewPCG(3, 4))
	var msgs []Msg
	for range 3000 {
		m := Msg{}
		for _, k := range []string{"a", "b"} {
			switch r.IntN(6) {
			case 0:
			case 1:
				m[k] = lazies[r.IntN(len(lazies))]
			default:
				m[k] = leaf(r, 0)
			}
		}
		msgs = append(msgs, m)
	}
	x := &Exec{lazy: true} // the VM gets built values, as in a run
	for _, tc := range tests {
		t.Run(tc.src, func(t *testing.T) {
			e, err := (&compileEnv{}).compile(tc.src, Field{Kind: KindExpr, Result: "bool"})
			if err != nil {
				t.Fatal(err)
			}
			if got := e.cond != nil; got != tc.fast {
				t.Fatalf("fast form: %v, want %v", got, tc.fast)
			}
			decided := 0
			for _, m := range msgs {
				if e.cond != nil {
					if _, ok := e.cond.eval(m); ok {
						decided++
					}
				}
				want, werr := e.Run(&Env{Msg: resolvedCopy(m)})
				got, gerr := e.Eval(x, maps.Clone(m)) // the VM's fallback builds Lazy values in place
				if !reflect.DeepEqual(got, want) || (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
					t.Fatalf("msg %v: Eval = %v, %v; VM = %v, %v", m, got, gerr, want, werr)
				}
			}
			if tc.fast && decided < len(msgs)/4 {
				t.Errorf("fast form decided only %d of %d messages", decided, len(msgs))
			}
		})
	}
}

// condLazy is a Lazy value for the tests: v built on use.
type condLazy struct{ v any }

func (l condLazy) Value() any                  { return l.v }
func (l condLazy) Lookup([]string) (any, bool) { return nil, false }

// resolvedCopy is m with its Lazy values built, as the VM sees it.
func resolvedCopy(m Msg) Msg {
	out := Msg{}
	for k, v := range m {
		out[k] = resolve(v)
	}
	return out
}

func resolve(v any) any {
	switch t := v.(type) {
	case Lazy:
		return resolve(t.Value())
	case map[string]any:
		if t == nil {
			return t
		}
		out := map[string]any{}
		for k, e := range t {
			out[k] = resolve(e)
		}
		return out
	}
	return v
}
