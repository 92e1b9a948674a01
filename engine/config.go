package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"
)

// Config is a node's config after validation against its spec: every value
// has its field's Go type, defaults are applied, and expressions are
// compiled. Accessors never fail; asking for a field the spec does not
// declare, or with the wrong kind, is a programmer error that panics at
// deploy (recovered into a deploy error).
type Config struct {
	node   string
	fields map[string]Field
	values map[string]any
	set    map[string]bool
}

// NamedExpr is one entry of an exprmap or rules field.
type NamedExpr struct {
	Name string
	Expr *Expr
}

func (c *Config) get(name string, kinds ...Kind) any {
	f, ok := c.fields[name]
	if !ok || !slices.Contains(kinds, f.Kind) {
		panic(fmt.Sprintf("engine: node %q: block asked for undeclared field %q as %v", c.node, name, kinds))
	}
	return c.values[name]
}

// Has reports whether the field was set in the document (not defaulted).
func (c *Config) Has(name string) bool { return c.set[name] }

// String returns a string, text, enum or secret field ("" when unset).
func (c *Config) String(name string) string {
	v, _ := c.get(name, KindString, KindText, KindEnum, KindSecret).(string)
	return v
}

// Int returns an int field.
func (c *Config) Int(name string) int64 {
	v, _ := c.get(name, KindInt).(int64)
	return v
}

// Number returns a number field.
func (c *Config) Number(name string) float64 {
	v, _ := c.get(name, KindNumber).(float64)
	return v
}

// Bool returns a bool field.
func (c *Config) Bool(name string) bool {
	v, _ := c.get(name, KindBool).(bool)
	return v
}

// Duration returns a duration field.
func (c *Config) Duration(name string) time.Duration {
	v, _ := c.get(name, KindDuration).(time.Duration)
	return v
}

// Strings returns a strings field.
func (c *Config) Strings(name string) []string {
	v, _ := c.get(name, KindStrings).([]string)
	return v
}

// Expr returns a compiled expression, or nil when the field is unset.
func (c *Config) Expr(name string) *Expr {
	v, _ := c.get(name, KindExpr).(*Expr)
	return v
}

// Exprs returns an exprmap (sorted by name) or rules (in order) field.
func (c *Config) Exprs(name string) []NamedExpr {
	v, _ := c.get(name, KindExprMap, KindRules).([]NamedExpr)
	return v
}

// JSON returns a json field decoded with numbers as json.Number.
func (c *Config) JSON(name string) any {
	return c.get(name, KindJSON)
}

// Errorf returns a deploy error naming the node and field.
func (c *Config) Errorf(field, format string, args ...any) error {
	return ValidationErrors{verr(c.node, field, format, args...)}
}

// parseConfig validates a node's raw config against its spec and compiles
// expressions. Every problem is reported, each naming node and field.
func parseConfig(spec *Spec, node *Node, cc *compileEnv) (*Config, ValidationErrors) {
	c := &Config{node: node.ID, fields: make(map[string]Field, len(spec.Fields)),
		values: make(map[string]any, len(spec.Fields)), set: map[string]bool{}}
	var errs ValidationErrors
	for _, name := range slices.Sorted(maps.Keys(node.Config)) {
		if _, ok := spec.field(name); !ok {
			errs = append(errs, verr(node.ID, name, "unknown field for block type %s", spec.Type))
		}
	}
	for _, f := range spec.Fields {
		c.fields[f.Name] = f
		raw, given := node.Config[f.Name]
		if given && string(raw) == "null" {
			given = false
		}
		if !given {
			if f.Required {
				errs = append(errs, verr(node.ID, f.Name, "required"))
				continue
			}
			if f.Default != nil {
				v, _ := parseField(f, f.Default)
				v, err := compileField(f, v, node.ID, cc)
				if err != nil {
					errs = append(errs, err...)
				}
				c.values[f.Name] = v
			} else {
				c.values[f.Name] = zeroOf(f.Kind)
			}
			continue
		}
		c.set[f.Name] = true
		var v any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			errs = append(errs, verr(node.ID, f.Name, "malformed JSON value"))
			continue
		}
		pv, err := parseField(f, v)
		if err != nil {
			errs = append(errs, verr(node.ID, f.Name, "%v", err))
			continue
		}
		if f.Required && isEmpty(pv) {
			errs = append(errs, verr(node.ID, f.Name, "required"))
			continue
		}
		pv, cerrs := compileField(f, pv, node.ID, cc)
		if cerrs != nil {
			errs = append(errs, cerrs...)
			continue
		}
		c.values[f.Name] = pv
	}
	return c, errs
}

func isEmpty(v any) bool {
	switch v := v.(type) {
	case string:
		return v == ""
	case []string:
		return len(v) == 0
	case []NamedExpr:
		return len(v) == 0
	}
	return false
}

func zeroOf(k Kind) any {
	switch k {
	case KindInt:
		return int64(0)
	case KindNumber:
		return float64(0)
	case KindBool:
		return false
	case KindDuration:
		return time.Duration(0)
	case KindStrings:
		return []string(nil)
	case KindExpr:
		return (*Expr)(nil)
	case KindExprMap, KindRules:
		return []NamedExpr(nil)
	case KindJSON:
		return nil
	}
	return ""
}

// rawRule is the parsed-but-not-compiled form of exprmap and rules values.
type rawRule struct{ name, src string }

// parseField converts a decoded JSON value (numbers as json.Number, or Go
// values from a spec default) to the field's Go type. Expressions are only
// checked for shape here; compileField compiles them.
func parseField(f Field, v any) (any, error) {
	switch f.Kind {
	case KindString, KindText, KindSecret:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("must be a string")
		}
		if f.Kind == KindString && bytes.ContainsAny([]byte(s), "\n\r") {
			return nil, fmt.Errorf("must be one line")
		}
		return s, nil
	case KindEnum:
		s, ok := v.(string)
		if !ok || !slices.Contains(f.Enum, s) {
			return nil, fmt.Errorf("must be one of %q", f.Enum)
		}
		return s, nil
	case KindBool:
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("must be true or false")
		}
		return b, nil
	case KindInt:
		n, err := toInt(v)
		if err != nil {
			return nil, err
		}
		if err := checkBounds(f, float64(n)); err != nil {
			return nil, err
		}
		return n, nil
	case KindNumber:
		x, err := toFloat(v)
		if err != nil {
			return nil, err
		}
		if err := checkBounds(f, x); err != nil {
			return nil, err
		}
		return x, nil
	case KindDuration:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("must be a duration text like \"90s\", \"15m\" or \"48h\"")
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("must be a duration like \"90s\", \"15m\" or \"48h\", not %q", s)
		}
		if d < 0 {
			return nil, fmt.Errorf("must not be negative")
		}
		if f.Min != "" {
			if min, _ := time.ParseDuration(f.Min); d < min {
				return nil, fmt.Errorf("must be at least %s", f.Min)
			}
		}
		if f.Max != "" {
			if max, _ := time.ParseDuration(f.Max); d > max {
				return nil, fmt.Errorf("must be at most %s", f.Max)
			}
		}
		return d, nil
	case KindStrings:
		switch list := v.(type) {
		case []string:
			return slices.Clone(list), nil
		case []any:
			out := make([]string, 0, len(list))
			for i, e := range list {
				s, ok := e.(string)
				if !ok {
					return nil, fmt.Errorf("item %d must be a string", i)
				}
				out = append(out, s)
			}
			return out, nil
		}
		return nil, fmt.Errorf("must be a list of strings")
	case KindExpr:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("must be an expression (a string)")
		}
		return s, nil
	case KindExprMap:
		m, ok := v.(map[string]any)
		if !ok {
			if ms, ok2 := v.(map[string]string); ok2 {
				m = map[string]any{}
				for k, s := range ms {
					m[k] = s
				}
			} else {
				return nil, fmt.Errorf("must be an object of name to expression")
			}
		}
		out := make([]rawRule, 0, len(m))
		for k, e := range m {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("entry %q must be an expression (a string)", k)
			}
			if k == "" {
				return nil, fmt.Errorf("entry names must not be empty")
			}
			out = append(out, rawRule{k, s})
		}
		slices.SortFunc(out, func(a, b rawRule) int { return cmpStrings(a.name, b.name) })
		return out, nil
	case KindRules:
		list, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf(`must be a list of {"name": ..., "expr": ...}`)
		}
		out := make([]rawRule, 0, len(list))
		seen := map[string]bool{}
		for i, e := range list {
			m, ok := e.(map[string]any)
			name, ok1 := m["name"].(string)
			src, ok2 := m["expr"].(string)
			if !ok || !ok1 || !ok2 || len(m) != 2 {
				return nil, fmt.Errorf(`item %d must be {"name": string, "expr": string}`, i)
			}
			if !portPattern.MatchString(name) || seen[name] {
				return nil, fmt.Errorf("item %d: name %q must be unique, 1-64 letters, digits, '_', '.' or '-'", i, name)
			}
			seen[name] = true
			out = append(out, rawRule{name, src})
		}
		return out, nil
	case KindJSON:
		return v, nil
	}
	return nil, fmt.Errorf("unknown kind %q", f.Kind)
}

func checkBounds(f Field, x float64) error {
	if f.Min != "" {
		if min, err := strconv.ParseFloat(f.Min, 64); err == nil && x < min {
			return fmt.Errorf("must be at least %s", f.Min)
		}
	}
	if f.Max != "" {
		if max, err := strconv.ParseFloat(f.Max, 64); err == nil && x > max {
			return fmt.Errorf("must be at most %s", f.Max)
		}
	}
	return nil
}

func toInt(v any) (int64, error) {
	switch n := v.(type) {
	case json.Number:
		i, err := strconv.ParseInt(string(n), 10, 64)
		if err == nil {
			return i, nil
		}
		// 1e3 and 5.0 are whole numbers too, when exactly representable.
		if x, ferr := strconv.ParseFloat(string(n), 64); ferr == nil && x == math.Trunc(x) && math.Abs(x) <= 1<<53 {
			return int64(x), nil
		}
		return 0, fmt.Errorf("must be a whole number, not %s", n)
	case int:
		return int64(n), nil
	case int64:
		return n, nil
	case float64:
		if n != math.Trunc(n) || math.Abs(n) > 1<<53 {
			return 0, fmt.Errorf("must be a whole number")
		}
		return int64(n), nil
	}
	return 0, fmt.Errorf("must be a whole number")
}

func toFloat(v any) (float64, error) {
	switch n := v.(type) {
	case json.Number:
		x, err := n.Float64()
		if err != nil || math.IsInf(x, 0) {
			return 0, fmt.Errorf("must be a finite number")
		}
		return x, nil
	case int:
		return float64(n), nil
	case int64:
		return float64(n), nil
	case float64:
		return n, nil
	}
	return 0, fmt.Errorf("must be a number")
}

// compileField compiles expression kinds; other kinds pass through.
func compileField(f Field, v any, node string, cc *compileEnv) (any, ValidationErrors) {
	switch f.Kind {
	case KindExpr:
		src := v.(string)
		if src == "" {
			return (*Expr)(nil), nil
		}
		e, err := cc.compile(src, f)
		if err != nil {
			return nil, ValidationErrors{exprError(node, f.Name, err)}
		}
		return e, nil
	case KindExprMap, KindRules:
		rules := v.([]rawRule)
		out := make([]NamedExpr, 0, len(rules))
		var errs ValidationErrors
		for _, r := range rules {
			e, err := cc.compile(r.src, f)
			if err != nil {
				errs = append(errs, exprError(node, f.Name+"."+r.name, err))
				continue
			}
			out = append(out, NamedExpr{Name: r.name, Expr: e})
		}
		if errs != nil {
			return nil, errs
		}
		return out, nil
	}
	return v, nil
}

func exprError(node, field string, err error) *ValidationError {
	ve := &ValidationError{Node: node, Field: field, Msg: err.Error()}
	var ee *ExprError
	if errors.As(err, &ee) {
		ve.Line, ve.Column, ve.Msg = ee.Line, ee.Column, ee.Msg
	}
	return ve
}
