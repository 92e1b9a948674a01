package editor_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/flowd/flowd/ui/uitest"
)

const manualFlow = `{"schema":"flowd/v1","id":"m","name":"Manual <one>","nodes":[
 {"id":"go","type":"core.manual","x":0,"y":0},
 {"id":"log","type":"core.log","config":{"message":"'hi'"},"x":200,"y":0}],
 "wires":[{"from":"go","port":"out","to":"log"}]}`

func TestPageAndStatic(t *testing.T) {
	e := newEnv(t)
	e.importFlow(t, manualFlow, false)
	tests := []struct {
		name, path string
		status     int
		ctype      string
		contains   string
	}{
		{"page", "/admin/flows/m/edit", 200, "text/html; charset=utf-8", `data-csrf="csrf-test-token"`},
		{"page escapes name", "/admin/flows/m/edit", 200, "text/html; charset=utf-8", "Manual &lt;one&gt;"},
		{"missing flow", "/admin/flows/nope/edit", 404, "application/json", "not_found"},
		{"module", "/admin/editor/static/editor.js", 200, "text/javascript; charset=utf-8", "import"},
		{"css", "/admin/editor/static/editor.css", 200, "text/css; charset=utf-8", ".fe-node"},
		{"no file", "/admin/editor/static/nope.js", 404, "text/plain; charset=utf-8", ""},
		{"blocks from the API", "/admin/api/blocks", 200, "application/json", `"type": "jose.validate"`},
		{"dynamic ports flagged", "/admin/api/blocks", 200, "application/json", `"dynamic": true`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, h, body := e.do(t, "GET", tc.path, "")
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			if got := h.Get("Content-Type"); got != tc.ctype {
				t.Errorf("content type %q, want %q", got, tc.ctype)
			}
			if !strings.Contains(body, tc.contains) {
				t.Errorf("body lacks %q", tc.contains)
			}
		})
	}
	t.Run("static cache", func(t *testing.T) {
		_, h, _ := e.do(t, "GET", "/admin/editor/static/canvas.js", "")
		if !strings.Contains(h.Get("Cache-Control"), "max-age") || h.Get("ETag") == "" {
			t.Fatalf("cache headers: %v", h)
		}
		status, _, _ := e.do(t, "GET", "/admin/editor/static/canvas.js", "", "If-None-Match", h.Get("ETag"))
		if status != http.StatusNotModified {
			t.Fatalf("revalidation status %d", status)
		}
	})
	t.Run("no inline script or style", func(t *testing.T) {
		_, _, body := e.do(t, "GET", "/admin/flows/m/edit", "")
		doc, err := goquery.NewDocumentFromReader(strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		doc.Find("script").Each(func(_ int, s *goquery.Selection) {
			if s.AttrOr("src", "") == "" {
				t.Error("inline script")
			}
		})
		if doc.Find("style, [style]").Length() != 0 {
			t.Error("inline style")
		}
	})
}

// TestSaveConflict: the save path the editor's scripts take (the admin
// API) honours If-Match; a stale revision is a 412 with the message the
// page shows, and nothing is written.
func TestSaveConflict(t *testing.T) {
	e := newEnv(t)
	e.importFlow(t, manualFlow, false)
	status, h, body := e.do(t, "GET", "/admin/api/flows/m/state", "")
	if status != 200 {
		t.Fatalf("get: %d %s", status, body)
	}
	var st struct {
		Rev      int64           `json:"rev"`
		Draft    json.RawMessage `json:"draft"`
		Deployed json.RawMessage `json:"deployed"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if h.Get("ETag") != `"1"` || st.Rev != 1 || string(st.Deployed) != "null" {
		t.Fatalf("etag %q rev %d deployed %s", h.Get("ETag"), st.Rev, st.Deployed)
	}
	edited := strings.Replace(string(st.Draft), `"Manual <one>"`, `"tab one"`, 1)
	tests := []struct {
		name, method, path, ifMatch, doc string
		status                           int
		want                             string
	}{
		{"first tab saves", "PUT", "/admin/api/flows/m", `"1"`, edited, 200, `"rev": 2`},
		{"second tab is stale", "PUT", "/admin/api/flows/m", `"1"`, string(st.Draft), 412, "changed since you loaded it"},
		{"stale deploy too", "POST", "/admin/api/flows/m/deploy", `"1"`, string(st.Draft), 412, `"conflict"`},
		{"a tag that is no revision", "PUT", "/admin/api/flows/m", `"stale-etag"`, edited, 412, `"conflict"`},
		{"malformed If-Match", "PUT", "/admin/api/flows/m", `stale-etag`, edited, 400, `"bad_request"`},
		{"bad document", "PUT", "/admin/api/flows/m", `"2"`, `{"schema":"flowd/v1"`, 422, "invalid_flow"},
		{"deploy current", "POST", "/admin/api/flows/m/deploy", `"2"`, edited, 200, `"version": 1`},
		{"deploy answers where it runs", "POST", "/admin/api/flows/m/deploy", `"3"`, edited, 200, `"complete": true`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.ifMatch != "" {
				hdr = []string{"If-Match", tc.ifMatch}
			}
			status, _, body := e.do(t, tc.method, tc.path, tc.doc, hdr...)
			if status != tc.status || !strings.Contains(body, tc.want) {
				t.Fatalf("%d %s; want %d with %q", status, body, tc.status, tc.want)
			}
		})
	}
	doc, _, err := e.fd.App().Export(t.Context(), "m")
	if err != nil || !strings.Contains(string(doc), "tab one") {
		t.Fatalf("stored draft lost the first save: %s %v", doc, err)
	}
}

func TestDeployInvalidKeepsRev(t *testing.T) {
	e := newEnv(t)
	e.importFlow(t, manualFlow, false)
	bad := strings.Replace(manualFlow, `"'hi'"`, `"'hi' +"`, 1)
	status, h, body := e.do(t, "POST", "/admin/api/flows/m/deploy", bad, "If-Match", `"1"`)
	if status != 422 || h.Get("ETag") != `"2"` {
		t.Fatalf("%d %v %s", status, h.Get("ETag"), body)
	}
	if !strings.Contains(body, `"node": "log"`) || !strings.Contains(body, `"field": "message"`) || !strings.Contains(body, `"line": 1`) {
		t.Fatalf("problem lacks node/field/line: %s", body)
	}
}

func TestValidateAndForm(t *testing.T) {
	e := newEnv(t)
	bad := strings.Replace(manualFlow, `"'hi'"`, `"'hi' +"`, 1)
	status, _, body := e.do(t, "POST", "/admin/api/validate", bad)
	if status != 422 || !strings.Contains(body, `"problems"`) || !strings.Contains(body, `"column"`) || !strings.Contains(body, `"warnings"`) {
		t.Fatalf("validate: %d %s", status, body)
	}
	status, h, body := e.do(t, "POST", "/admin/editor/form", `{"flow":`+bad+`,"node":"log"}`)
	if status != 200 || h.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("form: %d %s", status, body)
	}
	doc, _ := goquery.NewDocumentFromReader(strings.NewReader(body))
	if got := doc.Find(`[data-testid=input-message]`).Text(); got != "'hi' +" {
		t.Errorf("message = %q", got)
	}
	if got := doc.Find(`[data-testid=errors-message] li`).Text(); !strings.HasPrefix(got, "line 1, column") {
		t.Errorf("error = %q", got)
	}
	if doc.Find(`[data-testid=field-level] select`).Length() != 1 {
		t.Error("enum field level has no select")
	}
	status, _, _ = e.do(t, "POST", "/admin/editor/form", `{"flow":`+bad+`,"node":"nope"}`)
	if status != 404 {
		t.Errorf("unknown node: %d", status)
	}
}

// TestEventsClose: flowd's CloseStreams ends the admin API's open event
// streams (the editor's live badges), so a graceful shutdown (which waits
// for requests) is not held up by an editor tab. What a stream sends is
// the api package's TestEventsStream.
func TestEventsClose(t *testing.T) {
	e := newEnv(t)
	e.importFlow(t, manualFlow, false)
	resp, err := http.Get(e.srv.URL + "/admin/api/flows/m/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	if line, _ := r.ReadString('\n'); !strings.HasPrefix(line, "retry:") {
		t.Fatalf("first line %q", line)
	}
	e.fd.CloseStreams()
	uitest.StreamEnds(t, r, 5*time.Second)
}
