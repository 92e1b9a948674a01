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
)

// tnode is a node of a test flow.
type tnode struct {
	id, typ string
	cfg     map[string]any
}

// buildFlow encodes a test flow as a document and decodes it the way flowd
// reads files. Wires are "from:port->to".
func buildFlow(t testing.TB, id string, nodes []tnode, wires ...string) *engine.Flow {
	t.Helper()
	type jnode struct {
		ID     string         `json:"id"`
		Type   string         `json:"type"`
		Config map[string]any `json:"config,omitempty"`
		X      float64        `json:"x"`
		Y      float64        `json:"y"`
	}
	type jwire struct {
		From string `json:"from"`
		Port string `json:"port"`
		To   string `json:"to"`
	}
	doc := struct {
		Schema string  `json:"schema"`
		ID     string  `json:"id"`
		Name   string  `json:"name"`
		Nodes  []jnode `json:"nodes"`
		Wires  []jwire `json:"wires"`
	}{Schema: engine.SchemaV1, ID: id, Name: id, Nodes: []jnode{}, Wires: []jwire{}}
	for i, n := range nodes {
		doc.Nodes = append(doc.Nodes, jnode{ID: n.id, Type: n.typ, Config: n.cfg, X: float64(200 * i)})
	}
	for _, w := range wires {
		from, to, ok := strings.Cut(w, "->")
		node, port, ok2 := strings.Cut(from, ":")
		if !ok || !ok2 {
			t.Fatalf("bad wire %q, want from:port->to", w)
		}
		doc.Wires = append(doc.Wires, jwire{From: node, Port: port, To: to})
	}
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	f, err := engine.DecodeFlow(data)
	if err != nil {
		t.Fatalf("DecodeFlow: %v", err)
	}
	return f
}

// newRuntime returns a runtime with the core blocks registered.
func newRuntime(t testing.TB, opts engine.Options) *engine.Runtime {
	t.Helper()
	reg := engine.NewRegistry()
	if err := Register(reg); err != nil {
		t.Fatalf("Register: %v", err)
	}
	opts.Registry = reg
	rt, err := engine.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	return rt
}

// deploy deploys a flow that must be valid.
func deploy(t testing.TB, rt *engine.Runtime, f *engine.Flow) {
	t.Helper()
	if err := rt.Deploy(context.Background(), f, 1); err != nil {
		t.Fatalf("Deploy: %v", err)
	}
}

// deployError deploys a flow that must be refused and returns its first
// validation error.
func deployError(t *testing.T, f *engine.Flow) *engine.ValidationError {
	t.Helper()
	rt := newRuntime(t, engine.Options{})
	err := rt.Deploy(t.Context(), f, 1)
	if !errors.Is(err, engine.ErrInvalidFlow) {
		t.Fatalf("Deploy error = %v, want one wrapping ErrInvalidFlow", err)
	}
	ve := engine.FirstValidation(err)
	if ve == nil {
		t.Fatalf("Deploy error %v holds no ValidationError", err)
	}
	return ve
}

// ports lists "node:port" for every step of a trace, in order.
func ports(tr *engine.Trace) []string {
	out := make([]string, 0, len(tr.Steps))
	for _, s := range tr.Steps {
		out = append(out, s.Node+":"+s.Port)
	}
	return out
}

// step returns the trace step of a node.
func step(t *testing.T, tr *engine.Trace, node string) engine.Step {
	t.Helper()
	for _, s := range tr.Steps {
		if s.Node == node {
			return s
		}
	}
	t.Fatalf("no step for node %q in trace %v", node, ports(tr))
	return engine.Step{}
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
	reg := engine.NewRegistry()
	if err := Register(reg); err != nil {
		t.Fatalf("Register: %v", err)
	}
	want := []string{"core.call", "core.catch", "core.delay", "core.fail", "core.input", "core.kv_get", "core.kv_set", "core.log", "core.manual", "core.output", "core.set", "core.startup", "core.switch"}
	var got []string
	for _, s := range reg.Specs() {
		got = append(got, s.Type)
		t.Run(s.Type, func(t *testing.T) {
			if s.Title == "" || s.Description == "" || s.Category != Category {
				t.Errorf("spec %s: title %q, category %q, description %q: the editor needs all three",
					s.Type, s.Title, s.Category, s.Description)
			}
			for _, f := range s.Fields {
				if f.Label == "" || f.Help == "" {
					t.Errorf("field %s.%s: label %q, help %q: the editor needs both", s.Type, f.Name, f.Label, f.Help)
				}
			}
		})
	}
	equal(t, "registered types", got, want)

	t.Run("twice", func(t *testing.T) {
		if err := Register(reg); !errors.Is(err, engine.ErrDuplicateType) {
			t.Errorf("second Register = %v, want ErrDuplicateType", err)
		}
	})
	t.Run("json schema", func(t *testing.T) {
		data, err := reg.JSONSchema()
		if err != nil || !json.Valid(data) {
			t.Fatalf("JSONSchema: %v", err)
		}
		if !strings.Contains(string(data), `"core.switch"`) {
			t.Error("schema does not list core.switch")
		}
	})
}

func TestManual(t *testing.T) {
	rt := newRuntime(t, engine.Options{})
	deploy(t, rt, buildFlow(t, "m", []tnode{
		{"start", "core.manual", nil},
		{"mark", "core.set", map[string]any{"set": map[string]any{"seen": "true"}}},
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
			equal(t, "ports", ports(tr), tc.wantPorts)
			equal(t, "msg", step(t, tr, "mark").Msg, tc.wantMsg)
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
