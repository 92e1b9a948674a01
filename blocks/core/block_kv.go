package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/flowd/flowd/engine"
)

// Ports of core.kv_get.
const (
	FoundPort   = "found"
	MissingPort = "missing"
)

// maxKeyLen bounds a flow variable's name.
const maxKeyLen = 256

// maxVarDepth bounds the nesting of a flow variable's value.
const maxVarDepth = 32

// keyField is the variable name of core.kv_get and core.kv_set.
func keyField() engine.Field {
	return engine.Field{Name: "key", Label: "Variable", Kind: engine.KindExpr, Result: "string", Required: true,
		Help: "Expression for the variable name: \"counter\" (with the quotes) or \"client:\" + msg.client_id."}
}

func kvGetSpec() engine.Spec {
	return engine.Spec{
		Type:     "core.kv_get",
		Title:    "Get variable",
		Category: Category,
		Description: "Reads a flow variable (kept across runs and restarts) into the message. " +
			"Leaves by \"found\" with the value at the target field, or by \"missing\" unchanged.",
		Fields: []engine.Field{
			keyField(),
			{Name: "target", Label: "Target field", Kind: engine.KindString, Default: "value",
				Help: "Dotted message path that receives the value, e.g. \"session.user\"."},
		},
		Outputs: []string{FoundPort, MissingPort},
	}
}

type kvGetBlock struct {
	key    *engine.Expr
	target path
}

var _ engine.Block = (*kvGetBlock)(nil)

func newKVGetFromConfig(s *engine.Setup) (engine.Block, error) {
	target, err := parsePath(s.Config.String("target"))
	if err != nil {
		return nil, s.Errorf("target", "%v", err)
	}
	return newKVGet(s.Config.Expr("key"), target), nil
}

func newKVGet(key *engine.Expr, target path) *kvGetBlock {
	return &kvGetBlock{key: key, target: target}
}

func (b *kvGetBlock) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	key, err := evalKey(b.key, x, msg)
	if err != nil {
		return "", err
	}
	v, ok := x.Vars().Get(key)
	if !ok {
		return MissingPort, nil
	}
	// The stored value is shared by every run: the message gets a copy.
	if err := setPath(msg, b.target, engine.CopyValue(v)); err != nil {
		return "", fmt.Errorf("target %q: %w", b.target.String(), err)
	}
	return FoundPort, nil
}

func kvSetSpec() engine.Spec {
	return engine.Spec{
		Type:     "core.kv_set",
		Title:    "Set variable",
		Category: Category,
		Description: "Writes (or deletes) a flow variable, kept across runs and restarts. " +
			"Expressions after this node, and in later runs, see it as flow.<name>.",
		Fields: []engine.Field{
			keyField(),
			{Name: "value", Label: "Value", Kind: engine.KindExpr,
				Help: "Expression for the value: an object, list, text, number, true/false. " +
					"Times must be converted first: string(now) or unix(now). A nil value deletes."},
			{Name: "delete", Label: "Delete", Kind: engine.KindBool,
				Help: "Delete the variable instead of writing it; leave Value empty."},
		},
		Outputs: []string{"out"},
	}
}

type kvSetBlock struct {
	key   *engine.Expr
	value *engine.Expr // nil when del
	del   bool
}

var _ engine.Block = (*kvSetBlock)(nil)

func newKVSetFromConfig(s *engine.Setup) (engine.Block, error) {
	c := s.Config
	value, del := c.Expr("value"), c.Bool("delete")
	switch {
	case del && value != nil:
		return nil, s.Errorf("value", "must be empty when delete is on")
	case !del && value == nil:
		return nil, s.Errorf("value", "required unless delete is on")
	}
	return newKVSet(c.Expr("key"), value, del), nil
}

func newKVSet(key, value *engine.Expr, del bool) *kvSetBlock {
	return &kvSetBlock{key: key, value: value, del: del}
}

func (b *kvSetBlock) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	key, err := evalKey(b.key, x, msg)
	if err != nil {
		return "", err
	}
	var val any
	if !b.del {
		v, err := b.value.Eval(x, msg)
		if err != nil {
			return "", fmt.Errorf("value: %w", err)
		}
		if val, err = jsonValue(v, 0); err != nil {
			return "", fmt.Errorf("value of flow variable %q: %w", key, err)
		}
	}
	if err := x.Vars().Set(ctx, key, val); err != nil {
		return "", err
	}
	return "out", nil
}

func evalKey(e *engine.Expr, x *engine.Exec, msg engine.Msg) (string, error) {
	key, err := e.EvalString(x, msg)
	switch {
	case err != nil:
		return "", fmt.Errorf("key: %w", err)
	case key == "":
		return "", errors.New("key: the variable name is empty")
	case len(key) > maxKeyLen:
		return "", fmt.Errorf("key: the variable name is %d bytes, more than %d", len(key), maxKeyLen)
	}
	return key, nil
}

// maxSafeInt is the largest integer a float64, and so a JSON reader, holds exactly.
const maxSafeInt = 1 << 53

// jsonValue returns a deep copy of v in the form encoding/json decodes into
// an any (map[string]any, []any, string, float64, bool, nil), so a value
// reads the same from memory now as from a JSON-backed VarStore after a
// restart. Anything else is refused with a reason.
func jsonValue(v any, depth int) (any, error) {
	if depth > maxVarDepth {
		return nil, fmt.Errorf("nested deeper than %d levels", maxVarDepth)
	}
	switch t := v.(type) {
	case nil, bool, string:
		return t, nil
	case float64:
		return finite(t)
	case float32:
		return finite(float64(t))
	case int:
		return safeInt(int64(t))
	case int8:
		return float64(t), nil
	case int16:
		return float64(t), nil
	case int32:
		return float64(t), nil
	case int64:
		return safeInt(t)
	case uint8:
		return float64(t), nil
	case uint16:
		return float64(t), nil
	case uint32:
		return float64(t), nil
	case uint:
		if t > maxSafeInt {
			return nil, errTooBig
		}
		return float64(t), nil
	case uint64:
		if t > maxSafeInt {
			return nil, errTooBig
		}
		return float64(t), nil
	case json.Number:
		f, err := t.Float64()
		if err != nil {
			return nil, fmt.Errorf("number %s is out of range", t)
		}
		return finite(f)
	case map[string]any:
		return jsonMap(t, func(e any) (any, error) { return jsonValue(e, depth+1) })
	case []any:
		return jsonList(t, func(e any) (any, error) { return jsonValue(e, depth+1) })
	case []string:
		return jsonList(t, asIs)
	case map[string]string:
		return jsonMap(t, asIs)
	case map[string][]string:
		return jsonMap(t, func(e []string) (any, error) { return jsonList(e, asIs) })
	case time.Time:
		return nil, errors.New("a time cannot be stored as is; store string(now) or unix(now)")
	case time.Duration:
		return nil, errors.New("a duration cannot be stored as is; store string(d) or d.Seconds()")
	}
	return nil, fmt.Errorf("a %T cannot be stored; a flow variable holds an object, list, text, number, true/false or nil", v)
}

// jsonMap is jsonValue of a map: each member converted by conv, an error
// naming the member.
func jsonMap[V any](m map[string]V, conv func(V) (any, error)) (any, error) {
	out := make(map[string]any, len(m))
	for k, e := range m {
		c, err := conv(e)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out[k] = c
	}
	return out, nil
}

// jsonList is jsonValue of a list: each item converted by conv, an error
// naming the index.
func jsonList[V any](l []V, conv func(V) (any, error)) (any, error) {
	out := make([]any, len(l))
	for i, e := range l {
		c, err := conv(e)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		out[i] = c
	}
	return out, nil
}

// asIs converts a string of a typed container (headers, query values): a
// string needs no copy and is no deeper level.
func asIs(s string) (any, error) { return s, nil }

var errTooBig = errors.New("integer beyond ±2^53 loses precision in JSON; store it as text")

func safeInt(n int64) (any, error) {
	if n > maxSafeInt || n < -maxSafeInt {
		return nil, errTooBig
	}
	return float64(n), nil
}

func finite(f float64) (any, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, errors.New("NaN and infinite numbers are not JSON")
	}
	return f, nil
}
