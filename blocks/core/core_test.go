package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
)

// newRuntime returns a runtime with the core blocks registered.
func newRuntime(t testing.TB, opts engine.Options) *engine.Runtime {
	t.Helper()
	return enginetest.Runtime(t, enginetest.Registry(t, Register), opts)
}

// refused deploys a flow that must be refused with want (node, field,
// line, column, a part of the message).
func refused(t *testing.T, f *engine.Flow, want engine.ValidationError) {
	t.Helper()
	enginetest.Refused(t, newRuntime(t, engine.Options{}), f, want)
}

// manualFlow is the usual flow under test: a core.manual node "in", then
// nodes, each wired from the "out" port of the one before.
func manualFlow(t *testing.T, id string, nodes ...enginetest.Node) *engine.Flow {
	t.Helper()
	return enginetest.Chain(t, id, append([]enginetest.Node{{ID: "in", Type: "core.manual"}}, nodes...)...)
}

func equal(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %#v\nwant %#v", what, got, want)
	}
}

// errorText returns err's text, "" for nil.
func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// fakeVars is a hand-written engine.VarStore: each method calls its
// function field, so a test sets only what it needs.
type fakeVars struct {
	LoadVarsFunc func(ctx context.Context, flow string) (map[string]any, error)
	SaveVarFunc  func(ctx context.Context, flow, key string, value any) error
}

var _ engine.VarStore = (*fakeVars)(nil)

func (f *fakeVars) LoadVars(ctx context.Context, flow string) (map[string]any, error) {
	return f.LoadVarsFunc(ctx, flow)
}

func (f *fakeVars) SaveVar(ctx context.Context, flow, key string, value any) error {
	return f.SaveVarFunc(ctx, flow, key, value)
}

// saved records the SaveVar calls of a fakeVars.
type saved struct {
	mu    sync.Mutex
	calls []string // "flow/key=value"
}

func (s *saved) add(flow, key string, value any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, fmt.Sprintf("%s/%s=%v", flow, key, value))
}

func (s *saved) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

// recordingVars returns a store that starts with initial and records saves.
func recordingVars(initial map[string]any) (*fakeVars, *saved) {
	rec := &saved{}
	return &fakeVars{
		LoadVarsFunc: func(context.Context, string) (map[string]any, error) { return initial, nil },
		SaveVarFunc: func(_ context.Context, flow, key string, value any) error {
			rec.add(flow, key, value)
			return nil
		},
	}, rec
}

func TestRegister(t *testing.T) {
	reg := enginetest.Registry(t, Register)
	want := []string{"core.call", "core.catch", "core.delay", "core.fail", "core.input", "core.kv_get", "core.kv_set", "core.log", "core.manual", "core.output", "core.set", "core.startup", "core.switch"}
	var got []string
	for _, s := range reg.Specs() {
		got = append(got, s.Type)
		if s.Category != Category {
			t.Errorf("spec %s: category %q, want %q", s.Type, s.Category, Category)
		}
	}
	equal(t, "registered types", got, want)
	enginetest.CheckSpecs(t, reg) // titles, labels, help, JSON Schema

	t.Run("twice", func(t *testing.T) {
		if err := Register(reg); !errors.Is(err, engine.ErrDuplicateType) {
			t.Errorf("second Register = %v, want ErrDuplicateType", err)
		}
	})
}

func TestManual(t *testing.T) {
	rt := newRuntime(t, engine.Options{})
	enginetest.Deploy(t, rt, enginetest.Flow(t, "m", []enginetest.Node{
		{ID: "start", Type: "core.manual"},
		{ID: "mark", Type: "core.set", Config: map[string]any{"set": map[string]any{"seen": "true"}}},
	}, "start:out->mark"))

	tests := []struct {
		name, node string
		in         engine.Msg
		wantPorts  []string
		wantMsg    any
		wantErr    string
	}{
		{name: "only trigger picked", node: "", in: engine.Msg{"a": 1},
			wantPorts: []string{"start:out", "mark:out"}, wantMsg: map[string]any{"a": 1, "seen": true}},
		{name: "named", node: "start", in: nil,
			wantPorts: []string{"start:out", "mark:out"}, wantMsg: map[string]any{"seen": true}},
		{name: "not a trigger", node: "mark", wantErr: `node "mark" is not a trigger`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := rt.Run(t.Context(), "m", tc.node, tc.in)
			if tc.wantErr != "" {
				if !strings.Contains(errorText(err), tc.wantErr) {
					t.Fatalf("Run error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			equal(t, "ports", enginetest.Ports(tr), tc.wantPorts)
			equal(t, "msg", enginetest.Step(t, tr, "mark").Msg, tc.wantMsg)
		})
	}

	t.Run("start and stop are no-ops", func(t *testing.T) {
		m := newManual()
		if err := m.Start(t.Context(), nil); err != nil {
			t.Errorf("Start: %v", err)
		}
		if err := m.Stop(t.Context()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
}

func jsonNumber(s string) json.Number { return json.Number(s) }

func redactFor(msg map[string]any) any { return engine.Redact(msg) }
