package enginetest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"testing"

	"github.com/flowd/flowd/engine"
)

// CheckSpecs checks what the editor, the docs and the flow JSON Schema
// need from every block type in reg, with one named subtest per type:
// a title, a category and a description; a label and help text on every
// field; and a JSON Schema (Registry.JSONSchema) that is well formed and
// names every type. Run it over the registry a program really builds.
func CheckSpecs(t *testing.T, reg *engine.Registry) {
	t.Helper()
	specs := reg.Specs()
	if len(specs) == 0 {
		t.Fatal("enginetest.CheckSpecs: the registry has no block types")
	}
	for _, s := range specs {
		t.Run(s.Type, func(t *testing.T) {
			for _, p := range SpecProblems(s) {
				t.Error(p)
			}
		})
	}
	t.Run("json_schema", func(t *testing.T) {
		data, err := reg.JSONSchema()
		if err != nil {
			t.Fatalf("JSONSchema: %v", err)
		}
		for _, p := range SchemaProblems(data, specs) {
			t.Error(p)
		}
	})
}

// SpecProblems lists what a spec lacks for the editor and the docs, one
// line each naming the type and field; nil when nothing is missing.
func SpecProblems(s engine.Spec) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, s.Type+": "+fmt.Sprintf(format, args...)) }
	if s.Title == "" {
		add("no title")
	}
	if s.Category == "" {
		add("no category")
	}
	if s.Description == "" {
		add("no description")
	}
	for _, f := range s.Fields {
		if f.Label == "" {
			add("field %q has no label", f.Name)
		}
		if f.Help == "" {
			add("field %q has no help text", f.Name)
		}
	}
	return out
}

// schemaKeywords are the JSON Schema keywords the flow schema may use;
// another one means the schema grew and this check must learn it.
var schemaKeywords = map[string]bool{
	"$schema": true, "$id": true, "title": true, "description": true, "default": true,
	"type": true, "properties": true, "required": true, "additionalProperties": true,
	"enum": true, "const": true, "pattern": true, "items": true, "allOf": true,
	"if": true, "then": true, "minimum": true, "maximum": true,
}

var schemaTypes = []string{"object", "array", "string", "number", "integer", "boolean", "null"}

// SchemaProblems checks a flow JSON Schema document: valid JSON, known
// keywords with values of the right shape, types JSON Schema defines,
// patterns that compile, required members that are declared, and one
// node variant per spec (and the node type enum listing exactly them).
func SchemaProblems(data []byte, specs []engine.Spec) []string {
	var root map[string]any
	if err := json.Unmarshal(data, &root); err != nil {
		return []string{fmt.Sprintf("schema is not a JSON object: %v", err)}
	}
	var out []string
	walkSchema(root, "#", &out)
	want := make([]string, 0, len(specs))
	for _, s := range specs {
		want = append(want, s.Type)
	}
	sort.Strings(want)
	node, _ := dig(root, "properties", "nodes", "items").(map[string]any)
	if node == nil {
		return append(out, "#/properties/nodes/items: missing")
	}
	var enum []string
	enumAny, _ := dig(node, "properties", "type", "enum").([]any)
	for _, e := range enumAny {
		s, _ := e.(string)
		enum = append(enum, s)
	}
	sort.Strings(enum)
	if !slices.Equal(enum, want) {
		out = append(out, fmt.Sprintf("node type enum %v, want the registry's types %v", enum, want))
	}
	var consts []string
	variants, _ := node["allOf"].([]any)
	for _, v := range variants {
		if c, ok := dig(v, "if", "properties", "type", "const").(string); ok {
			consts = append(consts, c)
		}
	}
	sort.Strings(consts)
	if !slices.Equal(consts, want) {
		out = append(out, fmt.Sprintf("node config variants for %v, want one per type %v", consts, want))
	}
	return out
}

// dig follows object members.
func dig(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

// walkSub checks v, found at path, as a subschema.
func walkSub(v any, path string, out *[]string) {
	sub, ok := v.(map[string]any)
	if !ok {
		*out = append(*out, path+": not a schema")
		return
	}
	walkSchema(sub, path, out)
}

func walkSchema(s map[string]any, path string, out *[]string) {
	bad := func(format string, args ...any) { *out = append(*out, path+": "+fmt.Sprintf(format, args...)) }
	for kw, v := range s {
		if !schemaKeywords[kw] {
			bad("unknown keyword %q", kw)
			continue
		}
		switch kw {
		case "type":
			if ty, ok := v.(string); !ok || !slices.Contains(schemaTypes, ty) {
				bad("type %v is not a JSON Schema type", v)
			}
		case "pattern":
			p, ok := v.(string)
			if !ok {
				bad("pattern %v is not a string", v)
			} else if _, err := regexp.Compile(p); err != nil {
				bad("pattern %q does not compile: %v", p, err)
			}
		case "enum":
			if e, ok := v.([]any); !ok || len(e) == 0 {
				bad("enum must be a non-empty array")
			}
		case "minimum", "maximum":
			if _, ok := v.(float64); !ok {
				bad("%s %v is not a number", kw, v)
			}
		case "required":
			req, ok := v.([]any)
			props, _ := s["properties"].(map[string]any)
			if !ok {
				bad("required is not an array")
				break
			}
			for _, r := range req {
				name, isStr := r.(string)
				if _, declared := props[name]; !isStr || !declared {
					bad("required member %v is not declared in properties", r)
				}
			}
		case "properties":
			props, ok := v.(map[string]any)
			if !ok {
				bad("properties is not an object")
				break
			}
			for name, p := range props {
				walkSub(p, path+"/properties/"+name, out)
			}
		case "items", "if", "then":
			walkSub(v, path+"/"+kw, out)
		case "additionalProperties":
			switch a := v.(type) {
			case bool:
			case map[string]any:
				walkSchema(a, path+"/additionalProperties", out)
			default:
				bad("additionalProperties is neither a boolean nor a schema")
			}
		case "allOf":
			subs, ok := v.([]any)
			if !ok || len(subs) == 0 {
				bad("allOf must be a non-empty array")
				break
			}
			for i, e := range subs {
				walkSub(e, fmt.Sprintf("%s/allOf/%d", path, i), out)
			}
		}
	}
}
