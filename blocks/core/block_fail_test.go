package core

import (
	"errors"
	"strings"
	"testing"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
)

func TestFail(t *testing.T) {
	const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbm4ifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
	tests := []struct {
		name      string
		message   string // expression; "" for the default
		wired     bool   // fail's error port leads to a set node
		in        engine.Msg
		wantText  string
		wantPorts []string
	}{
		{name: "wired: message leaves by error", message: `"unknown client " + msg.client`, wired: true,
			in:        engine.Msg{"client": "c1"},
			wantText:  "unknown client c1",
			wantPorts: []string{"in:out", "stop:error", "handler:out"}},
		{name: "not wired: run fails", message: `"unknown client " + msg.client`,
			in:        engine.Msg{"client": "c1"},
			wantText:  "unknown client c1",
			wantPorts: []string{"in:out", "stop:"}},
		{name: "default text", wired: true,
			wantText:  defaultFailText,
			wantPorts: []string{"in:out", "stop:error", "handler:out"}},
		{name: "empty result falls back to the default", message: "msg.none ?? \"\"",
			wantText:  defaultFailText,
			wantPorts: []string{"in:out", "stop:"}},
		{name: "secrets cut from the text", message: `"bad token " + msg.token + " for " + msg.user + " in " + msg.note`,
			in:        engine.Msg{"token": "tok-123456", "user": "ann", "note": "header " + jwt},
			wantText:  "bad token [redacted] for ann in header [redacted]",
			wantPorts: []string{"in:out", "stop:"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := map[string]any{}
			if tc.message != "" {
				cfg["message"] = tc.message
			}
			wires := []string{"in:out->stop"}
			if tc.wired {
				wires = append(wires, "stop:error->handler")
			}
			rt := newRuntime(t, engine.Options{})
			enginetest.Deploy(t, rt, enginetest.Flow(t, "f", []enginetest.Node{
				{ID: "in", Type: "core.manual"},
				{ID: "stop", Type: "core.fail", Config: cfg},
				{ID: "handler", Type: "core.set", Config: map[string]any{"set": map[string]any{"handled": "msg.error.message"}}},
			}, wires...))

			tr, err := rt.Run(t.Context(), "f", "", tc.in)
			equal(t, "ports", enginetest.Ports(tr), tc.wantPorts)
			equal(t, "step error", enginetest.Step(t, tr, "stop").Error, tc.wantText)
			if tc.wired {
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				equal(t, "status", tr.Status, engine.StatusOK)
				got := enginetest.Step(t, tr, "handler").Msg.(map[string]any)["handled"]
				equal(t, "msg.error.message", got, tc.wantText)
				return
			}
			if !errors.Is(err, ErrFail) {
				t.Errorf("Run error = %v, want one wrapping ErrFail", err)
			}
			equal(t, "run error", errorText(err), `node "stop": `+tc.wantText)
			equal(t, "status", tr.Status, engine.StatusError)
			equal(t, "error node", tr.ErrorNode, "stop")
			if strings.Contains(tr.Error, "tok-123456") || strings.Contains(tr.Error, jwt) {
				t.Errorf("trace error leaks a secret: %q", tr.Error)
			}
		})
	}

	t.Run("message expression error is not ErrFail", func(t *testing.T) {
		rt := newRuntime(t, engine.Options{})
		enginetest.Deploy(t, rt, manualFlow(t, "f", enginetest.Node{ID: "stop", Type: "core.fail", Config: map[string]any{"message": "msg.a.b"}}))
		_, err := rt.Run(t.Context(), "f", "", nil)
		if errors.Is(err, ErrFail) || !strings.Contains(errorText(err), "message: ") {
			t.Errorf("Run error = %v, want a message expression error", err)
		}
	})
}

func TestFailHasNoOutputs(t *testing.T) {
	refused(t, manualFlow(t, "f",
		enginetest.Node{ID: "stop", Type: "core.fail"},
		enginetest.Node{ID: "next", Type: "core.set", Config: map[string]any{"set": map[string]any{"x": "1"}}}),
		engine.ValidationError{Node: "stop", Field: "wires[1].port"})
}
