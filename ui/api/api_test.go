package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/flowd/flowd/app"
	"github.com/flowd/flowd/blocks/core"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
	"github.com/flowd/flowd/store/storetest"
	"github.com/flowd/flowd/ui/api"
)

const token = "fd_test-token"

// tokenIs is a token checker that accepts one bearer token.
type tokenIs string

func (tok tokenIs) Check(_ context.Context, s string) bool { return s == string(tok) }

// testRegistry has the core blocks: greet starts at a core.manual and
// assigns fields with core.set.
func testRegistry(t *testing.T) *engine.Registry { return enginetest.Registry(t, core.Register) }

// startApp starts an app on cfg, closed when the test ends.
func startApp(t *testing.T, cfg app.Config) *app.App {
	t.Helper()
	a, err := app.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(context.Background()) })
	return a
}

func newServer(t *testing.T) (*httptest.Server, *app.App) {
	t.Helper()
	_, srv, a := newHandler(t)
	return srv, a
}

// newHandler serves an API on a fresh bolt store and app.
func newHandler(t *testing.T) (*api.Handler, *httptest.Server, *app.App) {
	t.Helper()
	st := storetest.TempBolt(t)
	a := startApp(t, app.Config{Store: st, Registry: testRegistry(t)})
	tokens := app.NewTokens(st, token)
	h := api.New(a, tokens, nil)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return h, srv, a
}

const greet = `{
  "schema": "flowd/v1",
  "id": "greet",
  "name": "Greet",
  "nodes": [
    {"id": "start", "type": "core.manual", "x": 0, "y": 0},
    {"id": "hello", "type": "core.set", "config": {"set": {"greeting": "'hello ' + (msg.name ?? 'world')"}}, "x": 200, "y": 0}
  ],
  "wires": [{"from": "start", "port": "out", "to": "hello"}]
}`

type call struct {
	method, path, body string
	headers            map[string]string
	auth               bool
}

func do(t *testing.T, srv *httptest.Server, c call) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), c.method, srv.URL+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	if c.auth {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

type apiErr struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Node    string `json:"node"`
		Field   string `json:"field"`
		Line    int    `json:"line"`
		Column  int    `json:"column"`
	} `json:"error"`
}

func TestAuth(t *testing.T) {
	srv, _ := newServer(t)
	for _, tc := range []struct {
		name   string
		header string
	}{
		{"no header", ""},
		{"wrong token", "Bearer nope"},
		{"basic scheme", "Basic " + token},
		{"token without scheme", token},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{}
			if tc.header != "" {
				h["Authorization"] = tc.header
			}
			resp, body := do(t, srv, call{method: "GET", path: "/admin/api/flows", headers: h})
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", resp.StatusCode)
			}
			var e apiErr
			if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != "unauthorized" {
				t.Fatalf("body %s", body)
			}
			if strings.Contains(string(body), "flows") {
				t.Fatalf("401 body reveals something: %s", body)
			}
		})
	}
	// Unknown paths are 401 too without a token: nothing is revealed.
	resp, _ := do(t, srv, call{method: "GET", path: "/admin/api/nothing-here"})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unknown path without token: %d", resp.StatusCode)
	}
}

func TestFlowLifecycle(t *testing.T) {
	srv, a := newServer(t)
	steps := []struct {
		name   string
		call   call
		status int
		check  func(t *testing.T, resp *http.Response, body []byte)
	}{
		{"create", call{method: "PUT", path: "/admin/api/flows/greet", body: greet}, 201, func(t *testing.T, resp *http.Response, body []byte) {
			if resp.Header.Get("ETag") != `"1"` {
				t.Fatalf("ETag %q", resp.Header.Get("ETag"))
			}
		}},
		{"export is canonical", call{method: "GET", path: "/admin/api/flows/greet"}, 200, func(t *testing.T, resp *http.Response, body []byte) {
			f, err := engine.DecodeFlow(body)
			if err != nil {
				t.Fatal(err)
			}
			canon, _ := engine.EncodeFlow(f)
			if string(canon) != string(body) {
				t.Fatalf("export not canonical:\n%s", body)
			}
		}},
		{"stale If-Match is 412", call{method: "PUT", path: "/admin/api/flows/greet", body: greet, headers: map[string]string{"If-Match": `"7"`}}, 412, nil},
		{"current If-Match saves", call{method: "PUT", path: "/admin/api/flows/greet", body: greet, headers: map[string]string{"If-Match": `"1"`}}, 200, func(t *testing.T, resp *http.Response, body []byte) {
			if resp.Header.Get("ETag") != `"2"` {
				t.Fatalf("ETag %q", resp.Header.Get("ETag"))
			}
		}},
		{"second create with If-None-Match is 412", call{method: "PUT", path: "/admin/api/flows/greet", body: greet, headers: map[string]string{"If-None-Match": "*"}}, 412, nil},
		{"id mismatch", call{method: "PUT", path: "/admin/api/flows/other", body: greet}, 400, nil},
		{"run before deploy is 409", call{method: "POST", path: "/admin/api/flows/greet/run"}, 409, nil},
		{"deploy with a bad wait is 400", call{method: "POST", path: "/admin/api/flows/greet/deploy?wait=forever"}, 400, nil},
		{"deploy with a wait above the cap is 400", call{method: "POST", path: "/admin/api/flows/greet/deploy?wait=31s"}, 400, nil},
		{"deploy", call{method: "POST", path: "/admin/api/flows/greet/deploy?wait=1s"}, 200, func(t *testing.T, resp *http.Response, body []byte) {
			var v app.Rollout
			json.Unmarshal(body, &v)
			if v.Version != 1 || v.Flow != "greet" {
				t.Fatalf("version %d of %q", v.Version, v.Flow)
			}
			// One process, one node: it ran the version.
			if len(v.Nodes) != 1 || v.Nodes[0].State != app.NodeApplied || v.Applied != 1 || !v.Complete {
				t.Fatalf("deploy answer %s, want the one node applied", body)
			}
		}},
		{"run", call{method: "POST", path: "/admin/api/flows/greet/run", body: `{"input":{"name":"ada"}}`}, 200, func(t *testing.T, resp *http.Response, body []byte) {
			tr, err := engine.DecodeTrace(body)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(body, []byte(`"v": 1,`)) {
				t.Errorf("run answer carries no trace encoding version: %.60s", body)
			}
			if tr.Status != "ok" || len(tr.Steps) != 2 || tr.Steps[1].Node != "hello" {
				t.Fatalf("trace %s", body)
			}
			if m, _ := tr.Steps[1].Msg.(map[string]any); m["greeting"] != "hello ada" {
				t.Fatalf("greeting %v", tr.Steps[1].Msg)
			}
		}},
		{"runs lists it", call{method: "GET", path: "/admin/api/flows/greet/runs"}, 200, func(t *testing.T, resp *http.Response, body []byte) {
			var out struct{ Runs []json.RawMessage }
			json.Unmarshal(body, &out)
			if len(out.Runs) != 1 {
				t.Fatalf("runs %s", body)
			}
			if tr, err := engine.DecodeTrace(out.Runs[0]); err != nil || tr.Status != "ok" || !bytes.Contains(out.Runs[0], []byte(`"v": 1,`)) {
				t.Fatalf("runs %s", body)
			}
			// Each run names the node that ran it: here the one process.
			var named struct {
				Runs  []struct{ Node string }
				Nodes []app.NodeRuns
			}
			json.Unmarshal(body, &named)
			if named.Runs[0].Node != a.NodeID() || len(named.Nodes) != 1 || named.Nodes[0].Node != a.NodeID() || !named.Nodes[0].OK {
				t.Fatalf("runs %s, want run and node list naming %s", body, a.NodeID())
			}
		}},
		{"list shows deployed", call{method: "GET", path: "/admin/api/flows"}, 200, func(t *testing.T, resp *http.Response, body []byte) {
			var out struct{ Flows []app.FlowInfo }
			json.Unmarshal(body, &out)
			if len(out.Flows) != 1 || out.Flows[0].Status != app.StatusDeployed || out.Flows[0].LastRun == nil {
				t.Fatalf("flows %s", body)
			}
		}},
		{"edit makes it changed", call{method: "PUT", path: "/admin/api/flows/greet", body: strings.Replace(greet, "'hello '", "'hi '", 1)}, 200, func(t *testing.T, resp *http.Response, body []byte) {
			var fi app.FlowInfo
			json.Unmarshal(body, &fi)
			if fi.Status != app.StatusChanged {
				t.Fatalf("status %q", fi.Status)
			}
		}},
		{"deploy v2", call{method: "POST", path: "/admin/api/flows/greet/deploy"}, 200, nil},
		{"versions", call{method: "GET", path: "/admin/api/flows/greet/versions"}, 200, func(t *testing.T, resp *http.Response, body []byte) {
			var out struct {
				Versions []struct{ Version int }
			}
			json.Unmarshal(body, &out)
			if len(out.Versions) != 2 || out.Versions[0].Version != 2 {
				t.Fatalf("versions %s", body)
			}
		}},
		{"restore v1", call{method: "POST", path: "/admin/api/flows/greet/versions/1/restore"}, 200, func(t *testing.T, resp *http.Response, body []byte) {
			var out struct {
				NewVersion int  `json:"new_version"`
				Applied    int  `json:"applied"`
				Complete   bool `json:"complete"`
				Nodes      []struct{ Node, State string }
			}
			json.Unmarshal(body, &out)
			if out.NewVersion != 3 || out.Applied != 1 || !out.Complete || len(out.Nodes) != 1 || out.Nodes[0].State != "applied" {
				t.Fatalf("restore %s", body)
			}
			doc, _, _ := a.Export(t.Context(), "greet")
			if !strings.Contains(string(doc), "'hello '") {
				t.Fatalf("draft not restored: %s", doc)
			}
		}},
		{"restore missing version", call{method: "POST", path: "/admin/api/flows/greet/versions/99/restore"}, 404, nil},
		{"bad version number", call{method: "GET", path: "/admin/api/flows/greet/versions/x"}, 400, nil},
		{"blocks", call{method: "GET", path: "/admin/api/blocks"}, 200, func(t *testing.T, resp *http.Response, body []byte) {
			if !strings.Contains(string(body), `"core.set"`) {
				t.Fatalf("blocks %s", body)
			}
		}},
		{"schema", call{method: "GET", path: "/admin/api/schema"}, 200, func(t *testing.T, resp *http.Response, body []byte) {
			var s map[string]any
			if err := json.Unmarshal(body, &s); err != nil || s["title"] == nil {
				t.Fatalf("schema %s", body)
			}
		}},
		{"delete", call{method: "DELETE", path: "/admin/api/flows/greet"}, 204, nil},
		{"gone", call{method: "GET", path: "/admin/api/flows/greet"}, 404, nil},
		{"run after delete", call{method: "POST", path: "/admin/api/flows/greet/run"}, 409, nil},
	}
	for _, s := range steps {
		s.call.auth = true
		resp, body := do(t, srv, s.call)
		if resp.StatusCode != s.status {
			t.Fatalf("%s: status %d, want %d: %s", s.name, resp.StatusCode, s.status, body)
		}
		if resp.StatusCode >= 400 {
			var e apiErr
			if err := json.Unmarshal(body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("%s: error body %s", s.name, body)
			}
		}
		if s.check != nil {
			t.Run(s.name, func(t *testing.T) { s.check(t, resp, body) })
		}
	}
}

func TestInvalidFlows(t *testing.T) {
	srv, _ := newServer(t)
	for _, tc := range []struct {
		name, doc         string
		status            int
		code, node, field string
		line, column      int
	}{
		{"malformed JSON", `{"schema":`, 422, "invalid_flow", "", "schema", 0, 0},
		{"unknown field", strings.Replace(greet, `"name": "Greet"`, `"name": "Greet", "colour": 1`, 1), 422, "invalid_flow", "", "colour", 0, 0},
		{"unknown block type at deploy", strings.Replace(greet, "core.set", "core.nope", 1), 422, "invalid_flow", "hello", "type", 0, 0},
		{"bad expression with position", strings.Replace(greet, `'hello ' + (msg.name ?? 'world')`, `'hello ' +`, 1), 422, "invalid_flow", "hello", "set.greeting", 1, 10},
		{"dangling wire", strings.Replace(greet, `"to": "hello"`, `"to": "ghost"`, 1), 422, "invalid_flow", "ghost", "wires[0].to", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, srv, call{method: "POST", path: "/admin/api/validate", body: tc.doc, auth: true})
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			var e apiErr
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatal(err)
			}
			got := e.Error
			if got.Code != tc.code || got.Node != tc.node || got.Field != tc.field || got.Line != tc.line || got.Column != tc.column {
				t.Fatalf("got code=%q node=%q field=%q line=%d col=%d (%s), want %q %q %q %d %d",
					got.Code, got.Node, got.Field, got.Line, got.Column, got.Message, tc.code, tc.node, tc.field, tc.line, tc.column)
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	srv, _ := newServer(t)
	huge := strings.Repeat(" ", engine.MaxFlowBytes+10)
	resp, body := do(t, srv, call{method: "PUT", path: "/admin/api/flows/greet", body: greet + huge, auth: true})
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
}

// TestIfMatch: RFC 9110 section 13.1.1 on the flow writes. A well-formed
// entity tag that is no current revision (stale, weak, not ours) is a 412
// and nothing is written; a header that is no entity tag list is a 400.
func TestIfMatch(t *testing.T) {
	srv, a := newServer(t)
	put := func(ifMatch string) call {
		return call{method: "PUT", path: "/admin/api/flows/greet", body: greet, auth: true, headers: map[string]string{"If-Match": ifMatch}}
	}
	if resp, body := do(t, srv, call{method: "PUT", path: "/admin/api/flows/greet", body: greet, auth: true}); resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	for _, tc := range []struct {
		name    string
		call    call
		status  int
		code    string
		wantRev int64 // the flow's revision after the call
	}{
		{"a tag that is no revision", put(`"stale-etag"`), 412, "conflict", 1},
		{"an old revision", put(`"7"`), 412, "conflict", 1},
		{"zero", put(`"0"`), 412, "conflict", 1},
		{"leading zero is another tag", put(`"01"`), 412, "conflict", 1},
		{"weak tags never match strongly", put(`W/"1"`), 412, "conflict", 1},
		{"unquoted", put(`stale-etag`), 400, "bad_request", 1},
		{"unclosed quote", put(`"1`), 400, "bad_request", 1},
		{"no comma between tags", put(`"1" "2"`), 400, "bad_request", 1},
		{"a space inside the quotes", put(`"a b"`), 400, "bad_request", 1},
		{"only commas", put(` , ,`), 400, "bad_request", 1},
		{"current", put(`"1"`), 200, "", 2},
		{"a list holding the current one", put(`"9", "2"`), 200, "", 3},
		{"a list without it", put(`"1", "2"`), 412, "conflict", 3},
		{"star", put(`*`), 200, "", 4},
		{"delete with a stale tag", call{method: "DELETE", path: "/admin/api/flows/greet", auth: true, headers: map[string]string{"If-Match": `"stale-etag"`}}, 412, "conflict", 4},
		{"delete with a malformed one", call{method: "DELETE", path: "/admin/api/flows/greet", auth: true, headers: map[string]string{"If-Match": `4`}}, 400, "bad_request", 4},
		{"deploy of another revision", call{method: "POST", path: "/admin/api/flows/greet/deploy", auth: true, headers: map[string]string{"If-Match": `"3"`}}, 412, "conflict", 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, srv, tc.call)
			if resp.StatusCode != tc.status {
				t.Fatalf("%d %s, want %d", resp.StatusCode, body, tc.status)
			}
			if tc.code != "" {
				var e apiErr
				if json.Unmarshal(body, &e) != nil || e.Error.Code != tc.code {
					t.Errorf("body %s, want code %s", body, tc.code)
				}
			}
			info, err := a.Info(t.Context(), "greet")
			if err != nil || info.Rev != tc.wantRev {
				t.Errorf("revision %d (%v), want %d", info.Rev, err, tc.wantRev)
			}
		})
	}
}

// TestStateAndSaveDeploy: what the editor uses: the draft and the deployed
// document in one GET, and save-then-deploy in one POST whose new revision
// is the ETag, also when the saved draft does not deploy.
func TestStateAndSaveDeploy(t *testing.T) {
	srv, _ := newServer(t)
	if resp, body := do(t, srv, call{method: "PUT", path: "/admin/api/flows/greet", body: greet, auth: true}); resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	state := func() (rev string, deployed int, draft string) {
		resp, body := do(t, srv, call{method: "GET", path: "/admin/api/flows/greet/state", auth: true})
		var st struct {
			Rev             int64           `json:"rev"`
			Draft           json.RawMessage `json:"draft"`
			Deployed        json.RawMessage `json:"deployed"`
			DeployedVersion int             `json:"deployed_version"`
		}
		if resp.StatusCode != 200 || json.Unmarshal(body, &st) != nil {
			t.Fatalf("state: %d %s", resp.StatusCode, body)
		}
		if resp.Header.Get("ETag") != `"`+strconv.FormatInt(st.Rev, 10)+`"` {
			t.Errorf("ETag %q for rev %d", resp.Header.Get("ETag"), st.Rev)
		}
		if (st.DeployedVersion == 0) != (string(st.Deployed) == "null") {
			t.Errorf("deployed %s with version %d", st.Deployed, st.DeployedVersion)
		}
		return resp.Header.Get("ETag"), st.DeployedVersion, string(st.Draft)
	}
	if rev, v, _ := state(); rev != `"1"` || v != 0 {
		t.Fatalf("fresh flow: %s v%d", rev, v)
	}
	edited := strings.Replace(greet, "'hello '", "'hi '", 1)
	resp, body := do(t, srv, call{method: "POST", path: "/admin/api/flows/greet/deploy", body: edited, auth: true, headers: map[string]string{"If-Match": `"1"`}})
	if resp.StatusCode != 200 || resp.Header.Get("ETag") != `"2"` || !strings.Contains(string(body), `"rev": 2`) {
		t.Fatalf("save and deploy: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	if rev, v, draft := state(); rev != `"2"` || v != 1 || !strings.Contains(draft, "'hi '") {
		t.Fatalf("after deploy: %s v%d %s", rev, v, draft)
	}
	bad := strings.Replace(greet, "core.set", "core.nope", 1)
	resp, body = do(t, srv, call{method: "POST", path: "/admin/api/flows/greet/deploy", body: bad, auth: true, headers: map[string]string{"If-Match": `"2"`}})
	var e apiErr
	if resp.StatusCode != 422 || resp.Header.Get("ETag") != `"3"` || json.Unmarshal(body, &e) != nil || e.Error.Node != "hello" || e.Error.Field != "type" {
		t.Fatalf("saved, not deployed: %d %v %s", resp.StatusCode, resp.Header.Get("ETag"), body)
	}
	if rev, v, _ := state(); rev != `"3"` || v != 1 {
		t.Fatalf("after the refused deploy: %s v%d", rev, v)
	}
	resp, body = do(t, srv, call{method: "POST", path: "/admin/api/flows/greet/deploy", body: greet, auth: true, headers: map[string]string{"If-Match": `"2"`}})
	if resp.StatusCode != 412 {
		t.Fatalf("stale save and deploy: %d %s", resp.StatusCode, body)
	}
}
