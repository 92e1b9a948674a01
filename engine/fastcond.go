package engine

import (
	"github.com/expr-lang/expr/ast"
)

// fastCond evaluates, without the VM, the commonest shape of a routing
// condition: comparisons of message members with a string or bool literal
// or nil (msg.a.b == "x", !=), type(msg.a) == "map", joined by &&, || and !.
// It answers only when it is sure the VM would answer the same; anything
// else (a member it cannot reach through maps, a value of another type)
// is undecided, and the whole expression goes to the VM, which is
// side-effect free, so starting over there is safe. TestFastCond holds it
// to the VM on random messages.
type fastCond struct {
	op   byte // '&' (and), '|' (or), '!' (not), '=' (member == literal), 't' (type(member) == literal)
	a, b *fastCond
	path []string
	lit  any // string or bool
	neg  bool
}

// compileCond returns the fast form of n, or nil when n has another shape.
func compileCond(n ast.Node) *fastCond {
	switch n := n.(type) {
	case *ast.BinaryNode:
		switch n.Operator {
		case "&&", "and", "||", "or":
			a, b := compileCond(n.Left), compileCond(n.Right)
			if a == nil || b == nil {
				return nil
			}
			op := byte('&')
			if n.Operator == "||" || n.Operator == "or" {
				op = '|'
			}
			return &fastCond{op: op, a: a, b: b}
		case "==", "!=":
			return compileCompare(n.Left, n.Right, n.Operator == "!=")
		}
	case *ast.UnaryNode:
		if n.Operator == "!" || n.Operator == "not" {
			if a := compileCond(n.Node); a != nil {
				return &fastCond{op: '!', a: a}
			}
		}
	}
	return nil
}

// compileCompare handles member == literal and type(member) == "name",
// either way round.
func compileCompare(l, r ast.Node, neg bool) *fastCond {
	lit, ok := literal(r)
	if !ok {
		l, r = r, l
		if lit, ok = literal(r); !ok {
			return nil
		}
	}
	if path, ok := msgPath(l); ok {
		return &fastCond{op: '=', path: path, lit: lit, neg: neg}
	}
	if b, ok := l.(*ast.BuiltinNode); ok && b.Name == "type" && len(b.Arguments) == 1 {
		name, isString := lit.(string)
		if path, ok := msgPath(b.Arguments[0]); ok && isString {
			return &fastCond{op: 't', path: path, lit: name, neg: neg}
		}
	}
	return nil
}

func literal(n ast.Node) (any, bool) {
	switch n := n.(type) {
	case *ast.StringNode:
		return n.Value, true
	case *ast.BoolNode:
		return n.Value, true
	case *ast.NilNode:
		return nil, true
	}
	return nil, false
}

// msgPath returns the members of msg.a.b (plain, not optional, not a
// method call).
func msgPath(n ast.Node) ([]string, bool) {
	var rev []string
	cur := n
	for {
		m, ok := cur.(*ast.MemberNode)
		if !ok {
			break
		}
		prop, ok := m.Property.(*ast.StringNode)
		if !ok || m.Optional || m.Method {
			return nil, false
		}
		rev = append(rev, prop.Value)
		cur = m.Node
	}
	if id, ok := cur.(*ast.IdentifierNode); !ok || id.Value != "msg" || len(rev) == 0 {
		return nil, false
	}
	out := make([]string, len(rev))
	for i, p := range rev {
		out[len(rev)-1-i] = p
	}
	return out, true
}

// eval returns the condition's value; ok is false when undecided.
func (c *fastCond) eval(msg Msg) (v, ok bool) {
	switch c.op {
	case '&', '|':
		a, ok := c.a.eval(msg)
		if !ok {
			return false, false
		}
		if a == (c.op == '|') { // short-circuit, as the VM does
			return a, true
		}
		return c.b.eval(msg)
	case '!':
		a, ok := c.a.eval(msg)
		return !a, ok
	case '=':
		got, ok := walkPath(msg, c.path)
		if !ok {
			return false, false
		}
		var eq bool
		switch g := got.(type) {
		case nil:
			eq = c.lit == nil // nil equals neither a string nor a bool
		case map[string]any:
			eq = c.lit == nil && g == nil // expr's Equal: two nils of any kind are equal
		case []any:
			eq = c.lit == nil && g == nil
		case string:
			s, isString := c.lit.(string)
			eq = isString && g == s
		case bool:
			b, isBool := c.lit.(bool)
			eq = isBool && g == b
		case float64, int:
			eq = false
		default:
			return false, false
		}
		return eq != c.neg, true
	case 't':
		got, ok := walkPath(msg, c.path)
		if !ok {
			return false, false
		}
		var name string
		switch got.(type) {
		case nil:
			name = "nil"
		case map[string]any:
			name = "map"
		case string:
			name = "string"
		case bool:
			name = "bool"
		case float64:
			name = "float"
		case int:
			name = "int"
		case []any:
			name = "array"
		default:
			return false, false
		}
		return (name == c.lit) != c.neg, true
	}
	return false, false
}
