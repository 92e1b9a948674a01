package httpblock_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	httpblock "github.com/flowd/flowd/blocks/http"
	"github.com/flowd/flowd/engine"
)

// routeDoc is a flow with one http.in node per route ("METHOD /path", or
// "/path" for any method; a leading "!" disables the node).
func routeDoc(id string, routes ...string) *engine.Flow {
	f := &engine.Flow{Schema: "flowd/v1", ID: id, Name: id}
	for i, r := range routes {
		n := engine.Node{ID: fmt.Sprintf("in%d", i), Type: "http.in", Config: map[string]json.RawMessage{}}
		if strings.HasPrefix(r, "!") {
			n.Disabled, r = true, r[1:]
		}
		method, path, ok := strings.Cut(r, " ")
		if !ok {
			method, path = "ANY", r
		}
		n.Config["method"], _ = json.Marshal(method)
		n.Config["path"], _ = json.Marshal(path)
		f.Nodes = append(f.Nodes, n)
	}
	return f
}

func TestCheckRoutes(t *testing.T) {
	deployed := []*engine.Flow{
		routeDoc("users", "GET /users/{id}", "POST /users"),
		routeDoc("files", "/files/"),
		routeDoc("off", "!GET /off"),
		routeDoc("mine", "GET /mine"), // the flow being deployed, older version
	}
	tests := []struct {
		name   string
		flow   *engine.Flow
		node   string // "" : no conflict
		naming []string
	}{
		{"free route", routeDoc("new", "GET /new"), "", nil},
		{"same pattern", routeDoc("new", "GET /other", "GET /users/{id}"), "in1", []string{`"GET /users/{id}"`, `"users"`, `"new"`}},
		{"overlapping wildcards", routeDoc("new", "GET /users/{name}"), "in0", []string{`"users"`}},
		{"more specific is no conflict", routeDoc("new", "GET /users/me"), "", nil},
		{"any method under a prefix", routeDoc("new", "/files/"), "in0", []string{`"files"`, `"/files/"`}},
		{"a method on a prefix route is more specific", routeDoc("new", "GET /files/"), "", nil},
		{"a disabled route claims nothing", routeDoc("new", "GET /off"), "", nil},
		{"a disabled node of the new flow claims nothing", routeDoc("new", "!POST /users"), "", nil},
		{"its own deployed version does not count", routeDoc("mine", "GET /mine"), "", nil},
		{"an unparsable path is left to validation", routeDoc("new", "GET users"), "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := httpblock.CheckRoutes(tt.flow, deployed)
			if tt.node == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ve engine.ValidationErrors
			if !errors.Is(err, httpblock.ErrRouteConflict) || !errors.Is(err, engine.ErrInvalidFlow) || !errors.As(err, &ve) {
				t.Fatalf("err %v, want a route conflict as a validation error", err)
			}
			if len(ve) != 1 || ve[0].Node != tt.node || ve[0].Field != "path" {
				t.Fatalf("problems %+v, want node %s field path", ve, tt.node)
			}
			for _, s := range tt.naming {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%q does not name %s", err, s)
				}
			}
		})
	}
}

// BenchmarkCheckRoutes: the deploy-time check of one flow against 200
// deployed flows with two routes each.
func BenchmarkCheckRoutes(b *testing.B) {
	var deployed []*engine.Flow
	for i := range 200 {
		deployed = append(deployed, routeDoc(fmt.Sprintf("f%d", i), fmt.Sprintf("GET /api/%d/{id}", i), fmt.Sprintf("POST /api/%d", i)))
	}
	f := routeDoc("new", "GET /new/{id}", "POST /new")
	for b.Loop() {
		if err := httpblock.CheckRoutes(f, deployed); err != nil {
			b.Fatal(err)
		}
	}
}
