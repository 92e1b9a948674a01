package api_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/ui/uitest"
)

// TestRunViews: the runs as the editor's debug panel reads them: the
// summary list, one step's full message, and their errors from the table.
func TestRunViews(t *testing.T) {
	srv, a := newServer(t)
	if _, err := a.Import(t.Context(), []byte(greet), true); err != nil {
		t.Fatal(err)
	}
	tr, err := a.Run(t.Context(), "greet", "start", map[string]any{"name": "ada"})
	if err != nil {
		t.Fatal(err)
	}
	type summary struct {
		Runs []struct {
			ID, Node, Trigger, Status string
			TriggerType               string `json:"trigger_type"`
			Version                   int
			Steps                     []struct {
				Node, Type, Port, Preview string
				Captured                  bool
			}
		}
		Nodes []struct {
			Node string
			OK   bool
		}
	}
	tests := []struct {
		name   string
		path   string
		status int
		code   string
		check  func(t *testing.T, body []byte)
	}{
		{"summary", "/admin/api/flows/greet/runs?view=summary", 200, "", func(t *testing.T, body []byte) {
			var s summary
			if err := json.Unmarshal(body, &s); err != nil {
				t.Fatal(err)
			}
			if len(s.Runs) != 1 || len(s.Nodes) != 1 || !s.Nodes[0].OK {
				t.Fatalf("summary %s", body)
			}
			r := s.Runs[0]
			if r.ID != tr.ID || r.Node != a.NodeID() || r.Trigger != "start" || r.TriggerType != "core.manual" || r.Status != "ok" || r.Version != 1 {
				t.Fatalf("run %+v", r)
			}
			if len(r.Steps) != 2 || r.Steps[1].Node != "hello" || r.Steps[1].Type != "core.set" || r.Steps[1].Port != "out" ||
				!r.Steps[1].Captured || !strings.Contains(r.Steps[1].Preview, `"greeting":"hello ada"`) {
				t.Fatalf("steps %+v", r.Steps)
			}
		}},
		{"summary of a flow that is not there", "/admin/api/flows/nope/runs?view=summary", 404, "not_found", nil},
		{"unknown view", "/admin/api/flows/greet/runs?view=full", 400, "bad_request", nil},
		{"step", "/admin/api/flows/greet/runs/" + tr.ID + "/steps/1", 200, "", func(t *testing.T, body []byte) {
			var st struct {
				Node     string
				Captured bool
				Msg      map[string]any
			}
			if err := json.Unmarshal(body, &st); err != nil {
				t.Fatal(err)
			}
			if st.Node != "hello" || !st.Captured || st.Msg["greeting"] != "hello ada" {
				t.Fatalf("step %s", body)
			}
		}},
		{"step out of range", "/admin/api/flows/greet/runs/" + tr.ID + "/steps/2", 404, "not_found", nil},
		{"negative step", "/admin/api/flows/greet/runs/" + tr.ID + "/steps/-1", 404, "not_found", nil},
		{"step that is no number", "/admin/api/flows/greet/runs/" + tr.ID + "/steps/x", 404, "not_found", nil},
		{"step of no such run", "/admin/api/flows/greet/runs/nope/steps/0", 404, "not_found", nil},
		{"step of no such flow", "/admin/api/flows/nope/runs/" + tr.ID + "/steps/0", 404, "not_found", nil},
		{"events of no such flow", "/admin/api/flows/nope/events", 404, "not_found", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, srv, call{method: "GET", path: tc.path, auth: true})
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.code != "" {
				var e apiErr
				if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != tc.code || e.Error.Message == "" {
					t.Fatalf("error body %s, want code %q", body, tc.code)
				}
			}
			if tc.check != nil {
				tc.check(t, body)
			}
		})
	}
	t.Run("without a token", func(t *testing.T) {
		for _, p := range []string{"/admin/api/flows/greet/runs?view=summary", "/admin/api/flows/greet/runs/" + tr.ID + "/steps/1", "/admin/api/flows/greet/events"} {
			if resp, body := do(t, srv, call{method: "GET", path: p}); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s: status %d: %s", p, resp.StatusCode, body)
			}
		}
	})
}

// TestEventsStream: the stream sends one run event per new run, with each
// node's port, and Close ends it.
func TestEventsStream(t *testing.T) {
	h, srv, a := newHandler(t)
	if _, err := a.Import(t.Context(), []byte(greet), true); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Run(t.Context(), "greet", "start", nil); err != nil { // history: not an event
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/admin/api/flows/greet/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, ct)
	}
	r := bufio.NewReader(resp.Body)
	if line, _ := r.ReadString('\n'); line != "retry: 2000\n" {
		t.Fatalf("first line %q", line)
	}
	tr, err := a.Run(t.Context(), "greet", "start", nil)
	if err != nil {
		t.Fatal(err)
	}
	d := uitest.NextData(t, r, 5*time.Second)
	var ev struct {
		Run, Status string
		Nodes       map[string]struct{ Port, Run string }
	}
	if err := json.Unmarshal([]byte(d), &ev); err != nil {
		t.Fatalf("%q: %v", d, err)
	}
	if ev.Run != tr.ID || ev.Status != "ok" || ev.Nodes["start"].Port != "out" || ev.Nodes["hello"].Port != "out" || ev.Nodes["hello"].Run != tr.ID {
		t.Fatalf("event %+v, run %s", ev, tr.ID)
	}
	h.Close()
	uitest.StreamEnds(t, r, 5*time.Second)
}
