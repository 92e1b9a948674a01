package flowd_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/flowd/flowd"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/store"
)

// Example_embed mounts flowd in a host program's own ServeMux with a custom
// block, deploys a flow that uses it, and calls the endpoint.
func Example_embed() {
	dir, _ := os.MkdirTemp("", "flowd-example-")
	defer os.RemoveAll(dir)
	key := make([]byte, 32)
	rand.Read(key) // in production: store.LoadMasterKey(dir, os.Getenv)
	st, err := store.OpenBolt(filepath.Join(dir, "flowd.db"), store.BoltOptions{MasterKey: key})
	if err != nil {
		panic(err)
	}
	defer st.Close()

	// The host's own block: acme.shout upper-cases msg.payload.text.
	shout := func(reg *engine.Registry) error {
		return reg.Register(engine.Spec{
			Type: "acme.shout", Title: "Shout", Category: "acme",
			Description: "Upper-cases payload.text.", Outputs: []string{"out"},
		}, func(*engine.Setup) (engine.Block, error) {
			return engine.BlockFunc(func(_ context.Context, _ *engine.Exec, msg engine.Msg) (string, error) {
				if p, ok := msg["payload"].(map[string]any); ok {
					p["text"] = strings.ToUpper(fmt.Sprint(p["text"]))
				}
				return "out", nil
			}), nil
		})
	}
	fd, err := flowd.New(flowd.Options{Store: st, Register: shout, AdminToken: "example-token"})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := fd.Start(ctx); err != nil {
		panic(err)
	}
	defer fd.Close(ctx)

	mux := http.NewServeMux()
	mux.Handle("/", fd.FlowHandler())        // flow endpoints
	mux.Handle("/admin/", fd.AdminHandler()) // admin UI and its JSON API
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	flow := `{"schema": "flowd/v1", "id": "shout", "name": "Shout",
	  "nodes": [
	    {"id": "in", "type": "http.in", "config": {"method": "GET", "path": "/shout/{word}"}, "x": 0, "y": 0},
	    {"id": "set", "type": "core.set", "config": {"set": {"payload": "{'text': msg.req.params.word}"}}, "x": 200, "y": 0},
	    {"id": "shout", "type": "acme.shout", "x": 400, "y": 0},
	    {"id": "out", "type": "http.respond", "x": 600, "y": 0}],
	  "wires": [{"from": "in", "port": "out", "to": "set"}, {"from": "set", "port": "out", "to": "shout"},
	            {"from": "shout", "port": "out", "to": "out"}]}`
	if err := fd.Import(ctx, []byte(flow), true); err != nil {
		panic(err)
	}

	resp, err := http.Get(srv.URL + "/shout/hello")
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, strings.TrimSpace(string(body)))
	// Output: 200 {"text":"HELLO"}
}
