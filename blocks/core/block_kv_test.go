package core

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
)

// A value written by core.kv_set persists through the VarStore and is
// visible as flow.<name> in the expressions after it and in the next run.
func TestKVSetVisibleInNextRun(t *testing.T) {
	store, rec := recordingVars(map[string]any{"counter": float64(40)})
	rt := newRuntime(t, engine.Options{Vars: store})
	enginetest.Deploy(t, rt, manualFlow(t, "count",
		enginetest.Node{ID: "seen", Type: "core.set", Config: map[string]any{"set": map[string]any{"before": "flow.counter"}}},
		enginetest.Node{ID: "inc", Type: "core.kv_set", Config: map[string]any{"key": `"counter"`, "value": "(flow.counter ?? 0) + 1"}},
		enginetest.Node{ID: "after", Type: "core.set", Config: map[string]any{"set": map[string]any{"same_run": "flow.counter"}}}))

	tests := []struct {
		name                 string
		wantBefore, wantSame any
		wantSaved            []string
	}{
		{name: "first run sees the loaded value, then its write", wantBefore: float64(40), wantSame: float64(41),
			wantSaved: []string{"count/counter=41"}},
		{name: "second run sees the first write", wantBefore: float64(41), wantSame: float64(42),
			wantSaved: []string{"count/counter=41", "count/counter=42"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := rt.Run(t.Context(), "count", "", nil)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			equal(t, "ports", enginetest.Ports(tr), []string{"in:out", "seen:out", "inc:out", "after:out"})
			equal(t, "msg", enginetest.Step(t, tr, "after").Msg, map[string]any{"before": tc.wantBefore, "same_run": tc.wantSame})
			equal(t, "saved", rec.list(), tc.wantSaved)
		})
	}
}

func TestKVGet(t *testing.T) {
	store, _ := recordingVars(map[string]any{
		"profile":    map[string]any{"name": "ann"},
		"client:abc": map[string]any{"id": "abc"},
	})
	rt := newRuntime(t, engine.Options{Vars: store})
	enginetest.Deploy(t, rt, enginetest.Flow(t, "get", []enginetest.Node{
		{ID: "in", Type: "core.manual"},
		{ID: "get", Type: "core.kv_get", Config: map[string]any{"key": "msg.name", "target": "ctx.data"}},
		// Editing the copy must not change the stored variable.
		{ID: "edit", Type: "core.set", Config: map[string]any{"set": map[string]any{"ctx.data.name": `"bob"`}}},
		{ID: "none", Type: "core.set", Config: map[string]any{"set": map[string]any{"missing": "true"}}},
	}, "in:out->get", "get:found->edit", "get:missing->none"))

	tests := []struct {
		name      string
		in        engine.Msg
		wantPorts []string
		wantMsg   any // of the get step
		wantErr   string
	}{
		{name: "found object",
			in:        engine.Msg{"name": "profile"},
			wantPorts: []string{"in:out", "get:found", "edit:out"},
			wantMsg:   map[string]any{"name": "profile", "ctx": map[string]any{"data": map[string]any{"name": "ann"}}}},
		{name: "stored copy unchanged by the previous run",
			in:        engine.Msg{"name": "profile"},
			wantPorts: []string{"in:out", "get:found", "edit:out"},
			wantMsg:   map[string]any{"name": "profile", "ctx": map[string]any{"data": map[string]any{"name": "ann"}}}},
		{name: "key from an expression",
			in:        engine.Msg{"name": "client:abc"},
			wantPorts: []string{"in:out", "get:found", "edit:out"},
			wantMsg:   map[string]any{"name": "client:abc", "ctx": map[string]any{"data": map[string]any{"id": "abc"}}}},
		{name: "missing",
			in:        engine.Msg{"name": "nope"},
			wantPorts: []string{"in:out", "get:missing", "none:out"},
			wantMsg:   map[string]any{"name": "nope"}},
		{name: "empty key",
			in:        engine.Msg{},
			wantPorts: []string{"in:out", "get:"},
			wantMsg:   map[string]any{},
			wantErr:   `node "get": key: the variable name is empty`},
		{name: "target through a non-object",
			in:        engine.Msg{"name": "profile", "ctx": "s1"},
			wantPorts: []string{"in:out", "get:"},
			wantMsg:   map[string]any{"name": "profile", "ctx": "s1"},
			wantErr:   `target "ctx.data": msg.ctx is a string, not an object`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := rt.Run(t.Context(), "get", "", tc.in)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("Run: %v", err)
			}
			if !strings.Contains(errorText(err), tc.wantErr) {
				t.Fatalf("Run error = %v, want %q", err, tc.wantErr)
			}
			equal(t, "ports", enginetest.Ports(tr), tc.wantPorts)
			equal(t, "msg", enginetest.Step(t, tr, "get").Msg, tc.wantMsg)
		})
	}
}

func TestKVSet(t *testing.T) {
	type opaque struct{ A int }
	tests := []struct {
		name      string
		cfg       map[string]any
		in        engine.Msg
		wantErr   string   // the run's error
		wantSaved []string // SaveVar calls
		wantGet   any      // x.Vars().Get afterwards, via a kv_get run; nil: missing
	}{
		{name: "object, normalized to JSON types",
			cfg:       map[string]any{"key": `"cfg"`, "value": `{"n": 2, "tags": msg.tags, "h": msg.h}`},
			in:        engine.Msg{"tags": []string{"a"}, "h": map[string]string{"x": "y"}},
			wantSaved: []string{"f/cfg=map[h:map[x:y] n:2 tags:[a]]"},
			wantGet:   map[string]any{"n": float64(2), "tags": []any{"a"}, "h": map[string]any{"x": "y"}}},
		{name: "number from the message",
			cfg:       map[string]any{"key": `"n"`, "value": "msg.n"},
			in:        engine.Msg{"n": int64(7)},
			wantSaved: []string{"f/n=7"},
			wantGet:   float64(7)},
		{name: "delete",
			cfg:       map[string]any{"key": `"old"`, "delete": true},
			wantSaved: []string{"f/old=<nil>"}},
		{name: "nil value deletes",
			cfg:       map[string]any{"key": `"old"`, "value": "msg.nothing"},
			wantSaved: []string{"f/old=<nil>"}},
		{name: "time refused",
			cfg:     map[string]any{"key": `"at"`, "value": "now"},
			wantErr: `value of flow variable "at": a time cannot be stored as is; store string(now) or unix(now)`,
			wantGet: "kept"},
		{name: "Go value refused",
			cfg:     map[string]any{"key": `"at"`, "value": "{a: [msg.v]}"},
			in:      engine.Msg{"v": opaque{1}},
			wantErr: `value of flow variable "at": a: [0]: a core.opaque cannot be stored`,
			wantGet: "kept"},
		{name: "unsafe integer refused",
			cfg:     map[string]any{"key": `"at"`, "value": "msg.v"},
			in:      engine.Msg{"v": int64(1) << 60},
			wantErr: `integer beyond ±2^53 loses precision in JSON; store it as text`,
			wantGet: "kept"},
		{name: "NaN refused",
			cfg:     map[string]any{"key": `"at"`, "value": "msg.v"},
			in:      engine.Msg{"v": math.NaN()},
			wantErr: "NaN and infinite numbers are not JSON",
			wantGet: "kept"},
		{name: "store failure fails the run, value unchanged",
			cfg:     map[string]any{"key": `"fail"`, "value": "1"},
			wantErr: `save flow variable "fail": disk full`,
			wantGet: nil},
		{name: "key too long",
			cfg:     map[string]any{"key": `repeat("k", 300)`, "value": "1"},
			wantErr: "key: the variable name is 300 bytes, more than 256",
			wantGet: "kept"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &saved{}
			store := &fakeVars{
				LoadVarsFunc: func(context.Context, string) (map[string]any, error) {
					return map[string]any{"old": "x", "at": "kept"}, nil
				},
				SaveVarFunc: func(_ context.Context, flow, key string, value any) error {
					if key == "fail" {
						return errors.New("disk full")
					}
					rec.add(flow, key, value)
					return nil
				},
			}
			rt := newRuntime(t, engine.Options{Vars: store})
			enginetest.Deploy(t, rt, manualFlow(t, "f", enginetest.Node{ID: "kv", Type: "core.kv_set", Config: tc.cfg}))
			tr, err := rt.Run(t.Context(), "f", "", tc.in)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("Run: %v", err)
			}
			if !strings.Contains(errorText(err), tc.wantErr) {
				t.Fatalf("Run error = %v, want %q", err, tc.wantErr)
			}
			wantPort := "out"
			if tc.wantErr != "" {
				wantPort = ""
			}
			equal(t, "kv port", enginetest.Step(t, tr, "kv").Port, wantPort)
			equal(t, "saved", rec.list(), tc.wantSaved)

			// Read back what a later run sees, through core.kv_get.
			key := "at"
			if k, ok := tc.cfg["key"].(string); ok && !strings.Contains(k, "repeat") {
				key = strings.Trim(k, `"`)
			}
			enginetest.Deploy(t, rt, manualFlow(t, "f", enginetest.Node{ID: "get", Type: "core.kv_get", Config: map[string]any{"key": `"` + key + `"`}}))
			tr, err = rt.Run(t.Context(), "f", "", nil)
			if err != nil {
				t.Fatalf("kv_get run: %v", err)
			}
			got := enginetest.Step(t, tr, "get").Msg.(map[string]any)["value"]
			equal(t, "value read back", got, tc.wantGet)
		})
	}
}

func TestKVDeployErrors(t *testing.T) {
	tests := []struct {
		name, typ string
		cfg       map[string]any
		wantField string
		wantMsg   string
	}{
		{name: "set without value", typ: "core.kv_set",
			cfg: map[string]any{"key": `"a"`}, wantField: "value", wantMsg: "required unless delete is on"},
		{name: "delete with value", typ: "core.kv_set",
			cfg: map[string]any{"key": `"a"`, "value": "1", "delete": true}, wantField: "value", wantMsg: "must be empty when delete is on"},
		{name: "set without key", typ: "core.kv_set",
			cfg: map[string]any{"value": "1"}, wantField: "key", wantMsg: "required"},
		{name: "key not a string", typ: "core.kv_set",
			cfg: map[string]any{"key": "1", "value": "1"}, wantField: "key", wantMsg: "expected string, but got int"},
		{name: "get with bad target", typ: "core.kv_get",
			cfg: map[string]any{"key": `"a"`, "target": "a."}, wantField: "target", wantMsg: "has an empty key"},
		{name: "get without key", typ: "core.kv_get",
			cfg: map[string]any{"key": ""}, wantField: "key", wantMsg: "required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			refused(t, manualFlow(t, "f", enginetest.Node{ID: "kv", Type: tc.typ, Config: tc.cfg}),
				engine.ValidationError{Node: "kv", Field: tc.wantField, Msg: tc.wantMsg})
		})
	}
}

func TestJSONValue(t *testing.T) {
	deep := any("leaf")
	for range maxVarDepth + 1 {
		deep = []any{deep}
	}
	tests := []struct {
		name    string
		in      any
		want    any
		wantErr string
	}{
		{name: "nil", in: nil, want: nil},
		{name: "int", in: 3, want: float64(3)},
		{name: "uint8", in: uint8(3), want: float64(3)},
		{name: "float32", in: float32(1.5), want: float64(1.5)},
		{name: "json number", in: jsonNumber("12.5"), want: float64(12.5)},
		{name: "string list", in: []string{"a"}, want: []any{"a"}},
		{name: "header map", in: map[string][]string{"A": {"b"}}, want: map[string]any{"A": []any{"b"}}},
		{name: "big uint", in: uint64(1) << 54, wantErr: "loses precision"},
		{name: "negative big int", in: -(int64(1) << 54), wantErr: "loses precision"},
		{name: "infinity", in: jsonNumber("1e400"), wantErr: "out of range"},
		{name: "duration", in: time.Second, wantErr: "a duration cannot be stored"},
		{name: "bytes", in: []byte("x"), wantErr: "a []uint8 cannot be stored"},
		{name: "too deep", in: deep, wantErr: "nested deeper than 32 levels"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := jsonValue(tc.in, 0)
			if !strings.Contains(errorText(err), tc.wantErr) || (tc.wantErr == "" && err != nil) {
				t.Fatalf("error = %v, want %q", err, tc.wantErr)
			}
			equal(t, "value", got, tc.want)
		})
	}
}
