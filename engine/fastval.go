package engine

import (
	"reflect"

	"github.com/expr-lang/expr/ast"
)

// fastVal evaluates, without the VM, the value expressions blocks such as
// core.set and jose.sign use to shape an answer: map literals with text
// keys, cond ? a : b with a fastCond condition, member paths and scalar
// literals inside them, e.g.
//
//	{"access_token": msg.access_token, "expires_in": 3600, "scope": msg.grant.scope}
//	msg.dpop != nil ? {"jkt": msg.dpop.jkt} : nil
//
// Like fastCond it answers only when it is sure the VM would give the
// same (a path it cannot walk through maps, or an undecided condition,
// sends the whole expression to the VM, which has no side effects); the
// value is what the VM gives: a fresh map[string]any per map literal,
// holding the message's own values, as the VM's does. Going around the VM
// also keeps a Lazy value the expression does not reach unbuilt (Exec.Env
// builds them all). TestFastVal holds it to the VM on random messages.
type fastVal struct {
	op    byte // 'c' constant, 'p' member path, 'm' map literal, '?' conditional
	konst any
	path  []string
	keys  []string
	vals  []*fastVal
	cond  *fastCond
	a, b  *fastVal
}

// compileVal returns the fast form of n when n is a map literal or a
// conditional of the shapes above (plain literals and paths have their
// own fast paths in Expr), nil otherwise.
func compileVal(n ast.Node) *fastVal {
	switch n.(type) {
	case *ast.MapNode, *ast.ConditionalNode:
		return compileValAny(n)
	}
	return nil
}

func compileValAny(n ast.Node) *fastVal {
	switch n := n.(type) {
	case *ast.StringNode:
		return &fastVal{op: 'c', konst: n.Value}
	case *ast.BoolNode:
		return &fastVal{op: 'c', konst: n.Value}
	case *ast.NilNode:
		return &fastVal{op: 'c'}
	case *ast.IntegerNode:
		// The compiler pushes an int unless the checker gave the
		// literal another type.
		if t := n.Type(); t != nil && t.Kind() != reflect.Int {
			return nil
		}
		return &fastVal{op: 'c', konst: n.Value}
	case *ast.FloatNode:
		if t := n.Type(); t != nil && t.Kind() != reflect.Float64 {
			return nil
		}
		return &fastVal{op: 'c', konst: n.Value}
	case *ast.MemberNode:
		if path, ok := msgPath(n); ok {
			return &fastVal{op: 'p', path: path}
		}
	case *ast.MapNode:
		v := &fastVal{op: 'm'}
		for _, p := range n.Pairs {
			pair, ok := p.(*ast.PairNode)
			if !ok {
				return nil
			}
			k, ok := pair.Key.(*ast.StringNode)
			if !ok {
				return nil
			}
			for _, seen := range v.keys {
				if seen == k.Value {
					return nil // which one the VM keeps is its business
				}
			}
			e := compileValAny(pair.Value)
			if e == nil {
				return nil
			}
			v.keys, v.vals = append(v.keys, k.Value), append(v.vals, e)
		}
		return v
	case *ast.ConditionalNode:
		c, a, b := compileCond(n.Cond), compileValAny(n.Exp1), compileValAny(n.Exp2)
		if c == nil || a == nil || b == nil {
			return nil
		}
		return &fastVal{op: '?', cond: c, a: a, b: b}
	}
	return nil
}

// eval returns the expression's value; ok is false when undecided.
func (v *fastVal) eval(msg Msg) (any, bool) {
	switch v.op {
	case 'c':
		return v.konst, true
	case 'p':
		return walkPath(msg, v.path)
	case 'm':
		m := make(map[string]any, len(v.keys))
		for i, k := range v.keys {
			e, ok := v.vals[i].eval(msg)
			if !ok {
				return nil, false
			}
			m[k] = e
		}
		return m, true
	case '?':
		c, ok := v.cond.eval(msg)
		if !ok {
			return nil, false
		}
		if c {
			return v.a.eval(msg)
		}
		return v.b.eval(msg)
	}
	return nil, false
}

// NewMap reports whether every value of the expression is a map made by
// that evaluation (a map literal of the fast shape): a block that keeps
// it need not copy the map itself, only the members that are containers,
// which may be the message's own.
func (e *Expr) NewMap() bool {
	return e != nil && e.val != nil && e.val.op == 'm'
}
