package main

import (
	"strings"
	"testing"

	"github.com/flowd/flowd/app"
)

// TestPrintRollout: the deploy answer as `flowd import --deploy` prints
// it: a summary, a line per node that does not run the version, and a
// failure (exit 1) only when a node could not run it.
func TestPrintRollout(t *testing.T) {
	tests := []struct {
		name      string
		ro        app.Rollout
		ok        bool
		out, errs string
		notInErrs string
	}{
		{"every node", app.Rollout{Version: 3, Generation: 9, Applied: 3, Complete: true, Nodes: []app.NodeStatus{
			{Node: "a", State: app.NodeApplied, Generation: 9}, {Node: "b", State: app.NodeApplied, Generation: 9}, {Node: "c", State: app.NodeApplied, Generation: 9}}},
			true, "version 3 runs on 3 of 3 node(s)\n", "", ""},
		{"one failed, one behind", app.Rollout{Version: 4, Generation: 12, Applied: 1, Nodes: []app.NodeStatus{
			{Node: "a", State: app.NodeApplied, Generation: 12},
			{Node: "b", State: app.NodeFailed, Generation: 12, Error: "version 4: route taken"},
			{Node: "c", State: app.NodeBehind, Generation: 10, Error: "version 2: unknown block type"}}},
			false, "version 4 runs on 1 of 3 node(s)\n",
			"node b failed: version 4: route taken\n  node c has not applied it yet (at deploy generation 10 of 12); its last error: version 2: unknown block type\n", "node a"},
		{"behind only", app.Rollout{Version: 1, Generation: 2, Applied: 1, Nodes: []app.NodeStatus{
			{Node: "a", State: app.NodeApplied, Generation: 2}, {Node: "b", State: app.NodeBehind, Generation: 1}}},
			true, "version 1 runs on 1 of 2 node(s)\n", "node b has not applied it yet (at deploy generation 1 of 2)\n", "last error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errs strings.Builder
			c := &cli{stdout: &out, stderr: &errs}
			if ok := c.printRollout(&tt.ro); ok != tt.ok {
				t.Errorf("ok = %v, want %v", ok, tt.ok)
			}
			if got := out.String(); got != "  "+tt.out {
				t.Errorf("stdout %q, want %q", got, "  "+tt.out)
			}
			if !strings.Contains(errs.String(), tt.errs) || (tt.errs == "" && errs.Len() > 0) {
				t.Errorf("stderr %q, want %q", errs.String(), tt.errs)
			}
			if tt.notInErrs != "" && strings.Contains(errs.String(), tt.notInErrs) {
				t.Errorf("stderr %q names %q", errs.String(), tt.notInErrs)
			}
		})
	}
}
