package api_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestValidateWarnings: POST /admin/api/validate answers lint warnings
// (check, flow, node, field, message) with a valid document, an empty list
// when there are none or a node silences them, and never blocks.
func TestValidateWarnings(t *testing.T) {
	srv, _ := newServer(t)
	unreachable := strings.Replace(greet, `"wires": [{"from": "start", "port": "out", "to": "hello"}]`, `"wires": []`, 1)
	silenced := strings.Replace(unreachable, `"type": "core.set",`, `"type": "core.set", "lint_ignore": ["flow.unreachable"],`, 1)
	tests := []struct {
		name, doc string
		want      []string // "check flow/node"
	}{
		{"none", greet, []string{}},
		{"unreachable node", unreachable, []string{"flow.unreachable greet/hello"}},
		{"silenced on the node", silenced, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, srv, call{method: "POST", path: "/admin/api/validate", body: tt.doc, auth: true})
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			var out struct {
				Valid    bool `json:"valid"`
				Warnings []struct {
					Check, Flow, Node, Message string
				} `json:"warnings"`
			}
			if err := json.Unmarshal(body, &out); err != nil || !out.Valid || out.Warnings == nil {
				t.Fatalf("answer %s (%v)", body, err)
			}
			got := []string{}
			for _, w := range out.Warnings {
				if w.Message == "" {
					t.Errorf("warning without message: %s", body)
				}
				got = append(got, w.Check+" "+w.Flow+"/"+w.Node)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("warnings %q, want %q", got, tt.want)
			}
		})
	}
}
