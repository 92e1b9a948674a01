package core

import (
	"testing"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
)

// BenchmarkFlow5 runs manual -> set -> switch -> set -> log (debug, to a
// discarding logger): the per-run cost of the runtime plus typical blocks.
func BenchmarkFlow5(b *testing.B) {
	rt := newRuntime(b, engine.Options{}) // the default logger discards
	enginetest.Deploy(b, rt, enginetest.Flow(b, "bench", []enginetest.Node{
		{ID: "in", Type: "core.manual"},
		{ID: "prep", Type: "core.set", Config: map[string]any{"set": map[string]any{
			"user.adult": "msg.user.age >= 18",
			"seen":       "true",
		}}},
		{ID: "route", Type: "core.switch", Config: map[string]any{"rules": []any{
			map[string]any{"name": "admin", "expr": `msg.user.age > 18 && msg.user.role == "admin"`},
		}}},
		{ID: "grant", Type: "core.set", Config: map[string]any{"set": map[string]any{"scope": `"admin"`}}},
		{ID: "log", Type: "core.log", Config: map[string]any{"level": "debug", "message": `"granted " + msg.user.name`}},
	}, "in:out->prep", "prep:out->route", "route:admin->grant", "grant:out->log"))

	b.ReportAllocs()
	for b.Loop() {
		msg := engine.Msg{"user": map[string]any{"name": "ann", "age": 40, "role": "admin"}}
		tr, err := rt.Run(b.Context(), "bench", "", msg)
		if err != nil {
			b.Fatal(err)
		}
		if len(tr.Steps) != 5 {
			b.Fatalf("want 5 steps, got %d", len(tr.Steps))
		}
	}
}

// BenchmarkExpr is one expression evaluation through engine.Expr.Eval.
func BenchmarkExpr(b *testing.B) {
	e, err := engine.CompileExpr(`msg.user.age > 18 && msg.user.role == "admin"`)
	if err != nil {
		b.Fatal(err)
	}
	x := &engine.Exec{}
	msg := engine.Msg{"user": map[string]any{"age": 40, "role": "admin"}}
	b.ReportAllocs()
	for b.Loop() {
		v, err := e.Eval(x, msg)
		if err != nil || v != true {
			b.Fatalf("Eval = %v, %v", v, err)
		}
	}
}
