package editor_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// orphanFlow has a node no trigger reaches: the flow.unreachable check
// warns about it, and the document is valid.
const orphanFlow = `{"schema":"flowd/v1","id":"w","name":"Warned","nodes":[
 {"id":"go","type":"core.manual","x":0,"y":0},
 {"id":"log","type":"core.log","config":{"message":"'hi'"},"x":200,"y":0},
 {"id":"orphan","type":"core.log","config":{"message":"'never'"},"x":200,"y":160}],
 "wires":[{"from":"go","port":"out","to":"log"}]}`

// TestValidateWarnings: the API's validate, which the editor calls, answers the document's lint
// warnings beside its problems, a node's lint_ignore silences its own, and
// warnings come also while the document has errors.
func TestValidateWarnings(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name     string
		doc      string
		valid    bool
		warnings []string // node/check
	}{
		{"clean", manualFlow, true, nil},
		{"unreachable node", orphanFlow, true, []string{"orphan/flow.unreachable"}},
		{"silenced on the node", strings.Replace(orphanFlow, `"id":"orphan",`, `"id":"orphan","lint_ignore":["flow.unreachable"],`, 1), true, nil},
		{"silenced on another node", strings.Replace(orphanFlow, `"id":"log",`, `"id":"log","lint_ignore":["flow.unreachable"],`, 1), true, []string{"orphan/flow.unreachable"}},
		{"with an error too", strings.Replace(orphanFlow, `"'hi'"`, `"'hi' +"`, 1), false, []string{"orphan/flow.unreachable"}},
		{"disabled node ends the branch", strings.Replace(orphanFlow, `"wires":[`, `"wires":[{"from":"log","port":"out","to":"orphan"},`, 1), true, nil},
		{"disabled node cuts what follows", strings.Replace(strings.Replace(orphanFlow, `"wires":[`, `"wires":[{"from":"log","port":"out","to":"orphan"},`, 1), `"id":"log",`, `"id":"log","disabled":true,`, 1), true, []string{"orphan/flow.unreachable"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := e.do(t, "POST", "/admin/api/validate", tc.doc)
			if want := map[bool]int{true: 200, false: 422}[tc.valid]; status != want {
				t.Fatalf("status %d, want %d: %s", status, want, body)
			}
			var res struct {
				Valid    bool `json:"valid"`
				Warnings []struct {
					Check, Flow, Node, Message string
				} `json:"warnings"`
			}
			if err := json.Unmarshal([]byte(body), &res); err != nil {
				t.Fatal(err)
			}
			if res.Valid != tc.valid {
				t.Errorf("valid = %v, want %v (%s)", res.Valid, tc.valid, body)
			}
			if res.Warnings == nil {
				t.Errorf("warnings missing or null: %s", body)
			}
			var got []string
			for _, w := range res.Warnings {
				got = append(got, w.Node+"/"+w.Check)
				if w.Flow != "w" || w.Message == "" {
					t.Errorf("warning %+v: want flow w and a message", w)
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.warnings, ",") {
				t.Errorf("warnings = %v, want %v", got, tc.warnings)
			}
		})
	}
}
