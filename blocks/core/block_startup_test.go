package core

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
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

// sleeps is a recording engine.Options.Sleep that never waits: each call
// is sent on calls, then waits for the test to let it return (or ctx).
type sleeps struct {
	calls chan time.Duration
	goOn  chan struct{}
}

func newSleeps() *sleeps {
	return &sleeps{calls: make(chan time.Duration, 16), goOn: make(chan struct{}, 16)}
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.calls <- d
	select {
	case <-s.goOn:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// next is the next wait the trigger asks for.
func (s *sleeps) next(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-s.calls:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no retry was scheduled")
		return 0
	}
}

// retryFlow fails its start-up run while msg.startup.attempt < okFrom.
func retryFlow(t *testing.T, retry any, okFrom int) *engine.Flow {
	cfg := map[string]any{}
	if retry != nil {
		cfg["retry"] = retry
	}
	return enginetest.Flow(t, "boot", []enginetest.Node{
		{ID: "start", Type: "core.startup", Config: cfg},
		{ID: "sw", Type: "core.switch", Config: map[string]any{"rules": []any{
			map[string]any{"name": "early", "expr": fmt.Sprintf("msg.startup.attempt < %d", okFrom)}}}},
		{ID: "fail", Type: "core.fail", Config: map[string]any{"message": `"not ready yet"`}},
		{ID: "mark", Type: "core.set", Config: map[string]any{"set": map[string]any{"booted": "true"}}},
	}, "start:out->sw", "sw:early->fail", "sw:else->mark")
}

// TestStartupRetriesAFailedRun: a failed start-up run is started again
// after 1 s, 2 s, 4 s (each within a fifth), one attempt at a time, until
// one succeeds; each failure is a warning with the run and the error.
func TestStartupRetriesAFailedRun(t *testing.T) {
	sl := newSleeps()
	var logs enginetest.LogBuffer
	rt := newRuntime(t, engine.Options{Sleep: sl.sleep, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	enginetest.Deploy(t, rt, retryFlow(t, nil, 4))
	for i, base := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		d := sl.next(t)
		if lo, hi := base*4/5, base*6/5; d < lo || d > hi {
			t.Errorf("wait %d: %s, want %s to %s", i+1, d, lo, hi)
		}
		// One attempt at a time: the trigger waits here, with exactly
		// i+1 runs done, all failed.
		trs := rt.Traces("boot")
		if len(trs) != i+1 || trs[0].Status != engine.StatusError {
			t.Fatalf("before retry %d: %d runs, newest %s", i+1, len(trs), trs[0].Status)
		}
		sl.goOn <- struct{}{}
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(rt.Traces("boot")) < 4 || rt.Traces("boot")[0].Status != engine.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("no successful fourth attempt: %d runs", len(rt.Traces("boot")))
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case d := <-sl.calls:
		t.Fatalf("a wait of %s after the successful run", d)
	default:
	}
	var warned int
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "start-up run failed; trying again") &&
			strings.Contains(line, "not ready yet") && strings.Contains(line, "run=") {
			warned++
		}
	}
	if warned != 3 {
		t.Errorf("%d failure warnings, want 3:\n%s", warned, logs.String())
	}
}

// TestStartupRetryEnds: an undeploy ends a retry's wait (nothing fires
// after it), and retry false runs a failed start-up run once.
func TestStartupRetryEnds(t *testing.T) {
	t.Run("undeploy", func(t *testing.T) {
		sl := newSleeps()
		rt := newRuntime(t, engine.Options{Sleep: sl.sleep})
		enginetest.Deploy(t, rt, retryFlow(t, true, 100))
		sl.next(t)
		if err := rt.Undeploy(t.Context(), "boot"); err != nil {
			t.Fatal(err)
		}
		if got := len(rt.Traces("boot")); got != 1 {
			t.Fatalf("%d runs after the undeploy, want 1", got)
		}
	})
	t.Run("retry off", func(t *testing.T) {
		sl := newSleeps()
		rt := newRuntime(t, engine.Options{Sleep: sl.sleep})
		enginetest.Deploy(t, rt, retryFlow(t, false, 100))
		deadline := time.Now().Add(10 * time.Second)
		for len(rt.Traces("boot")) < 1 {
			if time.Now().After(deadline) {
				t.Fatal("no start-up run")
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err := rt.Undeploy(t.Context(), "boot"); err != nil { // waits for the trigger's goroutine
			t.Fatal(err)
		}
		select {
		case d := <-sl.calls:
			t.Fatalf("retry off waited %s for a retry", d)
		default:
		}
		if got := len(rt.Traces("boot")); got != 1 {
			t.Fatalf("%d runs, want 1", got)
		}
	})
}
