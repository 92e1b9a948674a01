package engine

import (
	"context"
	"fmt"
	"os"
	"testing"
)

// benchMsg is a realistic message: what an http.in trigger sends for a
// token request (22 values in 6 maps).
func benchMsg() Msg {
	return Msg{
		"req": map[string]any{
			"method":      "POST",
			"path":        "/oauth2/token",
			"params":      map[string]any{},
			"query":       map[string]any{"a": "1"},
			"query_all":   map[string][]string{"a": {"1"}},
			"headers":     map[string]any{"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded", "User-Agent": "bench/1.0", "Authorization": "Basic c3ZjLTQyOnNlY3JldA=="},
			"remote_addr": "127.0.0.1:54321",
			"host":        "auth.example.com",
		},
		"body":    map[string]any{"grant_type": "client_credentials", "scope": "read write"},
		"attempt": 1,
	}
}

// BenchmarkRun measures the runtime's own overhead per node executed: a
// trigger and a chain of pass-through blocks that do nothing, so what is
// measured is scheduling, limits, snapshots and traces.
func BenchmarkRun(b *testing.B) {
	for _, n := range []int{1, 5, 20} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			reg := NewRegistry()
			reg.MustRegister(Spec{Type: "test.trigger", Trigger: true, Outputs: []string{"out"}},
				func(s *Setup) (Block, error) { return &testTrigger{h: newHarness(), node: s.NodeID}, nil })
			reg.MustRegister(Spec{Type: "test.pass", Outputs: []string{"out"}},
				func(*Setup) (Block, error) {
					return BlockFunc(func(context.Context, *Exec, Msg) (string, error) { return "out", nil }), nil
				})
			rt, err := New(Options{Registry: reg})
			if err != nil {
				b.Fatal(err)
			}
			defer rt.Close(context.Background())
			nodes := []Node{node("t", "test.trigger", nil)}
			var ws []string
			prev := "t"
			for i := range n {
				id := fmt.Sprintf("p%d", i)
				nodes = append(nodes, node(id, "test.pass", nil))
				ws = append(ws, prev+".out>"+id)
				prev = id
			}
			if err := rt.Deploy(context.Background(), mkFlow("bench", nodes, ws...), 1); err != nil {
				b.Fatal(err)
			}
			msg := benchMsg()
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			for range b.N {
				tr, err := rt.Run(ctx, "bench", "", msg)
				if err != nil || len(tr.Steps) != n+1 {
					b.Fatal(tr, err)
				}
			}
			cpu := cpuTime() - cpu0
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/node")
			if cpu > 0 {
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*n), "cpu-ns/node")
			}
		})
	}
}

func BenchmarkExprEval(b *testing.B) {
	e, err := CompileExpr(`msg.body.grant_type == "client_credentials" && len(msg.body.scope) < 256 && msg.attempt <= 3`)
	if err != nil {
		b.Fatal(err)
	}
	x := &Exec{}
	msg := benchMsg()
	b.ReportAllocs()
	for b.Loop() {
		v, err := e.Eval(x, msg)
		if err != nil || v != true {
			b.Fatal(v, err)
		}
	}
}

func BenchmarkDecodeEncode(b *testing.B) {
	data, err := os.ReadFile("testdata/flows/token-endpoint.json")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		f, err := DecodeFlow(data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := EncodeFlow(f); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSnapshot is the trace snapshot of benchMsg alone: taken fresh
// (a trigger's step, or a block that rebuilt the message) and shared with
// the previous step's (a block that changed nothing).
func BenchmarkSnapshot(b *testing.B) {
	b.Run("fresh", func(b *testing.B) {
		m := benchMsg()
		s := &snapper{limit: 1 << 20}
		b.ReportAllocs()
		for b.Loop() {
			s.take(m, nil, nil)
		}
	})
	b.Run("shared", func(b *testing.B) {
		m := benchMsg()
		s := &snapper{limit: 1 << 20}
		prev, node, _ := s.take(m, nil, nil)
		b.ReportAllocs()
		for b.Loop() {
			s.take(m, prev, node)
		}
	})
}

// BenchmarkRunLight is BenchmarkRun for the runs a busy endpoint makes:
// fired by a trigger with a bound on the message's size (FireSized),
// past the flow's snapshot rate (light traces), a small message. What is
// measured is the run's own cost: its record, id, clock readings, queue
// and trace hand-off.
func BenchmarkRunLight(b *testing.B) {
	for _, n := range []int{2, 5} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			h := newHarness()
			reg := NewRegistry()
			reg.MustRegister(Spec{Type: "test.trigger", Trigger: true, Outputs: []string{"out"}},
				func(s *Setup) (Block, error) { return &testTrigger{h: h, node: s.NodeID}, nil })
			reg.MustRegister(Spec{Type: "test.pass", Outputs: []string{"out"}, Bounded: true},
				func(*Setup) (Block, error) {
					return BlockFunc(func(_ context.Context, x *Exec, _ Msg) (string, error) { x.Grew(0); return "out", nil }), nil
				})
			rt, err := New(Options{Registry: reg, SnapshotsPerSecond: 1})
			if err != nil {
				b.Fatal(err)
			}
			defer rt.Close(context.Background())
			nodes := []Node{node("t", "test.trigger", nil)}
			var ws []string
			prev := "t"
			for i := range n {
				id := fmt.Sprintf("p%d", i)
				nodes = append(nodes, node(id, "test.pass", nil))
				ws = append(ws, prev+".out>"+id)
				prev = id
			}
			if err := rt.Deploy(context.Background(), mkFlow("bench", nodes, ws...), 1); err != nil {
				b.Fatal(err)
			}
			tc := h.tctx["t"]
			msg := Msg{"a": "b"}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			for range b.N {
				tr, err := tc.FireSized(ctx, msg, 20)
				if err != nil || len(tr.Steps) != n+1 {
					b.Fatal(tr, err)
				}
			}
			cpu := cpuTime() - cpu0
			if cpu > 0 {
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/run")
			}
		})
	}
}
