package jose_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/flowd/flowd/blocks/core"
	"github.com/flowd/flowd/blocks/jose"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/store"
)

// An embedder gives the jose blocks one keyset manager over its store. This
// flow creates the keyset on first run, mints a token and validates it.
func ExampleRegister() {
	dir, _ := os.MkdirTemp("", "flowd-example")
	defer os.RemoveAll(dir)
	st, err := store.OpenBolt(filepath.Join(dir, "flowd.db"), store.BoltOptions{MasterKey: make([]byte, 32)})
	if err != nil {
		panic(err)
	}
	defer st.Close()

	reg := engine.NewRegistry()
	if err := core.Register(reg); err != nil {
		panic(err)
	}
	if err := jose.Register(reg); err != nil {
		panic(err)
	}
	svc := engine.NewServices()
	if err := jose.Provide(svc, jose.NewKeysets(st), jose.Options{}); err != nil {
		panic(err)
	}
	rt, err := engine.New(engine.Options{Registry: reg, Services: svc})
	if err != nil {
		panic(err)
	}
	defer rt.Close(context.Background())

	f, err := engine.DecodeFlow([]byte(`{
	  "schema": "flowd/v1", "id": "mint", "name": "Mint and check",
	  "nodes": [
	    {"id": "start", "type": "core.manual", "x": 0, "y": 0},
	    {"id": "keys", "type": "jose.rotate", "config": {"keyset": "main", "alg": "ES256"}, "x": 150, "y": 0},
	    {"id": "mint", "type": "jose.sign", "config": {"keyset": "main", "alg": "ES256",
	      "issuer": "'https://auth.example.com'", "subject": "msg.user", "audience": "'api'", "ttl": "15m"}, "x": 300, "y": 0},
	    {"id": "check", "type": "jose.validate", "config": {"token": "msg.token", "keyset": "main",
	      "algorithms": ["ES256"], "issuer": "https://auth.example.com", "audience": ["api"],
	      "predicate": "claims.sub startsWith \"user-\""}, "x": 450, "y": 0}
	  ],
	  "wires": [{"from": "start", "port": "out", "to": "keys"}, {"from": "keys", "port": "out", "to": "mint"},
	            {"from": "mint", "port": "out", "to": "check"}]
	}`))
	if err != nil {
		panic(err)
	}
	if err := rt.Deploy(context.Background(), f, 1); err != nil {
		panic(err)
	}
	tr, err := rt.Run(context.Background(), "mint", "", engine.Msg{"user": "user-42"})
	if err != nil {
		panic(err)
	}
	// The trace shows each step's port and message; the token itself is
	// redacted there, the claims are not.
	last := tr.Steps[len(tr.Steps)-1]
	seen := last.Msg.(map[string]any)
	fmt.Println(last.Node, last.Port, seen["claims"].(map[string]any)["sub"], seen["token"])
	// Output: check valid user-42 [redacted]
}
