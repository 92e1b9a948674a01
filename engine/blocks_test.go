package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// This file defines the small block types the engine tests run flows of.
// Tests never import blocks/: these stand in for them.

// harness records what the test blocks did, so tests can assert on it.
type harness struct {
	mu       sync.Mutex
	captured map[string][]Msg           // node id -> messages it processed (copies)
	starts   map[string]int             // "node@version" -> Start calls
	stops    map[string]int             // "node@version" -> Stop calls
	closes   map[string]int             // "node@version" -> Close calls
	tctx     map[string]*TriggerContext // node id -> latest started trigger context

	// test.hold: a run entering a hold block signals entered, then waits
	// for release (or its ctx).
	entered chan string
	release chan struct{}
}

func newHarness() *harness {
	return &harness{
		captured: map[string][]Msg{}, starts: map[string]int{}, stops: map[string]int{},
		closes: map[string]int{}, tctx: map[string]*TriggerContext{},
		entered: make(chan string, 16), release: make(chan struct{}),
	}
}

func (h *harness) count(m map[string]int, key string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return m[key]
}

func (h *harness) msgs(node string) []Msg {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.captured[node]
}

// capture records a copy of msg as processed by node.
func (h *harness) capture(node string, msg Msg) {
	c := CopyValue(msg).(Msg)
	h.mu.Lock()
	h.captured[node] = append(h.captured[node], c)
	h.mu.Unlock()
}

func (h *harness) trigger(node string) *TriggerContext {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.tctx[node]
}

var errTestFail = errors.New("test block failed")

// honestClaim is what test.grow adds to a message's size estimate when it
// writes n bytes at key.
func honestClaim(key string, n int) int { return len(key) + 4 + n + 2 }

// testRegistry returns a registry of test block types wired to h.
func testRegistry(t testing.TB, h *harness) *Registry {
	t.Helper()
	reg := NewRegistry()
	must := func(spec Spec, f Factory) {
		t.Helper()
		if err := reg.Register(spec, f); err != nil {
			t.Fatalf("register %s: %v", spec.Type, err)
		}
	}
	key := func(s *Setup) string { return fmt.Sprintf("%s@%d", s.NodeID, s.Version) }

	// test.trigger: a trigger; fail_start makes Start fail.
	must(Spec{Type: "test.trigger", Title: "Trigger", Category: "test", Trigger: true, Outputs: []string{"out"},
		Fields: []Field{{Name: "fail_start", Kind: KindBool}}},
		func(s *Setup) (Block, error) {
			return &testTrigger{h: h, node: s.NodeID, fail: s.Config.Bool("fail_start")}, nil
		})
	// test.manual: a trigger that declares no "out" port, only "go".
	must(Spec{Type: "test.manual", Title: "Manual", Category: "test", Trigger: true, Outputs: []string{"go"}},
		func(s *Setup) (Block, error) { return &testTrigger{h: h, node: s.NodeID}, nil })
	// test.pass: sends the message on unchanged (and logs, so a missing
	// Exec.Logger shows).
	must(Spec{Type: "test.pass", Title: "Pass", Category: "test", Outputs: []string{"out"}},
		func(s *Setup) (Block, error) {
			return BlockFunc(func(_ context.Context, x *Exec, _ Msg) (string, error) {
				x.Logger.Debug("pass", "run", x.RunID)
				return "out", nil
			}), nil
		})
	// test.set: msg[name] = expr for every entry of "set".
	must(Spec{Type: "test.set", Title: "Set", Category: "test", Outputs: []string{"out"},
		Fields: []Field{{Name: "set", Kind: KindExprMap, Required: true}}},
		func(s *Setup) (Block, error) {
			set := s.Config.Exprs("set")
			return BlockFunc(func(_ context.Context, x *Exec, msg Msg) (string, error) {
				for _, ne := range set {
					v, err := ne.Expr.Eval(x, msg)
					if err != nil {
						return "", fmt.Errorf("set %s: %w", ne.Name, err)
					}
					msg[ne.Name] = v
				}
				return "out", nil
			}), nil
		})
	// test.sleep: waits "for", honouring ctx.
	must(Spec{Type: "test.sleep", Title: "Sleep", Category: "test", Outputs: []string{"out"},
		Fields: []Field{{Name: "for", Kind: KindDuration, Required: true}, {Name: "ignore_ctx", Kind: KindBool}}},
		func(s *Setup) (Block, error) {
			d, ignore := s.Config.Duration("for"), s.Config.Bool("ignore_ctx")
			return BlockFunc(func(ctx context.Context, _ *Exec, _ Msg) (string, error) {
				if ignore {
					time.Sleep(d)
					return "out", nil
				}
				select {
				case <-time.After(d):
					return "out", nil
				case <-ctx.Done():
					return "", ctx.Err()
				}
			}), nil
		})
	// test.panic: panics.
	must(Spec{Type: "test.panic", Title: "Panic", Category: "test", Outputs: []string{"out"}},
		func(s *Setup) (Block, error) {
			return BlockFunc(func(context.Context, *Exec, Msg) (string, error) { panic("test panic") }), nil
		})
	// test.fail: returns errTestFail wrapped with "message".
	must(Spec{Type: "test.fail", Title: "Fail", Category: "test", Outputs: []string{"out"},
		Fields: []Field{{Name: "message", Kind: KindString, Default: "boom"}}},
		func(s *Setup) (Block, error) {
			m := s.Config.String("message")
			return BlockFunc(func(context.Context, *Exec, Msg) (string, error) {
				return "", fmt.Errorf("%s: %w", m, errTestFail)
			}), nil
		})
	// test.capture: records a copy of the message, sends it on.
	must(Spec{Type: "test.capture", Title: "Capture", Category: "test", Outputs: []string{"out"}},
		func(s *Setup) (Block, error) {
			node := s.NodeID
			return BlockFunc(func(_ context.Context, _ *Exec, msg Msg) (string, error) {
				h.capture(node, msg)
				return "out", nil
			}), nil
		})
	// test.tag: mutates nested parts of the message in place (fan-out
	// isolation), then captures it.
	must(Spec{Type: "test.tag", Title: "Tag", Category: "test", Outputs: []string{"out"}},
		func(s *Setup) (Block, error) {
			node := s.NodeID
			return BlockFunc(func(_ context.Context, _ *Exec, msg Msg) (string, error) {
				obj, _ := msg["obj"].(map[string]any)
				if obj == nil {
					return "", errors.New("no obj")
				}
				obj["who"] = node
				list, _ := msg["list"].([]any)
				if len(list) > 0 {
					list[0] = node
				}
				msg["list"] = append(list, node)
				msg[node] = true
				h.capture(node, msg)
				return "out", nil
			}), nil
		})
	// test.hold: signals h.entered and waits for h.release; closes count.
	must(Spec{Type: "test.hold", Title: "Hold", Category: "test", Outputs: []string{"out"}},
		func(s *Setup) (Block, error) { return &holdBlock{h: h, key: key(s)}, nil })
	// test.big: adds a string of "size" bytes.
	must(Spec{Type: "test.big", Title: "Big", Category: "test", Outputs: []string{"out"},
		Fields: []Field{{Name: "size", Kind: KindInt, Min: "0"}}},
		func(s *Setup) (Block, error) {
			n := s.Config.Int("size")
			return BlockFunc(func(_ context.Context, _ *Exec, msg Msg) (string, error) {
				msg["big"] = strings.Repeat("x", int(n))
				return "out", nil
			}), nil
		})
	// test.cycle: makes the message contain itself (a buggy block).
	must(Spec{Type: "test.cycle", Title: "Cycle", Category: "test", Outputs: []string{"out"}},
		func(s *Setup) (Block, error) {
			return BlockFunc(func(_ context.Context, _ *Exec, msg Msg) (string, error) {
				msg["self"] = msg
				return "out", nil
			}), nil
		})
	// test.var: sets flow variable "key" to the value of "value".
	must(Spec{Type: "test.var", Title: "Var", Category: "test", Outputs: []string{"out"},
		Fields: []Field{{Name: "key", Kind: KindString, Required: true}, {Name: "value", Kind: KindExpr, Required: true}}},
		func(s *Setup) (Block, error) {
			k, e := s.Config.String("key"), s.Config.Expr("value")
			return BlockFunc(func(ctx context.Context, x *Exec, msg Msg) (string, error) {
				v, err := e.Eval(x, msg)
				if err != nil {
					return "", err
				}
				return "out", x.Vars().Set(ctx, k, v)
			}), nil
		})
	// test.secretive: writes a value under a block-declared sensitive key.
	must(Spec{Type: "test.secretive", Title: "Secretive", Category: "test", Outputs: []string{"out"},
		Sensitive: []string{"otp"}},
		func(s *Setup) (Block, error) {
			return BlockFunc(func(_ context.Context, _ *Exec, msg Msg) (string, error) {
				msg["otp"] = "123456"
				return "out", nil
			}), nil
		})
	// test.switch: one port per rule, the first rule that holds.
	must(Spec{Type: "test.switch", Title: "Switch", Category: "test.flow", Outputs: []string{"otherwise"},
		Fields: []Field{{Name: "rules", Kind: KindRules, Required: true, Result: "bool"}},
		DynamicOutputs: func(c *Config) []string {
			var ports []string
			for _, r := range c.Exprs("rules") {
				ports = append(ports, r.Name)
			}
			return ports
		}},
		func(s *Setup) (Block, error) {
			rules := s.Config.Exprs("rules")
			return BlockFunc(func(_ context.Context, x *Exec, msg Msg) (string, error) {
				for _, r := range rules {
					ok, err := r.Expr.EvalBool(x, msg)
					if err != nil {
						return "", err
					}
					if ok {
						return r.Name, nil
					}
				}
				return "otherwise", nil
			}), nil
		})
	// test.grow writes "x" * n at msg[key] and reports claim bytes
	// (Exec.Grew; -1: no report). honestClaim is the true growth.
	must(Spec{Type: "test.grow", Title: "Grow", Category: "test", Outputs: []string{"out"},
		Fields: []Field{{Name: "key", Kind: KindString}, {Name: "n", Kind: KindInt}, {Name: "claim", Kind: KindInt}}},
		func(s *Setup) (Block, error) {
			key, n, claim := s.Config.String("key"), int(s.Config.Int("n")), int(s.Config.Int("claim"))
			return BlockFunc(func(_ context.Context, x *Exec, msg Msg) (string, error) {
				msg[key] = strings.Repeat("x", n)
				if claim >= 0 {
					x.Grew(claim)
				}
				return "out", nil
			}), nil
		})
	// test.bounded: passes the message on and is Bounded (reports no size).
	must(Spec{Type: "test.bounded", Title: "Bounded", Category: "test", Outputs: []string{"out"}, Bounded: true},
		func(*Setup) (Block, error) {
			return BlockFunc(func(context.Context, *Exec, Msg) (string, error) { return "out", nil }), nil
		})
	// test.entry, test.catch and test.ret: a sub-flow's entry, a flow's
	// catch, and a return answering "ok" with the message.
	must(Spec{Type: "test.entry", Title: "Entry", Category: "test", Trigger: true, Outputs: []string{"out"}},
		func(*Setup) (Block, error) { return entryTrigger{}, nil })
	must(Spec{Type: "test.catch", Title: "Catch", Category: "test", Trigger: true, Outputs: []string{"out"}},
		func(*Setup) (Block, error) { return catchTrigger{}, nil })
	must(Spec{Type: "test.ret", Title: "Return", Category: "test"},
		func(*Setup) (Block, error) {
			return BlockFunc(func(_ context.Context, x *Exec, msg Msg) (string, error) { return "", x.Return("ok", msg) }), nil
		})
	// test.cron and test.rotate stand in for schedule.cron and jose.rotate
	// in realistic documents.
	must(Spec{Type: "test.cron", Title: "Cron", Category: "test.trigger", Trigger: true, Outputs: []string{"out"},
		Fields: []Field{
			{Name: "spec", Kind: KindString, Required: true},
			{Name: "timezone", Kind: KindString, Default: "UTC"},
			{Name: "catch_up", Kind: KindBool},
		}},
		func(s *Setup) (Block, error) { return &testTrigger{h: h, node: s.NodeID}, nil })
	must(Spec{Type: "test.rotate", Title: "Rotate", Category: "test", Outputs: []string{"out"},
		Fields: []Field{
			{Name: "keyset", Kind: KindString, Required: true},
			{Name: "alg", Kind: KindEnum, Enum: []string{"ES256", "RS256", "EdDSA"}, Default: "ES256"},
			{Name: "retire_after", Kind: KindDuration, Default: "48h", Min: "1h", Max: "8760h"},
		}},
		func(s *Setup) (Block, error) {
			return BlockFunc(func(context.Context, *Exec, Msg) (string, error) { return "out", nil }), nil
		})
	// test.http_in and test.respond: an HTTP-shaped flow.
	must(Spec{Type: "test.http_in", Title: "HTTP in", Category: "test.trigger", Trigger: true, Outputs: []string{"out"},
		Fields: []Field{
			{Name: "method", Kind: KindEnum, Enum: []string{"GET", "POST"}, Default: "GET"},
			{Name: "path", Kind: KindString, Required: true},
			{Name: "max_body", Kind: KindInt, Default: 65536, Min: "1", Max: "1048576"},
		}},
		func(s *Setup) (Block, error) { return &testTrigger{h: h, node: s.NodeID}, nil })
	must(Spec{Type: "test.respond", Title: "Respond", Category: "test", Outputs: []string{},
		Fields: []Field{
			{Name: "status", Kind: KindInt, Default: 200, Min: "100", Max: "599"},
			{Name: "body", Kind: KindExpr},
			{Name: "headers", Kind: KindExprMap},
			{Name: "extra", Kind: KindJSON},
		}},
		func(s *Setup) (Block, error) {
			return BlockFunc(func(context.Context, *Exec, Msg) (string, error) { return "", nil }), nil
		})
	// test.kitchen has a field of every kind, for validation tests. Its
	// factory refuses name "explode" (a deploy-time check) and panics on
	// name "panic".
	must(Spec{Type: "test.kitchen", Title: "Kitchen sink", Category: "test", Outputs: []string{"out"},
		Fields: []Field{
			{Name: "name", Kind: KindString, Required: true},
			{Name: "text", Kind: KindText},
			{Name: "count", Kind: KindInt, Min: "1", Max: "10"},
			{Name: "ratio", Kind: KindNumber, Max: "1"},
			{Name: "on", Kind: KindBool},
			{Name: "wait", Kind: KindDuration, Max: "1h"},
			{Name: "mode", Kind: KindEnum, Enum: []string{"a", "b"}},
			{Name: "tags", Kind: KindStrings},
			{Name: "cond", Kind: KindExpr, Result: "bool"},
			{Name: "set", Kind: KindExprMap},
			{Name: "rules", Kind: KindRules},
			{Name: "data", Kind: KindJSON},
			{Name: "password", Kind: KindSecret, Secret: true},
		}},
		func(s *Setup) (Block, error) {
			switch s.Config.String("name") {
			case "explode":
				return nil, s.Errorf("name", "refused by the factory")
			case "panic":
				panic("factory panic")
			case "nil":
				return nil, nil
			case "plain-error":
				return nil, errors.New("keystore unavailable")
			}
			return BlockFunc(func(context.Context, *Exec, Msg) (string, error) { return "out", nil }), nil
		})
	return reg
}

type testTrigger struct {
	h    *harness
	node string
	fail bool
	t    *TriggerContext
}

func (b *testTrigger) Process(context.Context, *Exec, Msg) (string, error) { return "out", nil }

func (b *testTrigger) Start(_ context.Context, t *TriggerContext) error {
	if b.fail {
		return errors.New("port already taken")
	}
	b.t = t
	b.h.mu.Lock()
	b.h.starts[fmt.Sprintf("%s@%d", b.node, t.Version())]++
	b.h.tctx[b.node] = t
	b.h.mu.Unlock()
	return nil
}

func (b *testTrigger) Stop(context.Context) error {
	b.h.mu.Lock()
	defer b.h.mu.Unlock()
	b.h.stops[fmt.Sprintf("%s@%d", b.node, b.t.Version())]++
	return nil
}

type holdBlock struct {
	h   *harness
	key string
}

func (b *holdBlock) Process(ctx context.Context, x *Exec, _ Msg) (string, error) {
	b.h.entered <- fmt.Sprintf("%s@%d", x.NodeID, x.Version)
	select {
	case <-b.h.release:
		return "out", nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (b *holdBlock) Close() error {
	b.h.mu.Lock()
	b.h.closes[b.key]++
	b.h.mu.Unlock()
	return nil
}

var (
	_ Block   = (*testTrigger)(nil)
	_ Trigger = (*testTrigger)(nil)
	_ Closer  = (*holdBlock)(nil)
)

// node builds a Node with config values marshalled to JSON.
func node(id, typ string, cfg map[string]any) Node {
	n := Node{ID: id, Type: typ}
	if len(cfg) > 0 {
		n.Config = map[string]json.RawMessage{}
		for k, v := range cfg {
			b, err := json.Marshal(v)
			if err != nil {
				panic(err)
			}
			n.Config[k] = b
		}
	}
	return n
}

// wires parses "from.port>to" strings.
func wires(specs ...string) []Wire {
	out := make([]Wire, 0, len(specs))
	for _, s := range specs {
		fp, to, ok := strings.Cut(s, ">")
		from, port, ok2 := strings.Cut(fp, ".")
		if !ok || !ok2 {
			panic("bad wire spec " + s)
		}
		out = append(out, Wire{From: from, Port: port, To: to})
	}
	return out
}

func mkFlow(id string, nodes []Node, ws ...string) *Flow {
	return &Flow{Schema: SchemaV1, ID: id, Name: id, Nodes: nodes, Wires: wires(ws...)}
}

// newTestRuntime returns a runtime over the test registry, closed at the
// end of the test.
func newTestRuntime(t *testing.T, h *harness, opts Options) *Runtime {
	t.Helper()
	if opts.Registry == nil {
		opts.Registry = testRegistry(t, h)
	}
	rt, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := rt.Close(ctx); err != nil {
			t.Errorf("close runtime: %v", err)
		}
	})
	return rt
}

// stepSummary renders a trace's steps as "node:port" (with "!" and the
// error when a step failed) for compact assertions.
func stepSummary(tr *Trace) []string {
	out := make([]string, len(tr.Steps))
	for i, s := range tr.Steps {
		out[i] = s.Node + ":" + s.Port
		if s.Error != "" {
			out[i] += "!"
		}
	}
	return out
}
