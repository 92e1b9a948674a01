package httpblock

import (
	"errors"
	"strings"
	"testing"

	"github.com/flowd/flowd/blocks/core"
	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
)

// callEnv is newEnv plus the core blocks (core.call, core.input,
// core.output, core.manual, core.switch), for sub-flows that answer.
func callEnv(t *testing.T) *env {
	t.Helper()
	router := NewRouter(RouterOptions{})
	reg := testRegistry(t)
	if err := core.Register(reg); err != nil {
		t.Fatal(err)
	}
	return &env{router: router, rt: enginetest.Runtime(t, reg, engine.Options{Services: services(t, router)})}
}

// denySub answers 401 itself unless msg.query.user is "ada", then returns
// on "denied"; otherwise it returns on "ok" without answering.
func denySub(t *testing.T) *engine.Flow {
	return enginetest.Flow(t, "auth", []enginetest.Node{
		{ID: "input", Type: "core.input"},
		{ID: "check", Type: "core.switch", Config: map[string]any{"rules": []map[string]string{{"name": "known", "expr": `msg.req.query.user == "ada"`}}}},
		{ID: "ok", Type: "core.output", Config: map[string]any{"port": "ok"}},
		{ID: "unauthorized", Type: "http.respond", Config: map[string]any{"status": 401, "body": `{"error": "who are you"}`,
			"headers": map[string]any{"WWW-Authenticate": `"Basic realm=\"t\""`}}},
		{ID: "denied", Type: "core.output", Config: map[string]any{"port": "denied"}},
	}, "input:out->check", "check:known->ok", "check:else->unauthorized", "unauthorized:out->denied")
}

func TestRespondInSubflow(t *testing.T) {
	e := callEnv(t)
	e.deploy(t, denySub(t), 1)
	// api answers 200 after the call; twice answers again after a denial.
	e.deploy(t, enginetest.Flow(t, "api", []enginetest.Node{
		{ID: "in", Type: "http.in", Config: map[string]any{"method": "GET", "path": "/api"}},
		{ID: "client", Type: "core.call", Config: map[string]any{"flow": "auth", "outputs": []string{"ok", "denied"}}},
		{ID: "answer", Type: "http.respond", Config: map[string]any{"body": `{"hello": msg.req.query.user}`}},
	}, "in:out->client", "client:ok->answer"), 1)
	e.deploy(t, enginetest.Flow(t, "twice", []enginetest.Node{
		{ID: "in", Type: "http.in", Config: map[string]any{"method": "GET", "path": "/twice"}},
		{ID: "client", Type: "core.call", Config: map[string]any{"flow": "auth", "outputs": []string{"ok", "denied"}}},
		{ID: "again", Type: "http.respond", Config: map[string]any{"status": 418}},
	}, "in:out->client", "client:denied->again"), 1)

	// mute answers 202 and ends without a core.output.
	e.deploy(t, enginetest.Flow(t, "mute", []enginetest.Node{
		{ID: "input", Type: "core.input"},
		{ID: "accepted", Type: "http.respond", Config: map[string]any{"status": 202, "body": "nil"}},
	}, "input:out->accepted"), 1)
	e.deploy(t, enginetest.Flow(t, "lost", []enginetest.Node{
		{ID: "in", Type: "http.in", Config: map[string]any{"method": "GET", "path": "/lost"}},
		{ID: "client", Type: "core.call", Config: map[string]any{"flow": "mute", "outputs": []string{"ok"}}},
	}, "in:out->client"), 1)

	tests := []struct {
		name, target string
		status       int
		body         string
		wwwAuth      string
		runErr       string // the caller's run error; "" for success
	}{
		{name: "caller answers after the sub-flow returns", target: "/api?user=ada", status: 200, body: `{"hello":"ada"}`},
		{name: "sub-flow answers the caller's request", target: "/api?user=eve", status: 401,
			body: `{"error":"who are you"}`, wwwAuth: `Basic realm="t"`},
		{name: "a second answer after the sub-flow's is an error", target: "/twice?user=eve", status: 401,
			body: `{"error":"who are you"}`, wwwAuth: `Basic realm="t"`, runErr: "the response was already sent (status 401)"},
		{name: "a sub-flow that answers but never returns: the answer stands, the call fails", target: "/lost",
			status: 202, body: "", runErr: "sub-flow ended without reaching an output"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.do("GET", tt.target, "", "")
			if w.Code != tt.status || strings.TrimSpace(w.Body.String()) != tt.body {
				t.Fatalf("answer %d %q, want %d %q", w.Code, w.Body, tt.status, tt.body)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tt.wwwAuth {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.wwwAuth)
			}
			flow := strings.TrimPrefix(strings.SplitN(tt.target, "?", 2)[0], "/")
			tr := e.rt.Traces(flow)[0]
			if tt.runErr == "" && tr.Status != engine.StatusOK {
				t.Fatalf("caller run failed: %s", tr.Error)
			}
			if tt.runErr != "" && !strings.Contains(tr.Error, tt.runErr) {
				t.Fatalf("caller run error %q, want %q", tr.Error, tt.runErr)
			}
		})
	}
}

func TestRespondInSubflowWithoutRequest(t *testing.T) {
	e := callEnv(t)
	e.deploy(t, denySub(t), 1)
	e.deploy(t, enginetest.Flow(t, "nightly", []enginetest.Node{
		{ID: "go", Type: "core.manual"},
		{ID: "client", Type: "core.call", Config: map[string]any{"flow": "auth", "outputs": []string{"ok", "denied"}}},
	}, "go:out->client"), 1)
	tr, err := e.rt.Run(t.Context(), "nightly", "go", engine.Msg{"req": map[string]any{"query": map[string]any{"user": "eve"}}})
	if !errors.Is(err, ErrNoRequest) {
		t.Fatalf("run error %v, want ErrNoRequest", err)
	}
	if tr.ErrorNode != "client" || !strings.Contains(err.Error(), `sub-flow "auth"`) || !strings.Contains(err.Error(), `node "unauthorized"`) {
		t.Errorf("error %q at node %q: want it to name the call, the sub-flow and its node", err, tr.ErrorNode)
	}
}
