package httpblock_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	httpblock "github.com/flowd/flowd/blocks/http"
	"github.com/flowd/flowd/engine"
)

// An embedder registers the http blocks, builds one Router, provides it to
// the runtime and mounts it at "/". Deploying a flow with an http.in claims
// its route.
func Example() {
	reg := engine.NewRegistry()
	if err := httpblock.Register(reg); err != nil {
		panic(err)
	}
	router := httpblock.NewRouter(httpblock.RouterOptions{})
	svc := engine.NewServices()
	if err := httpblock.Provide(svc, router); err != nil {
		panic(err)
	}
	rt, err := engine.New(engine.Options{Registry: reg, Services: svc})
	if err != nil {
		panic(err)
	}
	defer rt.Close(context.Background())

	f, err := engine.DecodeFlow([]byte(`{
	  "schema": "flowd/v1", "id": "hello", "name": "Hello",
	  "nodes": [
	    {"id": "in", "type": "http.in", "config": {"method": "GET", "path": "/hello/{name}"}, "x": 0, "y": 0},
	    {"id": "answer", "type": "http.respond",
	     "config": {"body": "{\"greeting\": \"hello \" + msg.req.params.name}"}, "x": 200, "y": 0}
	  ],
	  "wires": [{"from": "in", "port": "out", "to": "answer"}]
	}`))
	if err != nil {
		panic(err)
	}
	if err := rt.Deploy(context.Background(), f, 1); err != nil {
		panic(err)
	}

	w := httptest.NewRecorder()
	router.ServeHTTP(w, httptest.NewRequest("GET", "/hello/ada", nil))
	fmt.Print(w.Code, " ", w.Body)
	fmt.Println(router.Routes())
	// Output:
	// 200 {"greeting":"hello ada"}
	// [{hello 1 in GET /hello/{name}}]
}
