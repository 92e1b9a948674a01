package flowd_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/flowd/flowd"
	"github.com/flowd/flowd/blocks/core"
	httpblock "github.com/flowd/flowd/blocks/http"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/store/memstore"
)

// greeter is a host service: the host's block reaches it at deploy
// through engine.ServiceOr, as flowd's own blocks reach their keysets.
type greeter struct{ salutation string }

// registerGreet is a block package of the host's, in the shape of
// flowd's own: Register(*engine.Registry) error, needing no service.
func registerGreet(reg *engine.Registry) error {
	return reg.Register(engine.Spec{
		Type: "acme.greet", Title: "Greet", Category: "acme",
		Description: "Greets msg.req.params.name with the host's salutation.", Outputs: []string{"out"},
	}, func(s *engine.Setup) (engine.Block, error) {
		// A stand-in when only validating without the service: it never runs.
		g, err := engine.ServiceOr(s, "engine.Provide(svc, &greeter{...})", func() *greeter { return &greeter{} })
		if err != nil {
			return nil, err
		}
		return engine.BlockFunc(func(_ context.Context, _ *engine.Exec, msg engine.Msg) (string, error) {
			req, _ := msg["req"].(map[string]any)
			params, _ := req["params"].(map[string]any)
			msg["payload"] = map[string]any{"text": g.salutation + ", " + fmt.Sprint(params["name"])}
			return "out", nil
		}), nil
	})
}

// Example_blocks mounts flowd with only the core and http blocks plus the
// host's own, whose factory finds the host's service. A flow using a
// block left out (jose.sign) is refused.
func Example_blocks() {
	st, err := memstore.New(memstore.Options{})
	if err != nil {
		panic(err)
	}
	svc := engine.NewServices()
	if err := engine.Provide(svc, &greeter{salutation: "Bonjour"}); err != nil {
		panic(err)
	}
	fd, err := flowd.New(flowd.Options{Store: st, AdminToken: "example-token", Services: svc,
		Blocks: []func(*engine.Registry) error{core.Register, httpblock.Register, registerGreet}})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := fd.Start(ctx); err != nil {
		panic(err)
	}
	defer fd.Close(ctx)
	srv := httptest.NewServer(fd.Handler())
	defer srv.Close()

	greet := `{"schema": "flowd/v1", "id": "greet", "name": "Greet",
	  "nodes": [
	    {"id": "in", "type": "http.in", "config": {"method": "GET", "path": "/greet/{name}"}, "x": 0, "y": 0},
	    {"id": "greet", "type": "acme.greet", "x": 200, "y": 0},
	    {"id": "out", "type": "http.respond", "x": 400, "y": 0}],
	  "wires": [{"from": "in", "port": "out", "to": "greet"}, {"from": "greet", "port": "out", "to": "out"}]}`
	if err := fd.Import(ctx, []byte(greet), true); err != nil {
		panic(err)
	}
	resp, err := http.Get(srv.URL + "/greet/Ada")
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, strings.TrimSpace(string(body)))

	mint := `{"schema": "flowd/v1", "id": "mint", "name": "Mint",
	  "nodes": [{"id": "sign", "type": "jose.sign", "config": {"keyset": "main"}, "x": 0, "y": 0}], "wires": []}`
	err = fd.Import(ctx, []byte(mint), true)
	fmt.Println(errors.Is(err, engine.ErrInvalidFlow), engine.FirstValidation(err))
	// Output:
	// 200 {"text":"Bonjour, Ada"}
	// true node "sign": field "type": unknown block type "jose.sign"
}
