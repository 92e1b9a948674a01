package enginetest_test

// This file is the whole of a new block type and its test, as a block
// author writes them: read engine/doc.go first, then copy this file.

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
)

// ---- the block: acme.limit ----

// errNotText is the run error for a field that holds no text; it leaves
// by the node's error port if that is wired.
var errNotText = errors.New("acme.limit: the field is not text")

// limitSpec is the one source for validation, the editor's form, the docs
// and the flow JSON Schema.
func limitSpec() engine.Spec {
	return engine.Spec{
		Type: "acme.limit", Title: "Limit length", Category: "acme",
		Description: "Sends a message out of ok when a text field is at most max characters long, else out of over.",
		Fields: []engine.Field{
			{Name: "field", Label: "Field", Kind: engine.KindString, Required: true,
				Help: "Top-level message member holding the text."},
			{Name: "max", Label: "Maximum", Kind: engine.KindInt, Default: 64, Min: "1",
				Help: "Most characters (not bytes) allowed."},
		},
		Outputs: []string{"ok", "over"},
		Bounded: true, // it adds nothing to the message
	}
}

// newLimitFromConfig parses the validated config once, at deploy; a
// problem the spec cannot express is a deploy error naming the field.
func newLimitFromConfig(s *engine.Setup) (engine.Block, error) {
	field := s.Config.String("field")
	if field == "error" {
		return nil, s.Errorf("field", "%q is where the engine puts errors", field)
	}
	return newLimit(field, int(s.Config.Int("max"))), nil
}

// limit is the built instance: pure, with no engine state, so unit tests
// can build it with newLimit directly.
type limit struct {
	field string
	max   int
}

var _ engine.Block = (*limit)(nil)

func newLimit(field string, max int) *limit { return &limit{field: field, max: max} }

func (l *limit) Process(_ context.Context, _ *engine.Exec, msg engine.Msg) (string, error) {
	s, ok := msg[l.field].(string)
	if !ok {
		return "", fmt.Errorf("%w (%q holds %T)", errNotText, l.field, msg[l.field])
	}
	if utf8.RuneCountInString(s) > l.max {
		return "over", nil
	}
	return "ok", nil
}

// Register adds the package's block types to a registry.
func Register(reg *engine.Registry) error {
	return reg.Register(limitSpec(), newLimitFromConfig)
}

// ---- its test ----

func TestLimit(t *testing.T) {
	reg := enginetest.Registry(t, Register)
	enginetest.Trigger(t, reg, "test.start")
	ok := enginetest.Sink(t, reg, "test.ok")
	failed := enginetest.Sink(t, reg, "test.failed")
	rt := enginetest.Runtime(t, reg, engine.Options{})
	enginetest.Deploy(t, rt, enginetest.Flow(t, "names", []enginetest.Node{
		{ID: "in", Type: "test.start"},
		{ID: "limit", Type: "acme.limit", Config: map[string]any{"field": "name", "max": 3}},
		{ID: "short", Type: "test.ok"},
		{ID: "failed", Type: "test.failed"},
	}, "in:out->limit", "limit:ok->short", "limit:error->failed"))

	tests := []struct {
		name      string
		msg       engine.Msg
		wantPorts []string
		wantOK    int // messages test.ok received
		wantError string
	}{
		{"short", engine.Msg{"name": "ann"}, []string{"in:out", "limit:ok", "short:"}, 1, ""},
		{"counts characters, not bytes", engine.Msg{"name": "añn"}, []string{"in:out", "limit:ok", "short:"}, 1, ""},
		{"over ends the branch unwired", engine.Msg{"name": "anna"}, []string{"in:out", "limit:over"}, 0, ""},
		{"not text goes out of error", engine.Msg{"name": 7}, []string{"in:out", "limit:error", "failed:"}, 0,
			`acme.limit: the field is not text ("name" holds int)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, beforeFailed := len(ok.Msgs()), len(failed.Msgs())
			tr, err := rt.Run(t.Context(), "names", "", tt.msg)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if got := enginetest.Ports(tr); !reflect.DeepEqual(got, tt.wantPorts) {
				t.Errorf("ports = %v, want %v", got, tt.wantPorts)
			}
			if got := len(ok.Msgs()) - before; got != tt.wantOK {
				t.Errorf("test.ok received %d messages, want %d", got, tt.wantOK)
			}
			if got := enginetest.Step(t, tr, "limit").Error; got != tt.wantError {
				t.Errorf("step error = %q, want %q", got, tt.wantError)
			}
			if tt.wantError != "" {
				got := failed.Msgs()[beforeFailed:]
				if len(got) != 1 || !reflect.DeepEqual(got[0]["error"], map[string]any{"message": tt.wantError, "node": "limit"}) {
					t.Errorf("error port sent %v, want one message with the error", got)
				}
			}
		})
	}
}

func TestLimitDeployErrors(t *testing.T) {
	reg := enginetest.Registry(t, Register)
	rt := enginetest.Runtime(t, reg, engine.Options{})
	tests := []struct {
		name      string
		config    map[string]any
		wantField string
		wantMsg   string
	}{
		{"field missing", map[string]any{"max": 3}, "field", "required"},
		{"max below its minimum", map[string]any{"field": "name", "max": 0}, "max", "at least 1"},
		{"field the engine owns", map[string]any{"field": "error"}, "field", "where the engine puts errors"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The refusal names the node and the field, as the editor shows it.
			enginetest.Refused(t, rt, enginetest.Flow(t, "bad", []enginetest.Node{{ID: "limit", Type: "acme.limit", Config: tt.config}}),
				engine.ValidationError{Node: "limit", Field: tt.wantField, Msg: tt.wantMsg})
		})
	}
}

// TestLimitSpecs: the spec documents every field, so the editor's form
// and the JSON Schema explain it.
func TestLimitSpecs(t *testing.T) {
	reg := enginetest.Registry(t, Register)
	enginetest.CheckSpecs(t, reg)
}
