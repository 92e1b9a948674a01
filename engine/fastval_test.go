package engine

import (
	"maps"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// TestFastVal: map literals and conditionals of the fast shape are
// compiled to it, others are not, and on random messages (members absent,
// nil, text, bools, numbers, lists, maps, typed maps, Lazy values) Eval
// gives what the VM gives, value and error, whether the fast form decided
// or passed to the VM; a map literal is a new map on every call.
func TestFastVal(t *testing.T) {
	tests := []struct {
		src  string
		fast bool
	}{
		{`{"access_token": msg.a, "token_type": msg.b, "expires_in": 3600, "scope": msg.c.d}`, true},
		{`{"n": 1.5, "t": true, "f": false, "z": nil, "s": "x"}`, true},
		{`{"inner": {"k": msg.a.b}}`, true},
		{`msg.a != nil ? {"jkt": msg.a.b} : nil`, true},
		{`type(msg.a) == "map" && msg.a.b == "x" ? msg.b : msg.c.d`, true},
		{`msg.b == "x" ? {"r": msg.c, "e": 1} : {"r": msg.a}`, true},
		{`msg.a == "x" ? "yes" : 2`, true},
		{`{}`, true},
		{`{"a": 1, "a": 2}`, false},
		{`{"a": msg.a?.b}`, false},
		{`{"a": msg.a + "x"}`, false},
		{`{"a": [msg.a]}`, false},
		{`msg.a ? 1 : 2`, false},
		{`{(msg.b): 1}`, false},
		{`msg.a`, false},
		{`"x"`, false},
	}
	leaves := []any{nil, "x", "y", "", true, false, 1, 2.5, []any{"x"}, map[string]string{"b": "x"},
		map[string]any(nil), map[string]any{"b": "x"}, map[string]any{"b": map[string]any{"c": 1}}}
	lazies := []any{condLazy{v: "x"}, condLazy{v: map[string]any{"b": "x", "d": "y"}}, &ptrLazy{v: map[string]any{"d": 3}}}
	r := rand.New(rand.NewPCG(5, 6))
	msgs := make([]Msg, 3000)
	for i := range msgs {
		m := Msg{}
		for _, k := range []string{"a", "b", "c"} {
			switch r.IntN(7) {
			case 0:
			case 1:
				m[k] = lazies[r.IntN(len(lazies))]
			case 2:
				m[k] = map[string]any{"b": leaves[r.IntN(len(leaves))], "d": leaves[r.IntN(len(leaves))]}
			default:
				m[k] = leaves[r.IntN(len(leaves))]
			}
		}
		msgs[i] = m
	}
	x := &Exec{lazy: true}
	for _, tc := range tests {
		t.Run(tc.src, func(t *testing.T) {
			e, err := (&compileEnv{}).compile(tc.src, Field{Kind: KindExpr})
			if err != nil {
				t.Fatal(err)
			}
			if got := e.val != nil; got != tc.fast {
				t.Fatalf("fast form: %v, want %v", got, tc.fast)
			}
			decided := 0
			for _, m := range msgs {
				if e.val != nil {
					if _, ok := e.val.eval(m); ok {
						decided++
					}
				}
				want, werr := e.Run(&Env{Msg: resolvedCopy(m)})
				got, gerr := e.Eval(x, maps.Clone(m))
				if !reflect.DeepEqual(got, want) || (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
					t.Fatalf("msg %v: Eval = %#v, %v; VM = %#v, %v", m, got, gerr, want, werr)
				}
				if mg, ok := got.(map[string]any); ok && len(mg) > 0 && strings.HasPrefix(tc.src, "{") {
					again, _ := e.Eval(x, m)
					if reflect.ValueOf(again).UnsafePointer() == reflect.ValueOf(mg).UnsafePointer() {
						t.Fatalf("msg %v: two evaluations gave the same map", m)
					}
				}
			}
			if tc.fast && decided < len(msgs)/4 {
				t.Errorf("fast form decided only %d of %d messages", decided, len(msgs))
			}
		})
	}
}

// TestFastValKeepsLazy: a fast expression that does not reach a Lazy
// value leaves it unbuilt, one that does reads it through Lookup.
func TestFastValKeepsLazy(t *testing.T) {
	e, err := (&compileEnv{}).compile(`msg.dpop != nil ? {"jkt": msg.dpop.jkt} : {"m": msg.req.method}`, Field{Kind: KindExpr})
	if err != nil {
		t.Fatal(err)
	}
	l := &ptrLazy{v: map[string]any{"method": "POST"}, lookup: true}
	msg := Msg{"req": l, "dpop": map[string]any{"jkt": "abc"}}
	got, err := e.Eval(&Exec{lazy: true}, msg)
	if err != nil || !reflect.DeepEqual(got, map[string]any{"jkt": "abc"}) || l.built || msg["req"] != Lazy(l) {
		t.Fatalf("Eval = %v, %v; built %v", got, err, l.built)
	}
	delete(msg, "dpop")
	got, err = e.Eval(&Exec{lazy: true}, msg)
	if err != nil || !reflect.DeepEqual(got, map[string]any{"m": "POST"}) || l.built {
		t.Fatalf("Eval = %v, %v; built %v", got, err, l.built)
	}
}

// ptrLazy is a Lazy held by pointer (as http.in's msg.req is); with
// lookup it answers one-member paths without building.
type ptrLazy struct {
	v      map[string]any
	lookup bool
	built  bool
}

func (l *ptrLazy) Value() any { l.built = true; return l.v }

func (l *ptrLazy) Lookup(path []string) (any, bool) {
	if !l.lookup || l.built || len(path) != 1 {
		return nil, false
	}
	return l.v[path[0]], true
}
