package core

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
)

// TestDelay: core.delay waits through the runtime's Sleep (a frozen clock
// in tests takes no real time), passes the message on, leaves by "error"
// when the run is cancelled while it waits, and refuses at deploy a wait
// that the run deadline could never allow.
func TestDelay(t *testing.T) {
	flow := func(d string) *engine.Flow {
		return enginetest.Flow(t, "d", []enginetest.Node{{ID: "go", Type: "core.manual"}, {ID: "wait", Type: "core.delay", Config: map[string]any{"duration": d}},
			{ID: "after", Type: "core.set", Config: map[string]any{"set": map[string]any{"done": "true"}}}}, "go:out->wait", "wait:out->after")
	}
	t.Run("waits with the runtime's sleep", func(t *testing.T) {
		var mu sync.Mutex
		var slept []time.Duration
		rt := newRuntime(t, engine.Options{Sleep: func(_ context.Context, d time.Duration) error {
			mu.Lock()
			slept = append(slept, d)
			mu.Unlock()
			return nil
		}})
		enginetest.Deploy(t, rt, flow("1500ms"))
		tr, err := rt.Run(t.Context(), "d", "", engine.Msg{"x": 1})
		if err != nil {
			t.Fatal(err)
		}
		equal(t, "ports", enginetest.Ports(tr), []string{"go:out", "wait:out", "after:out"})
		equal(t, "slept", slept, []time.Duration{1500 * time.Millisecond})
	})
	t.Run("cancelled while waiting", func(t *testing.T) {
		rt := newRuntime(t, engine.Options{}) // the real timer
		enginetest.Deploy(t, rt, flow("20s"))
		ctx, cancel := context.WithCancel(t.Context())
		// Cancelled before or while it waits, the run fails either way;
		// a delay that ignored ctx would hold the test for 20s.
		go func() { time.Sleep(10 * time.Millisecond); cancel() }()
		tr, err := rt.Run(ctx, "d", "", nil)
		if err == nil || tr == nil || slices.Contains(enginetest.Ports(tr), "after:out") {
			t.Fatalf("run after cancel: %v %v", err, tr)
		}
	})
	t.Run("error port gets the cancelled wait", func(t *testing.T) {
		rt := newRuntime(t, engine.Options{Sleep: func(context.Context, time.Duration) error { return context.Canceled }})
		f := enginetest.Flow(t, "d", []enginetest.Node{{ID: "go", Type: "core.manual"}, {ID: "wait", Type: "core.delay", Config: map[string]any{"duration": "1s"}},
			{ID: "log", Type: "core.set", Config: map[string]any{"set": map[string]any{"why": "msg.error.message"}}}}, "go:out->wait", "wait:error->log")
		enginetest.Deploy(t, rt, f)
		tr, err := rt.Run(t.Context(), "d", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		equal(t, "ports", enginetest.Ports(tr), []string{"go:out", "wait:error", "log:out"})
		if s := enginetest.Step(t, tr, "wait"); s.Error != "waiting 1s: context canceled" {
			t.Errorf("step error %q", s.Error)
		}
	})
	for _, tt := range []struct{ name, d, field string }{
		{"longer than the deadline", "31s", "duration"},
		{"longer than the bound", "6m", "duration"},
		{"zero", "0s", "duration"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			refused(t, flow(tt.d), engine.ValidationError{Node: "wait", Field: tt.field})
		})
	}
}
