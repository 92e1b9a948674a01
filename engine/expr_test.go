package engine

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestExprCompileErrors(t *testing.T) {
	tests := []struct {
		name         string
		src          string
		line, column int
		msg          string
	}{
		{"unknown name", "foo", 1, 1, "unknown name foo"},
		{"unknown name after spaces", "  foo", 1, 3, "unknown name foo"},
		{"unknown name after a tab", "\tfoo", 1, 2, "unknown name foo"},
		{"columns count characters, not bytes", `"é" + foo`, 1, 7, "unknown name foo"},
		{"syntax error on line 2", "msg.a ==\n  1 2", 2, 5, `unexpected token Number("2")`},
		{"unknown name on line 3", "msg.a &&\n\n    user.admin", 3, 5, "unknown name user"},
		{"stray bracket", "msg.a )", 1, 7, `unexpected token Bracket(")")`},
		{"unterminated string", `"abc`, 1, 5, "literal not terminated"},
		{"wrong argument count", "len(1, 2)", 1, 1, "invalid number of arguments"},
		{"empty", "   ", 0, 0, "empty expression"},
		{"too long", strings.Repeat("1", 16<<10+1), 0, 0, "longer than 16 KiB"},
		{"constant division by zero", "1 % 0", 1, 3, "integer divide by zero"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CompileExpr(tt.src)
			var ee *ExprError
			if !errors.As(err, &ee) {
				t.Fatalf("got %T %v, want *ExprError", err, err)
			}
			if ee.Line != tt.line || ee.Column != tt.column || !strings.Contains(ee.Msg, tt.msg) {
				t.Errorf("got line %d column %d %q, want line %d column %d %q", ee.Line, ee.Column, ee.Msg, tt.line, tt.column, tt.msg)
			}
			if tt.line > 0 && !strings.HasPrefix(ee.Error(), fmt.Sprintf("line %d, column %d: ", tt.line, tt.column)) {
				t.Errorf("Error() = %q", ee.Error())
			}
		})
	}
}

func TestExprNodeBudget(t *testing.T) {
	giant := strings.TrimSuffix(strings.Repeat("1 + ", 2000), " + ") + "1"
	if _, err := CompileExpr(giant); err == nil || !strings.Contains(err.Error(), "exceeds maximum allowed nodes") {
		t.Errorf("giant expression: %v", err)
	}
	// The runtime's budget applies to deployed flows.
	small := strings.TrimSuffix(strings.Repeat("msg.a + ", 20), " + ")
	h := newHarness()
	rt := newTestRuntime(t, h, Options{MaxExprNodes: 10})
	f := mkFlow("f", []Node{node("t", "test.trigger", nil), node("s", "test.set", map[string]any{"set": map[string]string{"x": small}})}, "t.out>s")
	err := rt.Validate(t.Context(), f)
	if ve := FirstValidation(err); ve == nil || ve.Node != "s" || ve.Field != "set.x" || !strings.Contains(ve.Msg, "exceeds maximum allowed nodes") {
		t.Errorf("budget of 10: %v", err)
	}
	if err := rt.Deploy(t.Context(), f, 1); err == nil {
		t.Errorf("Deploy accepted an expression over budget")
	}
	// The registry's default budget (1000) accepts it.
	if err := rt.Registry().Validate(f); err != nil {
		t.Errorf("default budget: %v", err)
	}
}

// evalStd compiles src and evaluates it against a fresh Exec.
func evalStd(t *testing.T, src string, msg Msg) (any, error) {
	t.Helper()
	e, err := CompileExpr(src)
	if err != nil {
		t.Fatalf("compile %q: %v", src, err)
	}
	return e.Eval(&Exec{env: Env{Now: time.Unix(1700000000, 5).UTC(), Env: map[string]string{"REGION": "eu"}}}, msg)
}

func TestExprHelpers(t *testing.T) {
	uuidRe := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	tests := []struct {
		name  string
		src   string
		msg   Msg
		check func(v any) bool
		want  string // description for failures
	}{
		{"uuid", "uuid()", nil, func(v any) bool { return uuidRe.MatchString(v.(string)) }, "a v4 uuid"},
		{"two uuids differ", "uuid() != uuid()", nil, func(v any) bool { return v == true }, "true"},
		{"b64url", `b64url("hi?>")`, nil, func(v any) bool { return v == "aGk_Pg" }, "aGk_Pg"},
		{"b64url of a message field", `b64url(msg.s)`, Msg{"s": "\xff\xfe"}, func(v any) bool { return v == "__4" }, "__4"},
		{"b64urlDecode", `b64urlDecode("aGk_Pg")`, nil, func(v any) bool { return v == "hi?>" }, "hi?>"},
		{"b64urlDecode padded", `b64urlDecode("aGk_Pg==")`, nil, func(v any) bool { return v == "hi?>" }, "hi?>"},
		{"unix(now)", "unix(now)", nil, func(v any) bool { return v == int64(1700000000) }, "1700000000"},
		{"randomHex", "len(randomHex(16))", nil, func(v any) bool { return v == 32 }, "32"},
		{"duration builtin", `duration("15m").Seconds()`, nil, func(v any) bool { return v == 900.0 }, "900"},
		{"env", `env.REGION + "-1"`, nil, func(v any) bool { return v == "eu-1" }, "eu-1"},
		{"missing env", `env.NOPE`, nil, func(v any) bool { return v == "" }, `""`},
		{"missing message field is nil", "msg.nope", Msg{}, func(v any) bool { return v == nil }, "nil"},
		{"nil-safe chain", "msg.nope?.deeper", Msg{}, func(v any) bool { return v == nil }, "nil"},
		{"default with ??", `msg.nope ?? "dflt"`, Msg{}, func(v any) bool { return v == "dflt" }, "dflt"},
		{"float division by zero is +Inf", "1 / msg.zero", Msg{"zero": 0}, func(v any) bool { return math.IsInf(v.(float64), 1) }, "+Inf"},
		{"flow of a zero Exec is empty", "flow.x ?? 7", nil, func(v any) bool { return v == 7 }, "7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := evalStd(t, tt.src, tt.msg)
			if err != nil {
				t.Fatalf("eval: %v", err)
			}
			if !tt.check(v) {
				t.Errorf("got %#v, want %s", v, tt.want)
			}
		})
	}
}

// TestExprRuntimeErrors: failures while evaluating are errors, never panics.
func TestExprRuntimeErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		msg  Msg
		want string
	}{
		{"field of a missing field", "msg.nope.deeper", Msg{}, "cannot fetch deeper from <nil>"},
		{"integer modulo by zero", "msg.a % msg.b", Msg{"a": 1, "b": 0}, "integer divide by zero"},
		{"bad conversion", `int(msg.s)`, Msg{"s": "x"}, "invalid operation: int(x)"},
		{"index out of range", "msg.list[5]", Msg{"list": []any{1}}, "index out of range"},
		{"helper error", `b64urlDecode("%%%")`, nil, "not base64url"},
		{"randomHex out of range", "randomHex(0)", nil, "length must be 1..256"},
		{"wrong operand types", "msg.a + msg.b", Msg{"a": "x", "b": 1}, "invalid operation"},
		{"memory budget", "map(1..10000000, # * 2)", nil, "memory budget exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := evalStd(t, tt.src, tt.msg)
			if err == nil {
				t.Fatalf("no error, got %#v", v)
			}
			var ee *ExprError
			if !errors.As(err, &ee) {
				t.Errorf("error %T is not *ExprError", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestExprTypedResults(t *testing.T) {
	x := &Exec{}
	b, err := CompileExprEnv("msg.n > 1", Env{}, "bool")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CompileExprEnv(`"x"`, Env{}, "bool"); err == nil {
		t.Errorf("string expression compiled as bool")
	}
	// Env{} given as ExprEnv is a block-specific env: Eval refuses it, Run works.
	if _, err := b.Eval(x, Msg{"n": 2}); err == nil {
		t.Errorf("Eval of a block-env expression: no error")
	}
	if v, err := b.Run(&Env{Msg: Msg{"n": 2}}); err != nil || v != true {
		t.Errorf("Run = %v, %v", v, err)
	}
	std, _ := CompileExpr("msg.v")
	tests := []struct {
		name     string
		v        any
		wantBool bool
		boolErr  bool
		wantStr  string
	}{
		{"bool", true, true, false, "true"},
		{"string", "s", false, true, "s"},
		{"nil", nil, false, true, ""},
		{"int", 42, false, true, "42"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gb, err := std.EvalBool(x, Msg{"v": tt.v})
			if (err != nil) != tt.boolErr || gb != tt.wantBool {
				t.Errorf("EvalBool = %v, %v", gb, err)
			}
			gs, err := std.EvalString(x, Msg{"v": tt.v})
			if err != nil || gs != tt.wantStr {
				t.Errorf("EvalString = %q, %v", gs, err)
			}
		})
	}
	if std.String() != "msg.v" {
		t.Errorf("String() = %q", std.String())
	}
	type blockEnv struct {
		Claims map[string]any `expr:"claims"`
	}
	be, err := CompileExprEnv(`claims.sub + "@" + b64url("x")`, blockEnv{}, "string")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := be.Run(blockEnv{Claims: map[string]any{"sub": "alice"}}); err != nil || v != "alice@eA" {
		t.Errorf("block env: %v, %v", v, err)
	}
	if _, err := CompileExprEnv(`msg.x`, blockEnv{}, ""); err == nil {
		t.Errorf("block env sees msg")
	}
}

// TestExprConcurrentEval: one compiled expression, many goroutines; run
// with -race.
func TestExprConcurrentEval(t *testing.T) {
	e, err := CompileExpr(`msg.n * 2 + len(msg.s) + (flow.k ?? 0)`)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := &Exec{}
			for i := range 200 {
				msg := Msg{"n": g*1000 + i, "s": strings.Repeat("x", i%7)}
				v, err := e.Eval(x, msg)
				if err != nil {
					errs <- err
					return
				}
				if want := (g*1000+i)*2 + i%7; v != want {
					errs <- fmt.Errorf("goroutine %d: got %v want %d", g, v, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
