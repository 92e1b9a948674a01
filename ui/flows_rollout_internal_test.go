package ui

import (
	"testing"

	"github.com/flowd/flowd/app"
)

// TestRolloutFlash: what the flows page says after a deploy, for each
// way a cluster can answer.
func TestRolloutFlash(t *testing.T) {
	tests := []struct {
		name string
		ro   *app.Rollout
		want string // "" : no flash, the redirect's done text
	}{
		{"nothing deployed", nil, ""},
		{"every node", &app.Rollout{Version: 3, Applied: 2, Complete: true,
			Nodes: []app.NodeStatus{{Node: "a", State: app.NodeApplied}, {Node: "b", State: app.NodeApplied}}}, ""},
		{"one failed, one behind", &app.Rollout{Version: 3, Applied: 1, Nodes: []app.NodeStatus{
			{Node: "a", State: app.NodeApplied},
			{Node: "b", State: app.NodeFailed, Error: `route GET /hello is taken by flow "x".`},
			{Node: "c", State: app.NodeBehind},
			{Node: "d", State: app.NodeBehind, Error: "store unavailable"},
		}}, `Deployed hello: version 3 runs on 1 of 4 nodes. Node b cannot run it: route GET /hello is taken by flow "x". ` +
			`Node c has not applied it yet. Node d has not applied it yet (its last error: store unavailable).`},
		{"registry unreadable", &app.Rollout{Version: 2, Applied: 1, Note: "the other nodes' states are unknown: the node registry cannot be read: boom",
			Nodes: []app.NodeStatus{{Node: "a", State: app.NodeApplied}}},
			"Deployed hello: version 2 runs on this node; the other nodes' states are unknown: the node registry cannot be read: boom."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fl := rolloutFlash("deployed", "hello", tt.ro)
			if tt.want == "" {
				if fl != nil {
					t.Fatalf("flash %+v, want none", fl)
				}
				return
			}
			if fl == nil || fl.Kind != "warn" || fl.Text != tt.want {
				t.Fatalf("flash %+v\nwant warn %q", fl, tt.want)
			}
		})
	}
}
