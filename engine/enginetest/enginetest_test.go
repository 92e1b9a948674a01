package enginetest_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
)

func TestSpecProblems(t *testing.T) {
	good := engine.Field{Name: "a", Label: "A", Help: "The a.", Kind: engine.KindString}
	tests := []struct {
		name string
		spec engine.Spec
		want []string
	}{
		{"complete", engine.Spec{Type: "x.y", Title: "Y", Category: "x", Description: "d", Fields: []engine.Field{good}}, nil},
		{"no title, category, description", engine.Spec{Type: "x.y"},
			[]string{"x.y: no title", "x.y: no category", "x.y: no description"}},
		{"field without label and help", engine.Spec{Type: "x.y", Title: "Y", Category: "x", Description: "d",
			Fields: []engine.Field{good, {Name: "b", Kind: engine.KindInt}}},
			[]string{`x.y: field "b" has no label`, `x.y: field "b" has no help text`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := enginetest.SpecProblems(tt.spec); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("SpecProblems = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSchemaProblems(t *testing.T) {
	reg := enginetest.Registry(t, Register) // acme.limit, from the example block
	enginetest.Trigger(t, reg, "test.start")
	data, err := reg.JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	specs := reg.Specs()
	if got := enginetest.SchemaProblems(data, specs); got != nil {
		t.Fatalf("the engine's own schema has problems: %q", got)
	}
	// Each edit breaks the schema in one way and must be named.
	tests := []struct {
		name string
		edit func(root map[string]any)
		want string
	}{
		{"unknown keyword", func(r map[string]any) { r["oneOf"] = []any{} }, `#: unknown keyword "oneOf"`},
		{"bad type", func(r map[string]any) { r["type"] = "dict" }, "#: type dict is not a JSON Schema type"},
		{"pattern that does not compile", func(r map[string]any) {
			r["properties"].(map[string]any)["id"] = map[string]any{"type": "string", "pattern": "(["}
		}, "#/properties/id: pattern \"([\" does not compile"},
		{"a property that is no schema", func(r map[string]any) { r["properties"].(map[string]any)["name"] = "text" },
			"#/properties/name: not a schema"},
		{"required member not declared", func(r map[string]any) { r["required"] = []any{"schema", "nope"} },
			"#: required member nope is not declared in properties"},
		{"a type missing from the enum", func(r map[string]any) {
			node := r["properties"].(map[string]any)["nodes"].(map[string]any)["items"].(map[string]any)
			node["properties"].(map[string]any)["type"] = map[string]any{"enum": []any{"acme.limit"}}
		}, "node type enum [acme.limit], want the registry's types [acme.limit test.start]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var root map[string]any
			if err := json.Unmarshal(data, &root); err != nil {
				t.Fatal(err)
			}
			tt.edit(root)
			edited, err := json.Marshal(root)
			if err != nil {
				t.Fatal(err)
			}
			got := enginetest.SchemaProblems(edited, specs)
			found := false
			for _, p := range got {
				found = found || strings.HasPrefix(p, tt.want)
			}
			if !found {
				t.Errorf("SchemaProblems = %q, want one starting %q", got, tt.want)
			}
		})
	}
	if got := enginetest.SchemaProblems([]byte("[1]"), specs); len(got) != 1 || !strings.Contains(got[0], "not a JSON object") {
		t.Errorf("SchemaProblems of an array = %q", got)
	}
}

func TestClock(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := enginetest.NewClock(start)
	if got := c.Now(); !got.Equal(start) {
		t.Errorf("Now = %v, want %v", got, start)
	}
	if got := c.Advance(90 * time.Second); !got.Equal(start.Add(90*time.Second)) || !c.Now().Equal(got) {
		t.Errorf("Advance = %v, Now = %v, want %v", got, c.Now(), start.Add(90*time.Second))
	}
	c.Set(start)
	if !c.Now().Equal(start) {
		t.Errorf("after Set, Now = %v", c.Now())
	}
	// The runtime stamps runs with the fake clock.
	reg := engine.NewRegistry()
	enginetest.Trigger(t, reg, "test.start")
	rt := enginetest.Runtime(t, reg, engine.Options{Now: c.Now})
	enginetest.Deploy(t, rt, enginetest.Flow(t, "f", []enginetest.Node{{ID: "in", Type: "test.start"}}))
	tr, err := rt.Run(t.Context(), "f", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !tr.Started.Equal(start) {
		t.Errorf("trace started %v, want the fake clock's %v", tr.Started, start)
	}
}

func TestCaptureFailAndTraces(t *testing.T) {
	errBoom := errors.New("boom")
	reg := engine.NewRegistry()
	enginetest.Trigger(t, reg, "test.start")
	seen := enginetest.Capture(t, reg, "test.capture")
	enginetest.Fail(t, reg, "test.fail", errBoom)
	sink := &enginetest.Traces{}
	rt := enginetest.Runtime(t, reg, engine.Options{Traces: sink})
	enginetest.Deploy(t, rt, enginetest.Flow(t, "f", []enginetest.Node{
		{ID: "in", Type: "test.start"}, {ID: "seen", Type: "test.capture"}, {ID: "boom", Type: "test.fail"},
	}, "in:out->seen", "seen:out->boom"))

	msg := engine.Msg{"n": map[string]any{"k": "v"}}
	tr, err := rt.Run(t.Context(), "f", "", msg)
	if !errors.Is(err, errBoom) {
		t.Errorf("run error = %v, want boom", err)
	}
	if got, want := enginetest.Ports(tr), []string{"in:out", "seen:out", "boom:"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ports = %v, want %v", got, want)
	}
	got := seen.Received()
	if len(got) != 1 || got[0].Node != "seen" || !reflect.DeepEqual(got[0].Msg, msg) {
		t.Fatalf("captured %v, want the one message at node seen", got)
	}
	msg["n"].(map[string]any)["k"] = "changed" // the capture holds a copy
	if seen.Msgs()[0]["n"].(map[string]any)["k"] != "v" {
		t.Error("the captured message changed with the caller's")
	}
	if all := sink.All(); len(all) != 1 || all[0].ID != tr.ID || all[0].Status != engine.StatusError {
		t.Errorf("trace sink holds %v, want the failed run %s", all, tr.ID)
	}
}

func TestFlowJSON(t *testing.T) {
	tests := []struct {
		name  string
		nodes []enginetest.Node
		wires []string
		want  string
	}{
		{"one node, a row", []enginetest.Node{{ID: "a", Type: "x.y", Config: map[string]any{"k": 1}}}, []string{"a:out->a"},
			`{"schema":"flowd/v1","id":"f","name":"f","nodes":[{"id":"a","type":"x.y","config":{"k":1},"x":0,"y":0}],` +
				`"wires":[{"from":"a","port":"out","to":"a"}]}`},
		{"given positions kept, others in the row", []enginetest.Node{{ID: "a", Type: "x.y"}, {ID: "b", Type: "x.y", Y: 110}, {ID: "c", Type: "x.y"}}, nil,
			`{"schema":"flowd/v1","id":"f","name":"f","nodes":[{"id":"a","type":"x.y","x":0,"y":0},{"id":"b","type":"x.y","x":0,"y":110},` +
				`{"id":"c","type":"x.y","x":400,"y":0}],"wires":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := enginetest.FlowJSON(t, "f", tt.nodes, tt.wires...)
			if string(data) != tt.want {
				t.Errorf("FlowJSON =\n%s\nwant\n%s", data, tt.want)
			}
		})
	}
}

func TestRegistryChainAndSet(t *testing.T) {
	reg := enginetest.Registry(t, Register, func(reg *engine.Registry) error {
		enginetest.Trigger(t, reg, "test.start")
		enginetest.Set(t, reg, "test.set")
		return nil
	})
	if got, want := len(reg.Specs()), 3; got != want {
		t.Fatalf("registry holds %d types, want %d", got, want)
	}
	enginetest.CheckSpecs(t, reg)
	f := enginetest.Chain(t, "f",
		enginetest.Node{ID: "in", Type: "test.start"},
		enginetest.Node{ID: "name", Type: "test.set", Config: map[string]any{"set": map[string]any{"name": `"ann" + msg.tail`}}},
		enginetest.Node{ID: "limit", Type: "acme.limit", Config: map[string]any{"field": "name", "max": 3}})
	if got, want := len(f.Wires), 2; got != want {
		t.Fatalf("Chain wires = %v, want %d", f.Wires, want)
	}
	tests := []struct {
		name      string
		msg       engine.Msg
		wantPorts []string
		wantErr   string
	}{
		{"set feeds the next node", engine.Msg{"tail": ""}, []string{"in:out", "name:out", "limit:ok"}, ""},
		{"set value changes the port", engine.Msg{"tail": "a"}, []string{"in:out", "name:out", "limit:over"}, ""},
		{"failing expression fails the run", engine.Msg{"tail": 1}, []string{"in:out", "name:"}, "invalid operation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := enginetest.Run(t, reg, f, tt.msg)
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("run error = %v, want %q", err, tt.wantErr)
			}
			if got := enginetest.Ports(tr); !reflect.DeepEqual(got, tt.wantPorts) {
				t.Errorf("ports = %v, want %v", got, tt.wantPorts)
			}
		})
	}
	t.Run("a refusing register fails the test", func(t *testing.T) {
		rec := &recordTB{TB: t}
		func() {
			defer func() { _ = recover() }() // the fake Fatalf stops like the real one
			enginetest.Registry(rec, Register, Register)
		}()
		if len(rec.errs) != 1 || !strings.Contains(rec.errs[0], "already registered") {
			t.Errorf("reported %q, want one error about the duplicate type", rec.errs)
		}
	})
}

// recordTB records what a kit function reports instead of failing the
// test, so the kit's own failures can be checked. Its Fatalf panics to
// stop the caller, as the real one stops the goroutine.
type recordTB struct {
	testing.TB
	errs []string
}

func (r *recordTB) Helper() {}
func (r *recordTB) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *recordTB) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	panic("fatal")
}

func TestRefused(t *testing.T) {
	reg := enginetest.Registry(t, Register)
	rt := enginetest.Runtime(t, reg, engine.Options{})
	f := enginetest.Flow(t, "bad", []enginetest.Node{{ID: "limit", Type: "acme.limit", Config: map[string]any{"field": "error"}}})
	tests := []struct {
		name    string
		want    engine.ValidationError
		wantErr bool // Refused reports a mismatch
	}{
		{"matches", engine.ValidationError{Node: "limit", Field: "field", Msg: "where the engine puts errors"}, false},
		{"any message", engine.ValidationError{Node: "limit", Field: "field"}, false},
		{"other node", engine.ValidationError{Node: "other", Field: "field"}, true},
		{"other field", engine.ValidationError{Node: "limit", Field: "max"}, true},
		{"a line where there is none", engine.ValidationError{Node: "limit", Field: "field", Line: 1, Column: 1}, true},
		{"other message", engine.ValidationError{Node: "limit", Field: "field", Msg: "nope"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recordTB{TB: t}
			ve := enginetest.Refused(rec, rt, f, tt.want)
			if got := len(rec.errs) > 0; got != tt.wantErr {
				t.Errorf("Refused reported %q, want a mismatch: %v", rec.errs, tt.wantErr)
			}
			if ve == nil || ve.Node != "limit" {
				t.Errorf("Refused returned %v, want the error at node limit", ve)
			}
		})
	}
	t.Run("a flow the engine accepts", func(t *testing.T) {
		rec := &recordTB{TB: t}
		func() {
			defer func() { _ = recover() }()
			enginetest.Refused(rec, rt, enginetest.Flow(t, "good", []enginetest.Node{{ID: "limit", Type: "acme.limit",
				Config: map[string]any{"field": "name"}}}), engine.ValidationError{})
		}()
		if len(rec.errs) != 1 || !strings.Contains(rec.errs[0], "want one wrapping engine.ErrInvalidFlow") {
			t.Errorf("reported %q, want one error about the missing refusal", rec.errs)
		}
	})
}

func TestLogBuffer(t *testing.T) {
	var buf enginetest.LogBuffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			logger.Info("line", "n", i)
		}()
	}
	wg.Wait()
	if got := strings.Count(buf.String(), "msg=line"); got != 8 {
		t.Errorf("buffer holds %d lines, want 8:\n%s", got, buf.String())
	}
}

func TestFiles(t *testing.T) {
	good := enginetest.FlowJSON(t, "a", []enginetest.Node{{ID: "n", Type: "x.y"}})
	files := enginetest.Files(t, fstest.MapFS{"a.json": {Data: good}, "notes.txt": {Data: []byte("not a flow")}}, "*.json")
	if len(files) != 1 || files[0].Name != "a.json" || string(files[0].Doc) != string(good) || files[0].Flow.ID != "a" {
		t.Fatalf("Files = %+v, want a.json decoded", files)
	}
	tests := []struct {
		name string
		fsys fstest.MapFS
		want string
	}{
		{"no match", fstest.MapFS{"notes.txt": {Data: []byte("x")}}, "no flow files"},
		{"a document the engine refuses", fstest.MapFS{"a.json": {Data: good}, "b.json": {Data: []byte(`{"schema":"flowd/v0"}`)}}, "b.json: DecodeFlow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recordTB{TB: t}
			func() {
				defer func() { _ = recover() }()
				enginetest.Files(rec, tt.fsys, "*.json")
			}()
			if len(rec.errs) != 1 || !strings.Contains(rec.errs[0], tt.want) {
				t.Errorf("reported %q, want one error saying %q", rec.errs, tt.want)
			}
		})
	}
}
