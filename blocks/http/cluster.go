package httpblock

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/flowd/flowd/engine"
)

// CheckRoutes refuses f when one of its enabled http.in nodes claims a
// route that matches the same requests as a route of another flow in
// deployed: the flows deployed across the cluster, read from the store,
// not this process's router (a node that has not applied a deploy yet
// would not know). The error is a validation error of the node's path
// field naming both flows and both patterns, and matches
// ErrRouteConflict. Routes that do not parse are left to validation.
func CheckRoutes(f *engine.Flow, deployed []*engine.Flow) error {
	mine := flowRoutes(f)
	if len(mine) == 0 {
		return nil
	}
	var theirs []flowRoute
	for _, o := range deployed {
		if o.ID != f.ID {
			theirs = append(theirs, flowRoutes(o)...)
		}
	}
	var ve engine.ValidationErrors
	var first error
	for _, m := range mine {
		o, ok := conflictWith(m, theirs)
		if !ok {
			continue
		}
		err := &wrapped{fmt.Sprintf("route %q of flow %q conflicts with route %q of flow %q (node %q), which is deployed: "+
			"two flows cannot serve the same requests", m.pattern, f.ID, o.pattern, o.flow, o.node), ErrRouteConflict}
		ve = append(ve, &engine.ValidationError{Node: m.node, Field: "path", Msg: err.Error()})
		if first == nil {
			first = err
		}
	}
	if len(ve) == 0 {
		return nil
	}
	return &startError{ve: ve, cause: first}
}

// flowRoute is one http.in node's route.
type flowRoute struct {
	flow, node, pattern string
}

// flowRoutes lists the routes f's enabled http.in nodes claim.
func flowRoutes(f *engine.Flow) []flowRoute {
	var out []flowRoute
	for _, n := range f.Nodes {
		if n.Type != "http.in" || n.Disabled {
			continue
		}
		method, path := "GET", "" // the spec's default method
		if raw, ok := n.Config["method"]; ok && json.Unmarshal(raw, &method) != nil {
			continue
		}
		if json.Unmarshal(n.Config["path"], &path) != nil {
			continue
		}
		pattern, _, err := routePattern(method, path)
		if err != nil {
			continue
		}
		out = append(out, flowRoute{flow: f.ID, node: n.ID, pattern: pattern})
	}
	return out
}

// conflictWith returns the first route of others that ServeMux refuses
// beside m. One mux holds all of others plus m: the common answer (no
// conflict) costs one mux, not one per pair.
func conflictWith(m flowRoute, others []flowRoute) (flowRoute, bool) {
	mux := http.NewServeMux()
	clash := false // others refuse each other (older state): judge pairwise
	for _, o := range others {
		if handle(mux, o.pattern, http.NotFoundHandler()) != nil {
			clash = true
		}
	}
	if !clash && handle(mux, m.pattern, http.NotFoundHandler()) == nil {
		return flowRoute{}, false
	}
	for _, o := range others {
		if conflicting(o.pattern, m.pattern) {
			return o, true
		}
	}
	return flowRoute{}, false
}
