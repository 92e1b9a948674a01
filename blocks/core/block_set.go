package core

import (
	"context"
	"fmt"
	"slices"

	"github.com/flowd/flowd/engine"
)

func setSpec() engine.Spec {
	return engine.Spec{
		Type:     "core.set",
		Title:    "Set fields",
		Category: Category,
		Description: "Sets message fields from expressions and removes fields. Every expression " +
			"sees the message as it arrived, so the entries do not depend on each other's order; " +
			"then the listed fields are removed and the new values written.",
		Fields: []engine.Field{
			{Name: "set", Label: "Set", Kind: engine.KindExprMap,
				Help: "Field path -> expression. A path is dotted: \"user.id\" writes msg.user.id, " +
					"creating msg.user if needed. Example: {\"user.name\": \"upper(msg.name)\"}. " +
					"A literal text needs quotes inside the expression: \"\\\"admin\\\"\"."},
			{Name: "delete", Label: "Remove", Kind: engine.KindStrings,
				Help: "Field paths to remove, e.g. \"headers.authorization\" to drop a token " +
					"before the message is logged or answered. An absent field is ignored."},
		},
		Outputs: []string{"out"},
		// Values come from Expr.Eval; a path into a Lazy value (http.in's
		// msg.req) has it built first (Process).
		LazyMessage: true,
	}
}

type assignment struct {
	path path
	expr *engine.Expr
	// pathSize bounds what the path's keys add to the message's size
	// estimate besides the value: each key, and a map made for it.
	pathSize int
}

// setBlock evaluates every assignment against the incoming message before
// changing anything, so a failing expression or a path into a non-object
// leaves the message untouched for the error port.
type setBlock struct {
	assign []assignment
	del    []path
	// deep lists the first keys of paths with more than one key: a Lazy
	// value there is built before the path is walked.
	deep []string
}

var _ engine.Block = (*setBlock)(nil)

func newSetFromConfig(s *engine.Setup) (engine.Block, error) {
	c := s.Config
	entries := c.Exprs("set")
	if len(entries) == 0 && len(c.Strings("delete")) == 0 {
		return nil, s.Errorf("set", "required: give at least one field to set (or one to remove)")
	}
	var assign []assignment
	for _, e := range entries {
		p, err := parsePath(e.Name)
		if err != nil {
			return nil, s.Errorf("set."+e.Name, "%v", err)
		}
		for _, a := range assign {
			if err := overlap(a.path, p); err != nil {
				return nil, s.Errorf("set", "%v", err)
			}
		}
		assign = append(assign, assignment{path: p, expr: e.Expr})
	}
	var del []path
	for i, d := range c.Strings("delete") {
		p, err := parsePath(d)
		if err != nil {
			return nil, s.Errorf("delete", "item %d: %v", i, err)
		}
		for _, q := range del {
			if err := overlap(q, p); err != nil {
				return nil, s.Errorf("delete", "%v", err)
			}
		}
		for _, a := range assign {
			if err := overlap(a.path, p); err != nil {
				return nil, s.Errorf("delete", "%v; a field is either set or removed", err)
			}
		}
		del = append(del, p)
	}
	return newSet(assign, del), nil
}

func newSet(assign []assignment, del []path) *setBlock {
	for i := range assign {
		assign[i].pathSize = 0
		for _, k := range assign[i].path {
			assign[i].pathSize += len(k) + 4 + 2
		}
	}
	b := &setBlock{assign: assign, del: del}
	for _, p := range append(paths(assign), del...) {
		if len(p) > 1 && !slices.Contains(b.deep, p[0]) {
			b.deep = append(b.deep, p[0])
		}
	}
	return b
}

func paths(assign []assignment) []path {
	out := make([]path, len(assign))
	for i, a := range assign {
		out[i] = a.path
	}
	return out
}

func (b *setBlock) Process(ctx context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
	for _, k := range b.deep {
		if l, ok := msg[k].(engine.Lazy); ok {
			msg[k] = l.Value() // as the engine builds it for other blocks
		}
	}
	var buf [8]any
	vals := buf[:0]
	for _, a := range b.assign {
		v, err := a.expr.Eval(x, msg)
		if err != nil {
			return "", fmt.Errorf("set %q: %w", a.path.String(), err)
		}
		if err := checkSet(msg, a.path); err != nil {
			return "", fmt.Errorf("set %q: %w", a.path.String(), err)
		}
		// A copy, so that two paths never share one object: the value may
		// be a map from the message itself (msg.user). A map the
		// expression made is already new: only its members are copied.
		if m, ok := v.(map[string]any); ok && a.expr.NewMap() {
			for k, e := range m {
				m[k] = engine.CopyValue(e)
			}
		} else {
			v = engine.CopyValue(v)
		}
		vals = append(vals, v)
	}
	for _, p := range b.del {
		deletePath(msg, p)
	}
	grew := 0
	for i, a := range b.assign {
		// Cannot fail: checked above, and no path lies inside another, so
		// no write changes what another was checked against.
		if err := setPath(msg, a.path, vals[i]); err != nil {
			return "", fmt.Errorf("set %q: %w", a.path.String(), err)
		}
		// The value, and each key on its path with a map it may have
		// created: so the engine need not walk the whole message.
		grew += engine.MessageSize(vals[i]) + a.pathSize
	}
	x.Grew(grew)
	return "out", nil
}
