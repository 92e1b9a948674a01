package engine

import (
	"reflect"
	"testing"
)

// TestExprFastPaths checks that literals and msg member paths take the
// fast path and give exactly what the VM gives (value, type, error), on
// messages of every shape a path can meet.
func TestExprFastPaths(t *testing.T) {
	msgs := []Msg{
		{},
		{"a": nil},
		{"a": "text"},
		{"a": map[string]any{"b": 1, "c": nil, "d": map[string]any{"e": []byte("x")}}},
		{"a": map[string]string{"b": "typed map"}},
		{"a": []any{1, 2}},
		{"a": map[string]any{"b": map[string]any{}}},
	}
	tests := []struct {
		src        string
		konst, pth bool
	}{
		{`"*"`, true, false},
		{`'single'`, true, false},
		{`42`, true, false},
		{`1.5`, true, false},
		{`true`, true, false},
		{`nil`, true, false},
		{`"a" + "b"`, true, false}, // folded by expr's optimizer
		{`2 * 21`, true, false},
		{`msg`, false, false},
		{`msg.a`, false, true},
		{`msg.a.b`, false, true},
		{`msg["a"]["b"]`, false, true},
		{`msg.a.d.e`, false, true},
		{`msg.a.b.c.d`, false, true},
		{`msg.a?.b`, false, false},
		{`msg.a.b + 1`, false, false},
		{`flow.a`, false, false},
		{`[1, 2]`, false, false}, // mutable: the VM's
		{`{"k": 1}`, false, false},
	}
	x := &Exec{}
	for _, tt := range tests {
		e, err := CompileExpr(tt.src)
		if err != nil {
			t.Fatalf("%s: %v", tt.src, err)
		}
		if e.isConst != tt.konst || e.isPath != tt.pth {
			t.Errorf("%s: const %v path %v, want %v %v", tt.src, e.isConst, e.isPath, tt.konst, tt.pth)
		}
		slow := &Expr{src: e.src, prog: e.prog, std: true}
		for _, m := range msgs {
			got, gerr := e.Eval(x, m)
			want, werr := slow.Eval(x, m)
			if (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
				t.Errorf("%s on %v: error %v, VM %v", tt.src, m, gerr, werr)
				continue
			}
			if !reflect.DeepEqual(got, want) || reflect.TypeOf(got) != reflect.TypeOf(want) {
				t.Errorf("%s on %v: %#v, VM %#v", tt.src, m, got, want)
			}
		}
	}
}

// A typed result keeps the VM (its conversion is part of the program).
func TestExprFastPathNotForTypedResults(t *testing.T) {
	e, err := (&compileEnv{}).compile(`1`, Field{Kind: KindExpr, Result: "number"})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := e.Eval(&Exec{}, Msg{}); err != nil || v != 1.0 {
		t.Errorf("got %#v %v, want float64 1", v, err)
	}
}
