package editor_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/flowd/flowd"
	"github.com/flowd/flowd/engine"
)

// lightFlow has two endpoints: /l/ok sets a field and answers, /l/bad
// fails at "fail" (no error wire, so the run fails). "aa" sorts first in
// the message and its 2-byte runes start at odd offsets of the JSON, so
// the 400-byte preview cut falls inside one of them.
const lightFlow = `{"schema":"flowd/v1","id":"l","name":"Light","nodes":[
 {"id":"in_ok","type":"http.in","config":{"method":"GET","path":"/l/ok"},"x":0,"y":0},
 {"id":"set","type":"core.set","config":{"set":{"aa":"repeat('é', 250)","greeting":"'hi'"}},"x":200,"y":0},
 {"id":"respond","type":"http.respond","config":{"body":"msg.greeting"},"x":400,"y":0},
 {"id":"in_bad","type":"http.in","config":{"method":"GET","path":"/l/bad"},"x":0,"y":200},
 {"id":"fail","type":"core.fail","config":{"message":"'no luck'"},"x":200,"y":200}],
 "wires":[{"from":"in_ok","port":"out","to":"set"},{"from":"set","port":"out","to":"respond"},
  {"from":"in_bad","port":"out","to":"fail"}]}`

// oneSnapshotPerSecond makes every triggered run but the first of each
// second light.
func oneSnapshotPerSecond(o *flowd.Options) { o.SnapshotsPerSecond = 1 }

// fire calls a flow endpoint of lightFlow and returns the run's trace. The
// answer can reach the client before the run ends, so it waits for the
// trace to land in the runtime's ring.
func (e *env) fire(t *testing.T, path string) *engine.Trace {
	t.Helper()
	before := len(e.fd.App().Traces("l"))
	resp, err := http.Get(e.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if trs := e.fd.App().Traces("l"); len(trs) > before {
			return trs[0]
		}
	}
	t.Fatalf("no trace for %s", path)
	return nil
}

// fireUntilLight calls path until a run is light: with one snapshot per
// second, the second run within a second is, so a few calls do.
func (e *env) fireUntilLight(t *testing.T, path string) *engine.Trace {
	t.Helper()
	for range 50 {
		if tr := e.fire(t, path); tr.Light {
			return tr
		}
	}
	t.Fatalf("no light run of %s in 50 calls", path)
	return nil
}

// lightRuns deploys lightFlow with one snapshot per second and makes a
// full run, a light run and a light failed run.
func lightRuns(t *testing.T, e *env) (full, light, failed *engine.Trace) {
	t.Helper()
	e.importFlow(t, lightFlow, true)
	full = e.fire(t, "/l/ok") // the flow's first run: within the rate
	if full.Light {
		t.Fatalf("first run is light")
	}
	light = e.fireUntilLight(t, "/l/ok")
	failed = e.fireUntilLight(t, "/l/bad")
	if failed.Status != engine.StatusError {
		t.Fatalf("/l/bad run status %q", failed.Status)
	}
	return full, light, failed
}

// TestRunsLight: the runs list flags light runs, marks steps without a
// message as not captured (no "null" preview) and keeps the failing
// step's message; the step endpoint says when a message was not captured.
func TestRunsLight(t *testing.T) {
	e := newEnv(t, oneSnapshotPerSecond)
	full, light, failed := lightRuns(t, e)

	status, _, body := e.do(t, "GET", "/admin/api/flows/l/runs?view=summary", "")
	if status != http.StatusOK {
		t.Fatalf("runs: %d %s", status, body)
	}
	var got struct {
		Runs []map[string]json.RawMessage `json:"runs"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	byID := map[string]map[string]json.RawMessage{}
	for _, r := range got.Runs {
		var id string
		json.Unmarshal(r["id"], &id)
		byID[id] = r
	}

	type step struct {
		node, port string
		captured   bool
		preview    string // a part of it; "" when not captured
		truncated  bool
	}
	tests := []struct {
		name      string
		run       *engine.Trace
		light     bool
		status    string
		errorNode string
		steps     []step
	}{
		{"full", full, false, "ok", "", []step{
			{"in_ok", "out", true, `"path":"/l/ok"`, false},
			{"set", "out", true, `"aa":"éé`, true},
			{"respond", "out", true, `"aa":"éé`, true}}},
		{"light", light, true, "ok", "", []step{
			{"in_ok", "out", false, "", false},
			{"set", "out", false, "", false},
			{"respond", "out", false, "", false}}},
		{"light failed keeps the failing step", failed, true, "error", "fail", []step{
			{"in_bad", "out", false, "", false},
			{"fail", "", true, `"path":"/l/bad"`, false}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw, ok := byID[tc.run.ID]
			if !ok {
				t.Fatalf("run %s not listed: %s", tc.run.ID, body)
			}
			if string(raw["light"]) != strconv.FormatBool(tc.light) {
				t.Errorf("light = %s, want %v", raw["light"], tc.light)
			}
			var rv struct {
				Status    string `json:"status"`
				ErrorNode string `json:"error_node"`
				Steps     []map[string]json.RawMessage
			}
			b, _ := json.Marshal(raw)
			if err := json.Unmarshal(b, &rv); err != nil {
				t.Fatal(err)
			}
			if rv.Status != tc.status || rv.ErrorNode != tc.errorNode {
				t.Errorf("status %q error_node %q, want %q %q", rv.Status, rv.ErrorNode, tc.status, tc.errorNode)
			}
			if len(rv.Steps) != len(tc.steps) {
				t.Fatalf("%d steps, want %d: %s", len(rv.Steps), len(tc.steps), b)
			}
			for i, want := range tc.steps {
				s := rv.Steps[i]
				var node, port, preview string
				var captured, truncated bool
				json.Unmarshal(s["node"], &node)
				json.Unmarshal(s["port"], &port)
				json.Unmarshal(s["preview"], &preview)
				json.Unmarshal(s["truncated"], &truncated)
				if err := json.Unmarshal(s["captured"], &captured); err != nil {
					t.Errorf("step %d: captured %q: %v", i, s["captured"], err)
				}
				if node != want.node || port != want.port || captured != want.captured || truncated != want.truncated {
					t.Errorf("step %d: node %q port %q captured %v truncated %v, want %q %q %v %v",
						i, node, port, captured, truncated, want.node, want.port, want.captured, want.truncated)
				}
				switch {
				case !want.captured && preview != "":
					t.Errorf("step %d: preview %q for a message not captured", i, preview)
				case want.captured && !strings.Contains(preview, want.preview):
					t.Errorf("step %d: preview %q lacks %q", i, preview, want.preview)
				}
				// The cut lands on a rune boundary: no U+FFFD from a split é.
				if !utf8.ValidString(preview) || strings.ContainsRune(preview, utf8.RuneError) {
					t.Errorf("step %d: preview is not clean UTF-8: %q", i, preview)
				}
				if truncated && !strings.HasSuffix(preview, "…") {
					t.Errorf("step %d: truncated preview without …", i)
				}
			}
		})
	}
}

// TestStepLight: the step endpoint answers a step without a message with
// captured false and msg null; 404 stays for runs and steps not there.
func TestStepLight(t *testing.T) {
	e := newEnv(t, oneSnapshotPerSecond)
	full, light, failed := lightRuns(t, e)
	tests := []struct {
		name     string
		run      string
		step     string
		status   int
		node     string
		captured bool
		msgHas   string // a key of msg when captured
	}{
		{"full step", full.ID, "1", 200, "set", true, "greeting"},
		{"light step", light.ID, "1", 200, "set", false, ""},
		{"light trigger step", light.ID, "0", 200, "in_ok", false, ""},
		{"light run's failing step", failed.ID, "1", 200, "fail", true, "req"},
		{"step out of range", light.ID, "3", 404, "", false, ""},
		{"no such run", "nope", "0", 404, "", false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := e.do(t, "GET", "/admin/api/flows/l/runs/"+tc.run+"/steps/"+tc.step, "")
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			if status != http.StatusOK {
				if !strings.Contains(body, `"not_found"`) {
					t.Errorf("404 body %s", body)
				}
				return
			}
			var got struct {
				Node     string          `json:"node"`
				Captured *bool           `json:"captured"`
				Msg      json.RawMessage `json:"msg"`
			}
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatal(err)
			}
			if got.Node != tc.node || got.Captured == nil || *got.Captured != tc.captured {
				t.Fatalf("node %q captured %v, want %q %v: %s", got.Node, got.Captured, tc.node, tc.captured, body)
			}
			if !tc.captured {
				if string(got.Msg) != "null" {
					t.Errorf("msg %s for a message not captured", got.Msg)
				}
				return
			}
			var m map[string]any
			if err := json.Unmarshal(got.Msg, &m); err != nil || m[tc.msgHas] == nil {
				t.Errorf("msg %s lacks %q (%v)", got.Msg, tc.msgHas, err)
			}
		})
	}
}
