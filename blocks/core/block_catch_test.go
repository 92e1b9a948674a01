package core

import (
	"slices"
	"strings"
	"testing"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
)

// catchRuns returns the traces of a flow started by trigger, oldest first.
func catchRuns(rt *engine.Runtime, flow, trigger string) []*engine.Trace {
	var out []*engine.Trace
	for _, tr := range rt.Traces(flow) {
		if tr.Trigger == trigger {
			out = append(out, tr)
		}
	}
	slices.Reverse(out)
	return out
}

func firstMsg(tr *engine.Trace) map[string]any {
	m, _ := tr.Steps[0].Msg.(map[string]any)
	return m
}

// TestCatch: a flow's catch gets its failed runs (with the failing
// message), a global catch gets every other flow's failed runs (without
// it); handled errors are not failures; a catch that fails is caught by
// nobody; each catch run has its own limits.
func TestCatch(t *testing.T) {
	rt := newRuntime(t, engine.Options{Limits: engine.Limits{MaxSteps: 20}})
	failing := enginetest.Flow(t, "app", []enginetest.Node{
		{ID: "go", Type: "core.manual"},
		{ID: "boom", Type: "core.fail", Config: map[string]any{"message": `"no " + msg.what`}},
		{ID: "catch", Type: "core.catch"},
		{ID: "note", Type: "core.set", Config: map[string]any{"set": map[string]any{"seen": "msg.error.node + ': ' + msg.error.message"}}},
	}, "go:out->boom", "catch:out->note")
	errorFlow := enginetest.Flow(t, "errors", []enginetest.Node{
		{ID: "all", Type: "core.catch", Config: map[string]any{"scope": "global"}},
		{ID: "log", Type: "core.set", Config: map[string]any{"set": map[string]any{"got": "msg.error.flow"}}},
		{ID: "go", Type: "core.manual"},
		{ID: "boom", Type: "core.fail"},
	}, "all:out->log", "go:out->boom")
	enginetest.Deploy(t, rt, failing)
	enginetest.Deploy(t, rt, errorFlow)

	tr, err := rt.Run(t.Context(), "app", "", engine.Msg{"what": "luck"})
	if err == nil || tr.ErrorNode != "boom" {
		t.Fatalf("run: %v", err)
	}
	t.Run("flow catch", func(t *testing.T) {
		runs := catchRuns(rt, "app", "catch")
		if len(runs) != 1 || runs[0].Status != engine.StatusOK {
			t.Fatalf("catch runs %v", runs)
		}
		m := firstMsg(runs[0])
		e, _ := m["error"].(map[string]any)
		equal(t, "error.node", e["node"], "boom")
		equal(t, "error.message", e["message"], `node "boom": no luck`)
		equal(t, "error.run_id", e["run_id"], tr.ID)
		equal(t, "error.flow", e["flow"], "app")
		equal(t, "failing message", m["message"].(map[string]any)["what"], "luck")
		equal(t, "path", enginetest.Ports(runs[0]), []string{"catch:out", "note:out"})
	})
	t.Run("global catch", func(t *testing.T) {
		runs := catchRuns(rt, "errors", "all")
		if len(runs) != 1 {
			t.Fatalf("global catch runs %d, want 1", len(runs))
		}
		m := firstMsg(runs[0])
		e, _ := m["error"].(map[string]any)
		equal(t, "error.flow", e["flow"], "app")
		equal(t, "error.run_id", e["run_id"], tr.ID)
		if _, has := m["message"]; has {
			t.Error("a global catch got another flow's message")
		}
	})
	t.Run("the error flow's own failures are not its to catch", func(t *testing.T) {
		if _, err := rt.Run(t.Context(), "errors", "go", nil); err == nil {
			t.Fatal("want a failure")
		}
		equal(t, "global catch runs", len(catchRuns(rt, "errors", "all")), 1)
	})
	t.Run("handled errors are not failures", func(t *testing.T) {
		handled := enginetest.Flow(t, "handled", []enginetest.Node{{ID: "go", Type: "core.manual"}, {ID: "boom", Type: "core.fail"},
			{ID: "fix", Type: "core.set", Config: map[string]any{"set": map[string]any{"ok": "true"}}}, {ID: "catch", Type: "core.catch"}},
			"go:out->boom", "boom:error->fix")
		enginetest.Deploy(t, rt, handled)
		if _, err := rt.Run(t.Context(), "handled", "", nil); err != nil {
			t.Fatal(err)
		}
		equal(t, "catch runs", len(catchRuns(rt, "handled", "catch")), 0)
		equal(t, "global catch runs", len(catchRuns(rt, "errors", "all")), 1)
	})
	t.Run("a catch that fails is caught by nobody", func(t *testing.T) {
		f := enginetest.Flow(t, "twice", []enginetest.Node{{ID: "go", Type: "core.manual"}, {ID: "boom", Type: "core.fail"},
			{ID: "catch", Type: "core.catch"}, {ID: "again", Type: "core.fail", Config: map[string]any{"message": `"catch failed"`}}},
			"go:out->boom", "catch:out->again")
		enginetest.Deploy(t, rt, f)
		if _, err := rt.Run(t.Context(), "twice", "", nil); err == nil {
			t.Fatal("want a failure")
		}
		runs := catchRuns(rt, "twice", "catch")
		if len(runs) != 1 || runs[0].Status != engine.StatusError || !strings.Contains(runs[0].Error, "catch failed") {
			t.Fatalf("catch runs %+v", runs)
		}
		// The global catch saw the flow's failure once, not the failed catch.
		n := 0
		for _, r := range catchRuns(rt, "errors", "all") {
			if e, _ := firstMsg(r)["error"].(map[string]any); e["flow"] == "twice" {
				n++
			}
		}
		equal(t, "global catches of twice", n, 1)
	})
	t.Run("limits apply to each run", func(t *testing.T) {
		loop := enginetest.Flow(t, "loop", []enginetest.Node{{ID: "go", Type: "core.manual"},
			{ID: "a", Type: "core.set", Config: map[string]any{"set": map[string]any{"n": "(msg.n ?? 0) + 1"}}},
			{ID: "catch", Type: "core.catch"}, {ID: "b", Type: "core.set", Config: map[string]any{"set": map[string]any{"caught": "true"}}}},
			"go:out->a", "a:out->a", "catch:out->b")
		enginetest.Deploy(t, rt, loop)
		_, err := rt.Run(t.Context(), "loop", "", nil)
		if err == nil || !strings.Contains(err.Error(), "node executions") {
			t.Fatalf("loop: %v", err)
		}
		runs := catchRuns(rt, "loop", "catch")
		if len(runs) != 1 || runs[0].Status != engine.StatusOK || len(runs[0].Steps) != 2 {
			t.Fatalf("catch of a run past its step limit: %+v", runs)
		}
		e, _ := firstMsg(runs[0])["error"].(map[string]any)
		if !strings.Contains(e["message"].(string), "node executions") {
			t.Errorf("error.message %q", e["message"])
		}
	})
	t.Run("undeployed error flow catches nothing", func(t *testing.T) {
		if err := rt.Undeploy(t.Context(), "errors"); err != nil {
			t.Fatal(err)
		}
		before := len(catchRuns(rt, "errors", "all"))
		rt.Run(t.Context(), "app", "", engine.Msg{"what": "x"})
		equal(t, "global catch runs", len(catchRuns(rt, "errors", "all")), before)
	})
}
