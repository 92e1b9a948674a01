package engine_test

import (
	"context"
	"fmt"

	"github.com/flowd/flowd/engine"
)

// greet is an embedder's own block: it sets msg.greeting from an expression.
func greetSpec() engine.Spec {
	return engine.Spec{
		Type: "acme.greet", Title: "Greet", Category: "acme", Outputs: []string{"out"},
		Fields: []engine.Field{{Name: "text", Kind: engine.KindExpr, Result: "string", Required: true}},
	}
}

func newGreetFromConfig(s *engine.Setup) (engine.Block, error) {
	text := s.Config.Expr("text") // compiled once, at deploy
	return engine.BlockFunc(func(_ context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
		v, err := text.EvalString(x, msg)
		if err != nil {
			return "", err
		}
		msg["greeting"] = v
		return "out", nil
	}), nil
}

// start is a trigger that only runs when asked (Runtime.Run).
type start struct{}

func (start) Process(context.Context, *engine.Exec, engine.Msg) (string, error) { return "out", nil }
func (start) Start(context.Context, *engine.TriggerContext) error               { return nil }
func (start) Stop(context.Context) error                                        { return nil }

// Example_embed builds a registry of its own blocks, deploys a flow
// document and runs it.
func Example_embed() {
	reg := engine.NewRegistry()
	reg.MustRegister(engine.Spec{Type: "acme.start", Trigger: true, Outputs: []string{"out"}},
		func(*engine.Setup) (engine.Block, error) { return start{}, nil })
	reg.MustRegister(greetSpec(), newGreetFromConfig)

	rt, err := engine.New(engine.Options{Registry: reg})
	if err != nil {
		panic(err)
	}
	defer rt.Close(context.Background())

	f, err := engine.DecodeFlow([]byte(`{
	  "schema": "flowd/v1", "id": "hello", "name": "Hello",
	  "nodes": [
	    {"id": "in", "type": "acme.start"},
	    {"id": "greet", "type": "acme.greet", "config": {"text": "\"hello \" + msg.name"}}
	  ],
	  "wires": [{"from": "in", "port": "out", "to": "greet"}]
	}`))
	if err != nil {
		panic(err)
	}
	if err := rt.Deploy(context.Background(), f, 1); err != nil {
		panic(err)
	}
	tr, err := rt.Run(context.Background(), "hello", "", engine.Msg{"name": "ada", "token": "s3cr3t"})
	if err != nil {
		panic(err)
	}
	last := tr.Steps[len(tr.Steps)-1]
	fmt.Println(tr.Status, last.Node, last.Msg)
	// Output: ok greet map[greeting:hello ada name:ada token:[redacted]]
}

// ExampleFirstValidation shows the error a bad document gets: it names the
// node, the field and, for expressions, line and column.
func ExampleFirstValidation() {
	reg := engine.NewRegistry()
	reg.MustRegister(greetSpec(), newGreetFromConfig)
	f, _ := engine.DecodeFlow([]byte(`{"schema": "flowd/v1", "id": "hello",
	  "nodes": [{"id": "greet", "type": "acme.greet", "config": {"text": "\"hello \" +\n  nmae"}}]}`))
	err := reg.Validate(f)
	ve := engine.FirstValidation(err)
	fmt.Println(ve.Node, ve.Field, ve.Line, ve.Column)
	fmt.Println(err)
	// Output:
	// greet text 2 3
	// node "greet": field "text": line 2, column 3: unknown name nmae
}
