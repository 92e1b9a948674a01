package core

import (
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
)

// TestStartupFiresOncePerStart: core.startup runs the flow once after each
// deploy (a restart deploys again), and not otherwise.
func TestStartupFiresOncePerStart(t *testing.T) {
	rt := newRuntime(t, engine.Options{})
	f := enginetest.Flow(t, "boot", []enginetest.Node{
		{ID: "start", Type: "core.startup"},
		{ID: "mark", Type: "core.set", Config: map[string]any{"set": map[string]any{"booted": "true"}}},
	}, "start:out->mark")
	waitRuns := func(n int) []*engine.Trace {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			trs := rt.Traces("boot")
			if len(trs) >= n {
				return trs
			}
			if time.Now().After(deadline) {
				t.Fatalf("saw %d start-up runs, want %d", len(trs), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	enginetest.Deploy(t, rt, f)
	trs := waitRuns(1)
	if trs[0].Status != engine.StatusOK || trs[0].Trigger != "start" || trs[0].Steps[1].Msg.(map[string]any)["booted"] != true {
		t.Fatalf("start-up run: %+v", trs[0])
	}
	if at, _ := trs[0].Steps[0].Msg.(map[string]any)["startup"].(map[string]any)["at"].(string); at == "" {
		t.Fatalf("msg.startup.at missing: %+v", trs[0].Steps[0].Msg)
	}
	if err := rt.Deploy(t.Context(), f, 2); err != nil {
		t.Fatal(err)
	}
	trs = waitRuns(2)
	if trs[0].Version != 2 || trs[1].Version != 1 {
		t.Fatalf("versions %d, %d", trs[0].Version, trs[1].Version)
	}
	// A manual run from the start-up trigger still works.
	if _, err := rt.Run(t.Context(), "boot", "start", nil); err != nil {
		t.Fatal(err)
	}
	if got := len(rt.Traces("boot")); got != 3 {
		t.Fatalf("%d runs, want 3", got)
	}
}
