package core

import (
	"testing"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
)

func TestSwitch(t *testing.T) {
	// Every port of the switch leads to a set node that marks which way the
	// message went, and "error" is wired so rule failures are visible.
	rt := newRuntime(t, engine.Options{})
	enginetest.Deploy(t, rt, enginetest.Flow(t, "route", []enginetest.Node{
		{ID: "in", Type: "core.manual"},
		{ID: "sw", Type: "core.switch", Config: map[string]any{"rules": []any{
			map[string]any{"name": "admin", "expr": `msg.user?.role == "admin"`},
			map[string]any{"name": "adult", "expr": `(msg.user?.age ?? 0) >= 18`},
			map[string]any{"name": "flagged", "expr": `msg.flag`},
			map[string]any{"name": "strict", "expr": `msg.level > 2`},
		}}},
		{ID: "to_admin", Type: "core.set", Config: map[string]any{"set": map[string]any{"via": `"admin"`}}},
		{ID: "to_adult", Type: "core.set", Config: map[string]any{"set": map[string]any{"via": `"adult"`}}},
		{ID: "to_flagged", Type: "core.set", Config: map[string]any{"set": map[string]any{"via": `"flagged"`}}},
		{ID: "to_else", Type: "core.set", Config: map[string]any{"set": map[string]any{"via": `"else"`}}},
		{ID: "to_error", Type: "core.set", Config: map[string]any{"set": map[string]any{"via": `"error"`}}},
	},
		"in:out->sw",
		"sw:admin->to_admin", "sw:adult->to_adult", "sw:flagged->to_flagged",
		"sw:else->to_else", "sw:error->to_error",
		// "strict" is left unwired: a match there ends the branch.
	))

	tests := []struct {
		name      string
		in        engine.Msg
		wantPorts []string
		wantError string // the switch step's error
	}{
		{name: "first rule",
			in:        engine.Msg{"user": map[string]any{"role": "admin", "age": 40}},
			wantPorts: []string{"in:out", "sw:admin", "to_admin:out"}},
		{name: "first match wins over later ones",
			in:        engine.Msg{"user": map[string]any{"role": "admin"}, "flag": true},
			wantPorts: []string{"in:out", "sw:admin", "to_admin:out"}},
		{name: "second rule",
			in:        engine.Msg{"user": map[string]any{"role": "user", "age": 18}},
			wantPorts: []string{"in:out", "sw:adult", "to_adult:out"}},
		{name: "missing field is false for a bare condition",
			in:        engine.Msg{"flag": true, "level": 0},
			wantPorts: []string{"in:out", "sw:flagged", "to_flagged:out"}},
		{name: "unwired rule port ends the branch",
			in:        engine.Msg{"level": 3},
			wantPorts: []string{"in:out", "sw:strict"}},
		{name: "else",
			in:        engine.Msg{"user": map[string]any{"age": 12}, "flag": false, "level": 1},
			wantPorts: []string{"in:out", "sw:else", "to_else:out"}},
		{name: "non-bool value at run time goes to error",
			in:        engine.Msg{"flag": "yes"},
			wantPorts: []string{"in:out", "sw:error", "to_error:out"},
			wantError: `rule "flagged": line 1, column 1: invalid operation: bool(string)`},
		{name: "failing comparison goes to error",
			in:        engine.Msg{"flag": false},
			wantPorts: []string{"in:out", "sw:error", "to_error:out"},
			wantError: `rule "strict": line 1, column 11: invalid operation: <nil> > int`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := rt.Run(t.Context(), "route", "", tc.in)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			equal(t, "ports", enginetest.Ports(tr), tc.wantPorts)
			equal(t, "switch error", enginetest.Step(t, tr, "sw").Error, tc.wantError)
			equal(t, "status", tr.Status, engine.StatusOK)
		})
	}
}

func TestSwitchDeployErrors(t *testing.T) {
	rules := func(kv ...string) []any {
		var out []any
		for i := 0; i < len(kv); i += 2 {
			out = append(out, map[string]any{"name": kv[i], "expr": kv[i+1]})
		}
		return out
	}
	// want is the refusal at node "sw".
	want := func(field string, line, col int, msg string) engine.ValidationError {
		return engine.ValidationError{Node: "sw", Field: field, Line: line, Column: col, Msg: msg}
	}
	tests := []struct {
		name  string
		cfg   map[string]any
		wires []string
		want  engine.ValidationError
	}{
		{name: "a number is not a condition",
			cfg:  map[string]any{"rules": rules("ok", "msg.a == 1", "has_roles", "len(msg.roles)")},
			want: want("rules.has_roles", 0, 0, "expected bool, but got int")},
		{name: "a text is not a condition",
			cfg:  map[string]any{"rules": rules("admin", `"admin"`)},
			want: want("rules.admin", 0, 0, "expected bool, but got string")},
		{name: "syntax error with position",
			cfg:  map[string]any{"rules": rules("a", "msg.a ==")},
			want: want("rules.a", 1, 8, "unexpected token EOF")},
		{name: "else is reserved",
			cfg:  map[string]any{"rules": rules("else", "true")},
			want: want("rules", 0, 0, `rule name "else" is reserved`)},
		{name: "error is reserved",
			cfg:  map[string]any{"rules": rules("error", "true")},
			want: want("rules", 0, 0, `rule name "error" is reserved`)},
		{name: "duplicate names",
			cfg:  map[string]any{"rules": rules("a", "true", "a", "false")},
			want: want("rules", 0, 0, `name "a" must be unique`)},
		{name: "no rules",
			cfg:  map[string]any{"rules": []any{}},
			want: want("rules", 0, 0, "required")},
		{name: "wire from a port no rule makes",
			cfg:   map[string]any{"rules": rules("a", "true")},
			wires: []string{"sw:b->end"},
			want:  want("wires[1].port", 0, 0, `has no output port "b"`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			refused(t, enginetest.Flow(t, "f", []enginetest.Node{
				{ID: "in", Type: "core.manual"},
				{ID: "sw", Type: "core.switch", Config: tc.cfg},
				{ID: "end", Type: "core.set", Config: map[string]any{"set": map[string]any{"x": "1"}}},
			}, append([]string{"in:out->sw"}, tc.wires...)...), tc.want)
		})
	}
}

func TestSwitchPorts(t *testing.T) {
	reg := enginetest.Registry(t, Register)
	spec, _ := reg.Spec("core.switch")
	equal(t, "static outputs", spec.Outputs, []string{"else"})
	equal(t, "ports without config", spec.Ports(nil), []string{"else", "error"})

	// Every rule name is a port the editor can wire, next to else and error.
	end := enginetest.Node{ID: "end", Type: "core.set", Config: map[string]any{"set": map[string]any{"x": "1"}}}
	f := enginetest.Flow(t, "f", []enginetest.Node{
		{ID: "in", Type: "core.manual"},
		{ID: "sw", Type: "core.switch", Config: map[string]any{"rules": []any{
			map[string]any{"name": "b", "expr": "true"},
			map[string]any{"name": "a.2", "expr": "false"},
		}}},
		end,
	}, "in:out->sw", "sw:b->end", "sw:a.2->end", "sw:else->end", "sw:error->end")
	if err := reg.Validate(f); err != nil {
		t.Errorf("Validate: %v", err)
	}
}
