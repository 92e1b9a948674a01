package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"regexp"
	"slices"
	"testing"
)

func TestJSONSchema(t *testing.T) {
	reg := testRegistry(t, newHarness())
	b, err := reg.JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	b2, _ := reg.JSONSchema()
	if !bytes.Equal(b, b2) {
		t.Errorf("JSONSchema is not deterministic")
	}
	if s["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("$schema = %v", s["$schema"])
	}
	props := s["properties"].(map[string]any)
	if got := props["schema"].(map[string]any)["const"]; got != SchemaV1 {
		t.Errorf("schema const = %v", got)
	}
	nodeSchema := props["nodes"].(map[string]any)["items"].(map[string]any)
	enum := nodeSchema["properties"].(map[string]any)["type"].(map[string]any)["enum"].([]any)
	var want []any
	for _, sp := range reg.Specs() {
		want = append(want, sp.Type)
	}
	if !reflect.DeepEqual(enum, want) {
		t.Errorf("type enum = %v, want every type %v", enum, want)
	}
	// One if/then per type, with the config fields and required ones.
	variants := map[string]map[string]any{}
	for _, v := range nodeSchema["allOf"].([]any) {
		v := v.(map[string]any)
		typ := v["if"].(map[string]any)["properties"].(map[string]any)["type"].(map[string]any)["const"].(string)
		variants[typ] = v["then"].(map[string]any)
	}
	if len(variants) != len(want) {
		t.Errorf("%d variants for %d types", len(variants), len(want))
	}
	tests := []struct {
		typ       string
		required  []string
		fields    []string
		field     string
		fieldType string
	}{
		{typ: "test.kitchen", required: []string{"name"},
			fields: []string{"cond", "count", "data", "mode", "name", "on", "password", "ratio", "rules", "set", "tags", "text", "wait"},
			field:  "count", fieldType: "integer"},
		{typ: "test.cron", required: []string{"spec"}, fields: []string{"catch_up", "spec", "timezone"}, field: "catch_up", fieldType: "boolean"},
		{typ: "test.pass", required: nil, fields: []string{}},
		{typ: "test.set", required: []string{"set"}, fields: []string{"set"}, field: "set", fieldType: "object"},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			then := variants[tt.typ]
			if then == nil {
				t.Fatalf("no variant for %s", tt.typ)
			}
			cfg := then["properties"].(map[string]any)["config"].(map[string]any)
			var req []string
			for _, r := range asSlice(cfg["required"]) {
				req = append(req, r.(string))
			}
			if !slices.Equal(req, tt.required) {
				t.Errorf("required = %v, want %v", req, tt.required)
			}
			if wantCfg := len(tt.required) > 0; slices.Contains(asSlice(then["required"]), any("config")) != wantCfg {
				t.Errorf("config required = %v, want %v", then["required"], wantCfg)
			}
			var fields []string
			for k := range cfg["properties"].(map[string]any) {
				fields = append(fields, k)
			}
			slices.Sort(fields)
			if !slices.Equal(fields, tt.fields) && !(len(fields) == 0 && len(tt.fields) == 0) {
				t.Errorf("fields = %v, want %v", fields, tt.fields)
			}
			if cfg["additionalProperties"] != false {
				t.Errorf("additionalProperties = %v", cfg["additionalProperties"])
			}
			if tt.field != "" {
				if got := cfg["properties"].(map[string]any)[tt.field].(map[string]any)["type"]; got != tt.fieldType {
					t.Errorf("%s type = %v, want %s", tt.field, got, tt.fieldType)
				}
			}
		})
	}
	// Bounds, defaults, labels.
	kp := variants["test.kitchen"]["properties"].(map[string]any)["config"].(map[string]any)["properties"].(map[string]any)
	if c := kp["count"].(map[string]any); c["minimum"] != 1.0 || c["maximum"] != 10.0 {
		t.Errorf("count bounds = %v", c)
	}
	if m := kp["mode"].(map[string]any); !reflect.DeepEqual(m["enum"], []any{"a", "b"}) {
		t.Errorf("mode = %v", m)
	}
	hp := variants["test.http_in"]["properties"].(map[string]any)["config"].(map[string]any)["properties"].(map[string]any)
	if d := hp["method"].(map[string]any)["default"]; d != "GET" {
		t.Errorf("method default = %v", d)
	}
}

func TestJSONSchemaEmptyRegistry(t *testing.T) {
	b, err := NewRegistry().JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	// No "null" where JSON Schema wants an array: enum and allOf must be
	// arrays (allOf non-empty).
	if bytes.Contains(b, []byte("null")) {
		t.Errorf("schema of an empty registry contains null:\n%s", b)
	}
	if err := checkSchema(t, NewRegistry(), []byte(`{"schema":"flowd/v1","id":"e","nodes":[],"wires":[]}`)); err != nil {
		t.Errorf("empty flow: %v", err)
	}
}

// TestJSONSchemaAgreesWithEngine: documents the engine accepts pass the
// schema and documents with config errors it refuses fail it.
func TestJSONSchemaAgreesWithEngine(t *testing.T) {
	reg := testRegistry(t, newHarness())
	tests := []struct {
		name string
		doc  string
		ok   bool
	}{
		{"minimal", doc(trig), true},
		{"node without x and y", doc(`{"id":"t","type":"test.trigger"}`), true},
		{"durations Go reads", doc(trig, kitchen(`"wait":"0"`)), true},
		{"duration with fraction", doc(trig, kitchen(`"wait":"1.5m"`)), true},
		{"duration compound", doc(trig, kitchen(`"wait":"1m30s"`)), true},
		{"duration .5s", doc(trig, kitchen(`"wait":".5s"`)), true},
		{"all kinds", doc(trig, kitchen(`"text":"a\nb","count":3,"ratio":0.5,"on":true,"mode":"a","tags":["x"],"cond":"true",`+
			`"set":{"a":"1"},"rules":[{"name":"r","expr":"true"}],"data":{"any":[1,"x"]},"password":"db-password"`)), true},
		{"bad duration", doc(trig, kitchen(`"wait":"5 minutes"`)), false},
		{"unknown type", doc(trig, `{"id":"a","type":"test.nope"}`), false},
		{"unknown config field", doc(trig, kitchen(`"bogus":1`)), false},
		{"missing required field", doc(trig, `{"id":"k","type":"test.kitchen","config":{}}`), false},
		{"missing config with required field", doc(trig, `{"id":"k","type":"test.kitchen"}`), false},
		{"enum not listed", doc(trig, kitchen(`"mode":"c"`)), false},
		{"int under minimum", doc(trig, kitchen(`"count":0`)), false},
		{"string for int", doc(trig, kitchen(`"count":"1"`)), false},
		{"one-line string with newline", doc(trig, kitchen(`"name":"a\nb"`)), false},
		{"bad node id", doc(`{"id":"a b","type":"test.trigger"}`), false},
		{"wrong schema", `{"schema":"flowd/v2","id":"f"}`, false},
		{"unknown member", `{"schema":"flowd/v1","id":"f","extra":1}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, derr := DecodeFlow([]byte(tt.doc))
			if derr == nil {
				derr = reg.Validate(f)
			}
			if engineOK := derr == nil; engineOK != tt.ok {
				t.Fatalf("engine ok = %v (%v), want %v", engineOK, derr, tt.ok)
			}
			err := checkSchema(t, reg, []byte(tt.doc))
			if schemaOK := err == nil; schemaOK != tt.ok {
				t.Errorf("schema ok = %v (%v), want %v", schemaOK, err, tt.ok)
			}
		})
	}
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// checkSchema validates doc against reg's JSON Schema with a small
// validator for the keywords the schema uses. No external validator is
// needed, and an unsupported keyword fails the test so this stays honest.
func checkSchema(t testing.TB, reg *Registry, docb []byte) error {
	t.Helper()
	sb, err := reg.JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	var schema any
	if err := json.Unmarshal(sb, &schema); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(docb))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return err
	}
	return validateSchema(t, schema.(map[string]any), v, "")
}

func validateSchema(t testing.TB, s map[string]any, v any, path string) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...))
	}
	for kw := range s {
		switch kw {
		case "$schema", "$id", "title", "description", "default", "type", "properties", "required",
			"additionalProperties", "enum", "const", "pattern", "items", "allOf", "if", "then", "minimum", "maximum":
		default:
			t.Fatalf("checkSchema does not know keyword %q", kw)
		}
	}
	if typ, ok := s["type"].(string); ok {
		okType := false
		switch x := v.(type) {
		case map[string]any:
			okType = typ == "object"
		case []any:
			okType = typ == "array"
		case string:
			okType = typ == "string"
		case bool:
			okType = typ == "boolean"
		case json.Number:
			// JSON Schema integers are numbers without a fraction: 1e3 is one.
			f, _ := new(big.Float).SetString(string(x))
			okType = typ == "number" || (typ == "integer" && f != nil && f.IsInt())
		}
		if !okType {
			return fail("want %s, got %T", typ, v)
		}
	}
	if c, ok := s["const"]; ok && !reflect.DeepEqual(c, v) {
		return fail("want const %v", c)
	}
	if e, ok := s["enum"]; ok && !slices.ContainsFunc(e.([]any), func(x any) bool { return reflect.DeepEqual(x, v) }) {
		return fail("%v not in enum %v", v, e)
	}
	if p, ok := s["pattern"].(string); ok {
		if str, isStr := v.(string); isStr && !regexp.MustCompile(p).MatchString(str) {
			return fail("%q does not match %s", str, p)
		}
	}
	if n, ok := v.(json.Number); ok {
		x, _ := n.Float64()
		if m, ok := s["minimum"].(float64); ok && x < m {
			return fail("%v < minimum %v", x, m)
		}
		if m, ok := s["maximum"].(float64); ok && x > m {
			return fail("%v > maximum %v", x, m)
		}
	}
	if obj, ok := v.(map[string]any); ok {
		for _, r := range asSlice(s["required"]) {
			if _, has := obj[r.(string)]; !has {
				return fail("missing required %q", r)
			}
		}
		props, _ := s["properties"].(map[string]any)
		for k, e := range obj {
			if ps, ok := props[k]; ok {
				if err := validateSchema(t, ps.(map[string]any), e, path+"/"+k); err != nil {
					return err
				}
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case bool:
				if !ap {
					return fail("unknown member %q", k)
				}
			case map[string]any:
				if err := validateSchema(t, ap, e, path+"/"+k); err != nil {
					return err
				}
			}
		}
	}
	if arr, ok := v.([]any); ok {
		if items, ok := s["items"].(map[string]any); ok {
			for i, e := range arr {
				if err := validateSchema(t, items, e, fmt.Sprintf("%s/%d", path, i)); err != nil {
					return err
				}
			}
		}
	}
	for _, sub := range asSlice(s["allOf"]) {
		sub := sub.(map[string]any)
		if cond, ok := sub["if"].(map[string]any); ok {
			if validateSchema(t, cond, v, path) != nil {
				continue
			}
			if then, ok := sub["then"].(map[string]any); ok {
				if err := validateSchema(t, then, v, path); err != nil {
					return err
				}
			}
			continue
		}
		if err := validateSchema(t, sub, v, path); err != nil {
			return err
		}
	}
	return nil
}
