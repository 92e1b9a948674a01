package engine

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

func nopFactory(*Setup) (Block, error) {
	return BlockFunc(func(context.Context, *Exec, Msg) (string, error) { return "", nil }), nil
}

func TestRegisterErrors(t *testing.T) {
	ok := Spec{Type: "test.ok", Outputs: []string{"out"}}
	tests := []struct {
		name    string
		spec    Spec
		factory Factory
		msg     string // substring of the error
		is      error
	}{
		{name: "duplicate type", spec: ok, msg: "already registered", is: ErrDuplicateType},
		{name: "empty type", spec: Spec{}, msg: "must be namespaced"},
		{name: "un-namespaced type", spec: Spec{Type: "set"}, msg: "must be namespaced"},
		{name: "upper-case type", spec: Spec{Type: "Core.set"}, msg: "must be namespaced"},
		{name: "trailing dot", spec: Spec{Type: "core."}, msg: "must be namespaced"},
		{name: "dash in type", spec: Spec{Type: "core.my-set"}, msg: "must be namespaced"},
		{name: "nil factory", spec: Spec{Type: "test.nilf"}, factory: Factory(nil), msg: "nil factory"},
		{name: "empty field name", spec: Spec{Type: "test.a", Fields: []Field{{Kind: KindString}}}, msg: `bad or duplicate field name ""`},
		{name: "upper-case field name", spec: Spec{Type: "test.a", Fields: []Field{{Name: "Name", Kind: KindString}}}, msg: `field name "Name"`},
		{name: "dashed field name", spec: Spec{Type: "test.a", Fields: []Field{{Name: "max-age", Kind: KindString}}}, msg: `field name "max-age"`},
		{name: "duplicate field name", spec: Spec{Type: "test.a", Fields: []Field{{Name: "a", Kind: KindString}, {Name: "a", Kind: KindInt}}}, msg: `duplicate field name "a"`},
		{name: "unknown kind", spec: Spec{Type: "test.a", Fields: []Field{{Name: "a", Kind: "float"}}}, msg: `unknown kind "float"`},
		{name: "missing kind", spec: Spec{Type: "test.a", Fields: []Field{{Name: "a"}}}, msg: `unknown kind ""`},
		{name: "enum without values", spec: Spec{Type: "test.a", Fields: []Field{{Name: "a", Kind: KindEnum}}}, msg: "lists no values"},
		{name: "bad int default", spec: Spec{Type: "test.a", Fields: []Field{{Name: "a", Kind: KindInt, Default: "ten"}}}, msg: "default: must be a whole number"},
		{name: "default out of bounds", spec: Spec{Type: "test.a", Fields: []Field{{Name: "a", Kind: KindInt, Default: 0, Min: "1"}}}, msg: "default: must be at least 1"},
		{name: "bad enum default", spec: Spec{Type: "test.a", Fields: []Field{{Name: "a", Kind: KindEnum, Enum: []string{"x"}, Default: "y"}}}, msg: "default: must be one of"},
		{name: "bad duration default", spec: Spec{Type: "test.a", Fields: []Field{{Name: "a", Kind: KindDuration, Default: "2 days"}}}, msg: "default: must be a duration"},
		{name: "expression default that does not compile", spec: Spec{Type: "test.a", Fields: []Field{{Name: "a", Kind: KindExpr, Default: "msg.a +"}}}, msg: "default: "},
		{name: "expression default of the wrong type", spec: Spec{Type: "test.a", Fields: []Field{{Name: "a", Kind: KindExpr, Result: "bool", Default: `"yes"`}}}, msg: "expected bool"},
		{name: "exprmap default that does not compile", spec: Spec{Type: "test.a", Fields: []Field{{Name: "a", Kind: KindExprMap, Default: map[string]string{"x": "nope("}}}}, msg: "default: "},
		{name: "bad min", spec: Spec{Type: "test.a", Fields: []Field{{Name: "a", Kind: KindInt, Min: "one"}}}, msg: `bad bound "one"`},
		{name: "bad duration max", spec: Spec{Type: "test.a", Fields: []Field{{Name: "a", Kind: KindDuration, Max: "10"}}}, msg: `bad bound "10"`},
		{name: "bounds on a string", spec: Spec{Type: "test.a", Fields: []Field{{Name: "a", Kind: KindString, Max: "10"}}}, msg: "takes no bounds"},
		{name: "unknown result", spec: Spec{Type: "test.a", Fields: []Field{{Name: "a", Kind: KindExpr, Result: "int"}}}, msg: `unknown expression result "int"`},
		{name: "error output on a block", spec: Spec{Type: "test.a", Outputs: []string{"out", "error"}}, msg: `output port "error"`},
		{name: "bad output name", spec: Spec{Type: "test.a", Outputs: []string{"a b"}}, msg: `output port "a b"`},
		{name: "empty output name", spec: Spec{Type: "test.a", Outputs: []string{""}}, msg: `output port ""`},
		{name: "ref on a non-string field", spec: Spec{Type: "test.a", Fields: []Field{{Name: "a", Kind: KindInt, Ref: RefKeyset}}}, msg: `ref "keyset" needs a string field`},
		{name: "unknown ref", spec: Spec{Type: "test.a", Fields: []Field{{Name: "a", Kind: KindString, Ref: "secretstore"}}}, msg: `ref "secretstore" needs`},
		{name: "required_if without =", spec: Spec{Type: "test.a", Fields: []Field{{Name: "a", Kind: KindString}, {Name: "b", Kind: KindString, RequiredIf: "a"}}}, msg: `required_if "a" must be`},
		{name: "required_if on an unknown field", spec: Spec{Type: "test.a", Fields: []Field{{Name: "b", Kind: KindString, RequiredIf: "zz=1"}}}, msg: `required_if "zz=1"`},
		{name: "required_if on itself", spec: Spec{Type: "test.a", Fields: []Field{{Name: "b", Kind: KindString, RequiredIf: "b=1"}}}, msg: `required_if "b=1"`},
		{name: "ports on a string field", spec: Spec{Type: "test.a", DynamicOutputs: func(*Config) []string { return nil }, Fields: []Field{{Name: "a", Kind: KindString, Ports: true}}}, msg: `field "a": ports needs`},
		{name: "ports without DynamicOutputs", spec: Spec{Type: "test.a", Fields: []Field{{Name: "a", Kind: KindStrings, Ports: true}}}, msg: `field "a": ports needs`},
		{name: "duplicate output", spec: Spec{Type: "test.a", Outputs: []string{"out", "out"}}, msg: `duplicate output port "out"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := NewRegistry()
			if err := reg.Register(ok, nopFactory); err != nil {
				t.Fatal(err)
			}
			f := tt.factory
			if f == nil && tt.name != "nil factory" {
				f = nopFactory
			}
			err := reg.Register(tt.spec, f)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not contain %q", err, tt.msg)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
			}
			if tt.spec.Type != ok.Type {
				if _, found := reg.Spec(tt.spec.Type); found {
					t.Errorf("failed Register left %q registered", tt.spec.Type)
				}
			}
			defer func() {
				if recover() == nil {
					t.Errorf("MustRegister did not panic")
				}
			}()
			reg.MustRegister(tt.spec, f)
		})
	}
}

func TestRegisterGood(t *testing.T) {
	reg := NewRegistry()
	fields := []Field{
		{Name: "a", Kind: KindInt, Default: 3, Min: "1", Max: "5"},
		{Name: "b", Kind: KindDuration, Default: "1m", Min: "1s", Max: "1h"},
		{Name: "c", Kind: KindExpr, Result: "bool", Default: "msg.x > 1"},
		{Name: "d", Kind: KindExprMap, Default: map[string]string{"y": "1"}},
		{Name: "e", Kind: KindRules, Default: []any{map[string]any{"name": "r", "expr": "true"}}},
		{Name: "f", Kind: KindStrings, Default: []string{"x"}},
		{Name: "g", Kind: KindJSON, Default: map[string]any{"k": 1}},
		{Name: "h", Kind: KindNumber, Default: 0.5, Max: "1"},
		{Name: "i", Kind: KindSecret, Secret: true},
		{Name: "j", Kind: KindString, Ref: RefKeyset, RequiredIf: "k=keyset"},
		{Name: "k", Kind: KindEnum, Enum: []string{"keyset", "url"}},
	}
	outputs := []string{"ok", "nok"}
	spec := Spec{Type: "test.good", Category: "z", Fields: fields, Outputs: outputs, Sensitive: []string{"otp"}}
	if err := reg.Register(spec, nopFactory); err != nil {
		t.Fatal(err)
	}
	// The registry keeps its own copies of the spec's slices.
	fields[0].Name = "changed"
	outputs[0] = "changed"
	got, ok := reg.Spec("test.good")
	if !ok || got.Fields[0].Name != "a" || got.Outputs[0] != "ok" {
		t.Errorf("registered spec changed with the caller's slices: %+v", got)
	}
	if !reg.IsSecretField("test.good", "i") || reg.IsSecretField("test.good", "a") || reg.IsSecretField("test.nope", "i") {
		t.Errorf("IsSecretField wrong")
	}
	// A spec without fields and outputs gets empty, non-nil lists (the
	// JSON API shows [] not null).
	if err := reg.Register(Spec{Type: "test.bare"}, nopFactory); err != nil {
		t.Fatal(err)
	}
	bare, _ := reg.Spec("test.bare")
	if bare.Fields == nil || bare.Outputs == nil {
		t.Errorf("bare spec has nil lists: %+v", bare)
	}
	// A trigger may have an "error" output of its own.
	if err := reg.Register(Spec{Type: "test.trig", Trigger: true, Outputs: []string{"out", "error"}}, nopFactory); err != nil {
		t.Errorf("trigger with error output: %v", err)
	}
	// Defaults apply at build time.
	c, errs := parseConfig(&got, &Node{ID: "n"}, &compileEnv{})
	if errs != nil {
		t.Fatal(errs)
	}
	if c.Int("a") != 3 || c.Duration("b").String() != "1m0s" || c.Expr("c") == nil || len(c.Exprs("d")) != 1 ||
		len(c.Exprs("e")) != 1 || !slices.Equal(c.Strings("f"), []string{"x"}) || c.Number("h") != 0.5 || c.Has("a") {
		t.Errorf("defaults not applied: %+v", c.values)
	}
}

func TestSpecsSorted(t *testing.T) {
	reg := NewRegistry()
	for _, s := range []Spec{
		{Type: "jose.sign", Category: "jose"}, {Type: "core.switch", Category: "core"}, {Type: "http.in", Category: "http"},
		{Type: "core.set", Category: "core"}, {Type: "aaa.zz", Category: "zzz"}, {Type: "zzz.aa", Category: "aaa"},
	} {
		reg.MustRegister(s, nopFactory)
	}
	var got []string
	for _, s := range reg.Specs() {
		got = append(got, s.Category+"/"+s.Type)
	}
	want := []string{"aaa/zzz.aa", "core/core.set", "core/core.switch", "http/http.in", "jose/jose.sign", "zzz/aaa.zz"}
	if !slices.Equal(got, want) {
		t.Errorf("Specs() = %v, want %v", got, want)
	}
	if _, ok := reg.Spec("core.nope"); ok {
		t.Errorf("Spec(core.nope) found")
	}
}

func TestSpecPorts(t *testing.T) {
	dyn := func(c *Config) []string { return []string{"x", "out", "y"} }
	tests := []struct {
		name string
		spec Spec
		cfg  *Config
		want []string
	}{
		{"block", Spec{Outputs: []string{"out"}}, nil, []string{"out", "error"}},
		{"sink", Spec{Outputs: []string{}}, nil, []string{"error"}},
		{"trigger", Spec{Trigger: true, Outputs: []string{"out"}}, nil, []string{"out"}},
		{"dynamic, no config", Spec{Outputs: []string{"out"}, DynamicOutputs: dyn}, nil, []string{"out", "error"}},
		{"dynamic", Spec{Outputs: []string{"out"}, DynamicOutputs: dyn}, &Config{}, []string{"out", "x", "y", "error"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.spec.Ports(tt.cfg); !slices.Equal(got, tt.want) {
				t.Errorf("Ports = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestDynamicOutputsPanic: a buggy DynamicOutputs is a validation error,
// not a crash of the editor's validate call.
func TestDynamicOutputsPanic(t *testing.T) {
	reg := NewRegistry()
	reg.MustRegister(Spec{Type: "test.trigger", Trigger: true, Outputs: []string{"out"}}, nopFactory)
	reg.MustRegister(Spec{Type: "test.bad", Outputs: []string{"out"},
		DynamicOutputs: func(c *Config) []string { panic("index out of range") }}, nopFactory)
	f := mkFlow("f", []Node{node("t", "test.trigger", nil), node("b", "test.bad", nil), node("c", "test.bad", nil)},
		"t.out>b", "b.out>c")
	err := reg.Validate(f)
	ve := FirstValidation(err)
	if ve == nil || ve.Node != "b" || ve.Field != "wires[1].port" || !strings.Contains(ve.Msg, "index out of range") {
		t.Errorf("got %v", err)
	}
}

func TestConfigAccessorPanicsOnUndeclaredField(t *testing.T) {
	c := &Config{node: "n", fields: map[string]Field{"a": {Name: "a", Kind: KindInt}}, values: map[string]any{"a": int64(1)}}
	tests := []struct {
		name string
		get  func()
	}{
		{"undeclared", func() { c.String("zz") }},
		{"wrong kind", func() { c.String("a") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				p := recover()
				if p == nil || !strings.Contains(p.(string), `node "n"`) {
					t.Errorf("panic = %v", p)
				}
			}()
			tt.get()
		})
	}
	if c.Int("a") != 1 {
		t.Errorf("Int(a) = %d", c.Int("a"))
	}
}
