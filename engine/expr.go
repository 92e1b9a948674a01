package engine

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// Env is the standard expression environment: the message, allow-listed
// environment variables, the flow's persistent variables and the run's
// start time.
type Env struct {
	Msg  Msg               `expr:"msg"`
	Env  map[string]string `expr:"env"`
	Flow map[string]any    `expr:"flow"`
	Now  time.Time         `expr:"now"`
}

// DefaultMaxExprNodes is the AST node budget of one expression.
const DefaultMaxExprNodes = 1000

// ExprError is an expression compile or run error with its position (1-based).
type ExprError struct {
	Line, Column int
	Msg          string
}

func (e *ExprError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Msg)
	}
	return e.Msg
}

// Expr is a compiled expression. It is safe for concurrent use.
type Expr struct {
	src  string
	prog *vm.Program
	std  bool // compiled against Env

	// Fast paths for the commonest shapes, found at compile time; both give
	// exactly what the VM would, and anything else goes to the VM.
	isConst bool     // a literal (after expr's constant folding): konst
	konst   any      // string, int, float64, bool or nil
	path    []string // msg.a.b (isPath): walked through map[string]any
	isPath  bool
	cond    *fastCond // a condition over message members (fastcond.go)
	val     *fastVal  // a map literal or conditional of those (fastval.go)
}

// String returns the expression source.
func (e *Expr) String() string { return e.src }

var vmPool = sync.Pool{New: func() any { return new(vm.VM) }}

// Eval evaluates an expression compiled against the standard environment.
func (e *Expr) Eval(x *Exec, msg Msg) (any, error) {
	if !e.std {
		return nil, errors.New("expression uses a block-specific environment: call Run")
	}
	if e.isConst {
		return e.konst, nil
	}
	if e.isPath {
		if v, ok := walkPath(msg, e.path); ok {
			return v, nil
		}
	}
	if e.cond != nil {
		if b, ok := e.cond.eval(msg); ok {
			return b, nil
		}
	}
	if e.val != nil {
		if v, ok := e.val.eval(msg); ok {
			return v, nil
		}
	}
	return e.Run(x.Env(msg))
}

// Constant returns the expression's value if it is a literal (after
// expr's constant folding) of an immutable type: string, int, float64,
// bool or nil. Blocks use it to do work once at deploy instead of per run.
func (e *Expr) Constant() (any, bool) {
	if e == nil || !e.isConst {
		return nil, false
	}
	return e.konst, true
}

// walkPath fetches msg.path[0].path[1]... while every step is a
// map[string]any; a missing last key is nil, as in the VM. ok is false
// when a step is anything else (nil, another type): the VM then decides,
// error message included. A Lazy value on the way answers the rest of the
// path itself when it can, and is built otherwise.
func walkPath(msg Msg, path []string) (any, bool) {
	var cur any = msg
	for i := 0; i < len(path); {
		switch m := cur.(type) {
		case map[string]any:
			cur = m[path[i]]
			i++
		case Lazy:
			if v, ok := m.Lookup(path[i:]); ok {
				return v, true
			}
			cur = m.Value()
		default:
			return nil, false
		}
	}
	if l, ok := cur.(Lazy); ok {
		cur = l.Value()
	}
	return cur, true
}

// fastPath sets the Expr's fast path, if its program is a literal or a
// member path on msg.
func (e *Expr) fastPath() {
	switch n := e.prog.Node().(type) {
	case *ast.StringNode, *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.NilNode, *ast.ConstantNode:
		// Run it once: the VM's value is the constant, whatever type the
		// checker gave the literal. Only immutable values qualify.
		v, err := vm.Run(e.prog, Env{})
		if err != nil {
			return
		}
		switch v.(type) {
		case nil, string, int, float64, bool:
			e.isConst, e.konst = true, v
		}
	case *ast.MemberNode:
		var rev []string
		var cur ast.Node = n
		for {
			m, ok := cur.(*ast.MemberNode)
			if !ok {
				break
			}
			prop, ok := m.Property.(*ast.StringNode)
			if !ok || m.Optional || m.Method {
				return
			}
			rev = append(rev, prop.Value)
			cur = m.Node
		}
		if id, ok := cur.(*ast.IdentifierNode); !ok || id.Value != "msg" {
			return
		}
		slices.Reverse(rev)
		e.path, e.isPath = rev, true
	}
}

// Run evaluates the expression against env, which must have the type the
// expression was compiled with (Env, or a pointer to it, for standard fields).
func (e *Expr) Run(env any) (out any, err error) {
	v := vmPool.Get().(*vm.VM)
	defer func() {
		if r := recover(); r != nil {
			err = &ExprError{Msg: fmt.Sprintf("expression failed: %v", r)}
		}
		vmPool.Put(v)
	}()
	out, err = v.Run(e.prog, env)
	if err != nil {
		return nil, toExprError(err)
	}
	return out, nil
}

// EvalBool evaluates an expression compiled with Result "bool".
func (e *Expr) EvalBool(x *Exec, msg Msg) (bool, error) {
	v, err := e.Eval(x, msg)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, &ExprError{Msg: fmt.Sprintf("expression %q gave %T, want bool", e.src, v)}
	}
	return b, nil
}

// EvalString evaluates an expression and formats a non-string result.
func (e *Expr) EvalString(x *Exec, msg Msg) (string, error) {
	v, err := e.Eval(x, msg)
	if err != nil {
		return "", err
	}
	switch s := v.(type) {
	case string:
		return s, nil
	case nil:
		return "", nil
	}
	return fmt.Sprint(v), nil
}

func toExprError(err error) error {
	var fe *file.Error
	if errors.As(err, &fe) {
		msg := fe.Message
		if fe.Prev != nil && !strings.Contains(msg, fe.Prev.Error()) {
			msg += ": " + fe.Prev.Error()
		}
		return &ExprError{Line: fe.Line, Column: fe.Column + 1, Msg: msg}
	}
	return &ExprError{Msg: err.Error()}
}

// compileEnv holds what expressions are compiled with at deploy.
type compileEnv struct {
	maxNodes uint
}

// CompileExpr compiles an expression against the standard environment, for
// blocks that build expressions outside their config fields, and for tests.
func CompileExpr(src string) (*Expr, error) {
	return (&compileEnv{maxNodes: DefaultMaxExprNodes}).compile(src, Field{Kind: KindExpr})
}

// CompileExprEnv compiles against a block-specific environment (a struct
// value with `expr:"name"` tags), with the standard helper functions.
func CompileExprEnv(src string, env any, result string) (*Expr, error) {
	return (&compileEnv{maxNodes: DefaultMaxExprNodes}).compile(src, Field{Kind: KindExpr, ExprEnv: env, Result: result})
}

func (cc *compileEnv) compile(src string, f Field) (*Expr, error) {
	if strings.TrimSpace(src) == "" {
		return nil, &ExprError{Msg: "empty expression"}
	}
	if len(src) > 16<<10 {
		return nil, &ExprError{Msg: "expression longer than 16 KiB"}
	}
	max := cc.maxNodes
	if max == 0 {
		max = DefaultMaxExprNodes
	}
	std := f.ExprEnv == nil
	var env any = Env{}
	if !std {
		env = f.ExprEnv
	}
	opts := append([]expr.Option{expr.Env(env), expr.MaxNodes(max)}, helpers...)
	switch f.Result {
	case "bool":
		opts = append(opts, expr.AsBool())
	case "string":
		opts = append(opts, expr.AsKind(reflect.String))
	case "number":
		opts = append(opts, expr.AsFloat64())
	}
	var prog *vm.Program
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("expression rejected: %v", r)
			}
		}()
		prog, err = expr.Compile(src, opts...)
	}()
	if err != nil {
		return nil, toExprError(err)
	}
	e := &Expr{src: src, prog: prog, std: std}
	if std && f.Result == "" {
		e.fastPath()
		e.val = compileVal(prog.Node())
	}
	if std && (f.Result == "" || f.Result == "bool") {
		e.cond = compileCond(prog.Node())
	}
	return e, nil
}

// helpers are the functions every expression may call, besides expr-lang's
// builtins (len, upper, split, toJSON, fromJSON, duration, date, ...).
var helpers = []expr.Option{
	expr.Function("uuid", func(...any) (any, error) { return newUUID(), nil }, new(func() string)),
	expr.Function("b64url", func(p ...any) (any, error) {
		switch v := p[0].(type) {
		case string:
			return base64.RawURLEncoding.EncodeToString([]byte(v)), nil
		case []byte:
			return base64.RawURLEncoding.EncodeToString(v), nil
		}
		return nil, fmt.Errorf("b64url: want a string, got %T", p[0])
	}, new(func(string) string), new(func([]byte) string)),
	expr.Function("b64urlDecode", func(p ...any) (any, error) {
		s, _ := p[0].(string)
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
		if err != nil {
			return nil, errors.New("b64urlDecode: not base64url")
		}
		return string(b), nil
	}, new(func(string) string)),
	expr.Function("randomHex", func(p ...any) (any, error) {
		n, _ := p[0].(int)
		if n < 1 || n > 256 {
			return nil, errors.New("randomHex: length must be 1..256 bytes")
		}
		b := make([]byte, n)
		rand.Read(b)
		return hex.EncodeToString(b), nil
	}, new(func(int) string)),
	expr.Function("unix", func(p ...any) (any, error) {
		t, ok := p[0].(time.Time)
		if !ok {
			return nil, errors.New("unix: want a time")
		}
		return t.Unix(), nil
	}, new(func(time.Time) int64)),
}

func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}
