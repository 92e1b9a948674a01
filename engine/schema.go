package engine

import (
	"encoding/json"
)

// JSONSchema returns a JSON Schema (draft 2020-12) of the flow document for
// the registry's block types, so editors and CI pipelines can validate flow
// files. Expressions and cross-node rules (wires, ports) are checked by
// `flowd validate`, not by the schema.
func (reg *Registry) JSONSchema() ([]byte, error) {
	var nodeVariants []any
	for _, s := range reg.Specs() {
		props := map[string]any{}
		var required []string
		for _, f := range s.Fields {
			fs := fieldSchema(f)
			if f.Label != "" {
				fs["title"] = f.Label
			}
			if f.Help != "" {
				fs["description"] = f.Help
			}
			if f.Default != nil {
				fs["default"] = f.Default
			}
			props[f.Name] = fs
			if f.Required {
				required = append(required, f.Name)
			}
		}
		cfg := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
		then := map[string]any{"properties": map[string]any{"config": cfg}}
		if len(required) > 0 {
			cfg["required"] = required
			then["required"] = []string{"config"}
		}
		nodeVariants = append(nodeVariants, map[string]any{
			"if":   map[string]any{"required": []string{"type"}, "properties": map[string]any{"type": map[string]any{"const": s.Type}}},
			"then": then,
		})
	}
	types := []string{}
	for _, s := range reg.Specs() {
		types = append(types, s.Type)
	}
	id := map[string]any{"type": "string", "pattern": idPattern.String()}
	node := map[string]any{
		"type":                 "object",
		"required":             []string{"id", "type"},
		"additionalProperties": false,
		"properties": map[string]any{
			"id":       id,
			"type":     map[string]any{"enum": types},
			"name":     map[string]any{"type": "string"},
			"config":   map[string]any{"type": "object"},
			"disabled": map[string]any{"type": "boolean"},
			"lint_ignore": map[string]any{"type": "array",
				"items": map[string]any{"type": "string", "pattern": checkIDPattern.String()}},
			"x": map[string]any{"type": "number"},
			"y": map[string]any{"type": "number"},
		},
	}
	if len(nodeVariants) > 0 { // allOf must not be empty
		node["allOf"] = nodeVariants
	}
	schema := map[string]any{
		"$schema":              "https://json-schema.org/draft/2020-12/schema",
		"$id":                  "https://flowd.dev/schema/flowd-v1.json",
		"title":                "flowd flow document (flowd/v1)",
		"type":                 "object",
		"required":             []string{"schema", "id"},
		"additionalProperties": false,
		"properties": map[string]any{
			"schema":      map[string]any{"const": SchemaV1},
			"id":          id,
			"name":        map[string]any{"type": "string"},
			"description": map[string]any{"type": "string"},
			"nodes":       map[string]any{"type": "array", "items": node},
			"wires": map[string]any{"type": "array", "items": map[string]any{
				"type":                 "object",
				"required":             []string{"from", "port", "to"},
				"additionalProperties": false,
				"properties": map[string]any{
					"from": id, "to": id, "port": map[string]any{"type": "string", "pattern": portPattern.String()},
				},
			}},
			"notes": map[string]any{"type": "array", "items": map[string]any{
				"type":                 "object",
				"required":             []string{"id", "text"},
				"additionalProperties": false,
				"properties": map[string]any{
					"id": id, "text": map[string]any{"type": "string"}, // at most MaxNoteBytes bytes: DecodeFlow checks
					"x": map[string]any{"type": "number"}, "y": map[string]any{"type": "number"},
				},
			}},
		},
	}
	return json.MarshalIndent(schema, "", "  ")
}

func fieldSchema(f Field) map[string]any {
	switch f.Kind {
	case KindString, KindSecret:
		return map[string]any{"type": "string", "pattern": "^[^\\r\\n]*$"}
	case KindText:
		return map[string]any{"type": "string"}
	case KindEnum:
		return map[string]any{"enum": f.Enum}
	case KindBool:
		return map[string]any{"type": "boolean"}
	case KindInt:
		return withBounds(map[string]any{"type": "integer"}, f)
	case KindNumber:
		return withBounds(map[string]any{"type": "number"}, f)
	case KindDuration:
		// What time.ParseDuration reads, less negative values.
		return map[string]any{"type": "string", "pattern": durationPattern}
	case KindStrings:
		return map[string]any{"type": "array", "items": map[string]any{"type": "string"}}
	case KindExpr:
		return map[string]any{"type": "string", "description": "expr-lang expression"}
	case KindExprMap:
		return map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}}
	case KindRules:
		return map[string]any{"type": "array", "items": map[string]any{
			"type": "object", "required": []string{"name", "expr"}, "additionalProperties": false,
			"properties": map[string]any{"name": map[string]any{"type": "string"}, "expr": map[string]any{"type": "string"}},
		}}
	}
	return map[string]any{}
}

const durationPattern = `^\+?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$`

func withBounds(m map[string]any, f Field) map[string]any {
	if f.Min != "" {
		m["minimum"] = json.Number(f.Min)
	}
	if f.Max != "" {
		m["maximum"] = json.Number(f.Max)
	}
	return m
}
