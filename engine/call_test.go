package engine

import (
	"context"
	"errors"
	"testing"
)

type entryTrigger struct{ scope string }

func (entryTrigger) Process(context.Context, *Exec, Msg) (string, error) { return "out", nil }
func (entryTrigger) Start(context.Context, *TriggerContext) error        { return nil }
func (entryTrigger) Stop(context.Context) error                          { return nil }
func (entryTrigger) SubflowEntry()                                       {}

type catchTrigger struct{ entryTrigger }

func (catchTrigger) CatchScope() string { return CatchFlow }

// secretRegistry is the test registry plus a call of flow "sub" and a
// block that marks msg.p secret.
func secretRegistry(t *testing.T) *Registry {
	reg := testRegistry(t, newHarness())
	reg.MustRegister(Spec{Type: "test.call", Title: "Call", Category: "test", Outputs: []string{"ok"}},
		func(*Setup) (Block, error) {
			return BlockFunc(func(ctx context.Context, x *Exec, msg Msg) (string, error) {
				port, out, err := x.Call(ctx, "sub", msg)
				if err != nil {
					return "", err
				}
				ReplaceMsg(msg, out)
				return port, nil
			}), nil
		})
	reg.MustRegister(Spec{Type: "test.markp", Title: "Mark", Category: "test", Outputs: []string{"out"}},
		func(*Setup) (Block, error) {
			return BlockFunc(func(_ context.Context, x *Exec, msg Msg) (string, error) {
				msg["p"] = "plain-looking-secret-value"
				x.MarkSecret("plain-looking-secret-value")
				return "out", nil
			}), nil
		})
	return reg
}

func stepMsg(t *testing.T, tr *Trace, node string) Msg {
	t.Helper()
	for _, s := range tr.Steps {
		if s.Node == node {
			m, _ := s.Msg.(map[string]any)
			return m
		}
	}
	t.Fatalf("no step %s", node)
	return nil
}

// TestMarkedSecretsCrossCallsAndCatches: a value a sub-flow marks secret
// stays redacted in its caller's trace, and a value a failed run marked
// stays redacted in the catch run that gets the failing message.
func TestMarkedSecretsCrossCallsAndCatches(t *testing.T) {
	rt := newTestRuntime(t, nil, Options{Registry: secretRegistry(t)})
	deploy(t, rt, mkFlow("sub", []Node{node("in", "test.entry", nil), node("mark", "test.markp", nil), node("ret", "test.ret", nil)},
		"in.out>mark", "mark.out>ret"), 1)
	deploy(t, rt, mkFlow("app", []Node{node("go", "test.trigger", nil), node("call", "test.call", nil), node("c", "test.capture", nil)},
		"go.out>call", "call.ok>c"), 1)
	tr, err := rt.Run(t.Context(), "app", "go", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := stepMsg(t, tr, "c")["p"]; got != Redacted {
		t.Errorf("caller's trace shows the sub-flow's secret: %v", got)
	}

	deploy(t, rt, mkFlow("failing", []Node{node("go", "test.trigger", nil), node("mark", "test.markp", nil), node("f", "test.fail", nil),
		node("catch", "test.catch", nil), node("c", "test.capture", nil)}, "go.out>mark", "mark.out>f", "catch.out>c"), 1)
	if _, err := rt.Run(t.Context(), "failing", "go", nil); err == nil {
		t.Fatal("want a failure")
	}
	var catchRun *Trace
	for _, tr := range rt.Traces("failing") {
		if tr.Trigger == "catch" {
			catchRun = tr
		}
	}
	if catchRun == nil {
		t.Fatal("no catch run")
	}
	failed, _ := stepMsg(t, catchRun, "c")["message"].(map[string]any)
	if failed == nil || failed["p"] != Redacted {
		t.Errorf("catch run's trace shows the failed run's secret: %v", failed)
	}
}

func TestCallWithoutRuntime(t *testing.T) {
	x := &Exec{}
	if _, _, err := x.Call(t.Context(), "sub", nil); !errors.Is(err, ErrNotDeployed) {
		t.Errorf("err %v", err)
	}
	if err := x.Return("ok", nil); err != nil {
		t.Errorf("Return outside a call: %v", err)
	}
}
