package core_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"

	"github.com/flowd/flowd/blocks/core"
	"github.com/flowd/flowd/engine"
)

// Register the core blocks in a registry, deploy a small flow and run it by
// hand. The trace shows which port every node took.
func Example() {
	reg := engine.NewRegistry()
	if err := core.Register(reg); err != nil {
		log.Fatal(err)
	}
	rt, err := engine.New(engine.Options{Registry: reg})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close(context.Background())

	flow, err := engine.DecodeFlow([]byte(`{
  "schema": "flowd/v1",
  "id": "greet",
  "name": "Greet",
  "nodes": [
    {"id": "start", "type": "core.manual", "x": 0, "y": 0},
    {"id": "route", "type": "core.switch", "x": 200, "y": 0,
     "config": {"rules": [{"name": "admin", "expr": "msg.user.role == \"admin\""}]}},
    {"id": "hello", "type": "core.set", "x": 400, "y": 0,
     "config": {"set": {"reply.text": "\"hello \" + msg.user.name"}, "delete": ["user.role"]}}
  ],
  "wires": [
    {"from": "start", "port": "out", "to": "route"},
    {"from": "route", "port": "admin", "to": "hello"}
  ]
}`))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := rt.Deploy(ctx, flow, 1); err != nil {
		log.Fatal(err)
	}

	tr, err := rt.Run(ctx, "greet", "", engine.Msg{"user": map[string]any{"name": "ann", "role": "admin"}})
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range tr.Steps {
		fmt.Printf("%s -> %s\n", s.Node, s.Port)
	}
	last, _ := json.Marshal(tr.Steps[len(tr.Steps)-1].Msg)
	fmt.Println(string(last))
	// Output:
	// start -> out
	// route -> admin
	// hello -> out
	// {"reply":{"text":"hello ann"},"user":{"name":"ann"}}
}
