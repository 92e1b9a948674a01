package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

// recTracer records what the runtime asks of a tracer, as text lines, and
// checks that every span's context reaches what runs under it.
type recTracer struct {
	mu    sync.Mutex
	lines []string
	n     int
}

type spanKey struct{}

func (r *recTracer) add(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
}

func (r *recTracer) next() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	return r.n
}

func (r *recTracer) Flow(flow string, version int) FlowTracer {
	r.add("flow %s v%d", flow, version)
	return recFlow{r, flow}
}

func (r *recTracer) Extract(ctx context.Context, c Carrier) context.Context { return ctx }
func (r *recTracer) Inject(ctx context.Context, c Carrier)                  {}

type recFlow struct {
	r    *recTracer
	flow string
}

func (f recFlow) StartRun(ctx context.Context, runID, trigger, typ string) (context.Context, RunSpan) {
	parent, _ := ctx.Value(spanKey{}).(string)
	id := fmt.Sprintf("run%d", f.r.next())
	f.r.add("start %s %s parent=%q trigger=%s/%s run-id-set=%v", id, f.flow, parent, trigger, typ, runID != "")
	return context.WithValue(ctx, spanKey{}, id), &recRun{r: f.r, id: id}
}

type recRun struct {
	r  *recTracer
	id string
}

func (s *recRun) IDs() (string, string) { return "trace-" + s.id, s.id }

func (s *recRun) StartStep(ctx context.Context, node, typ string) (context.Context, StepSpan) {
	parent, _ := ctx.Value(spanKey{}).(string)
	id := fmt.Sprintf("%s/%s", s.id, node)
	s.r.add("step %s %s parent=%s", id, typ, parent)
	return context.WithValue(ctx, spanKey{}, id), recStep{s.r, id}
}

func (s *recRun) End(errText string) { s.r.add("end %s err=%q", s.id, errText) }

type recStep struct {
	r  *recTracer
	id string
}

func (s recStep) End(port, errText string) { s.r.add("end %s port=%q err=%q", s.id, port, errText) }

// TestTracerSpans: a traced run opens its span as a child of the caller's,
// one span per step (the trigger's included) under it with the port taken
// and the cleaned error text, records the ids in the trace, and hands the
// step's context to the block. Validation opens nothing.
func TestTracerSpans(t *testing.T) {
	const token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXZhbHVl"
	h := newHarness()
	rec := &recTracer{}
	reg := testRegistry(t, h)
	// test.ctx: fails unless its context carries its own step's span.
	if err := reg.Register(Spec{Type: "test.ctx", Title: "Ctx", Category: "test", Outputs: []string{"out"}},
		func(s *Setup) (Block, error) {
			if (s.Tracer == nil) != (s.Version == 0) {
				return nil, fmt.Errorf("version %d got Setup.Tracer %v", s.Version, s.Tracer)
			}
			node := s.NodeID
			return BlockFunc(func(ctx context.Context, _ *Exec, _ Msg) (string, error) {
				if got, _ := ctx.Value(spanKey{}).(string); !strings.HasSuffix(got, "/"+node) {
					return "", fmt.Errorf("block ran under span %q", got)
				}
				return "out", nil
			}), nil
		}); err != nil {
		t.Fatal(err)
	}
	rt := newTestRuntime(t, h, Options{Registry: reg, Tracer: rec})
	f := mkFlow("f", []Node{node("t", "test.trigger", nil), node("c", "test.ctx", nil),
		node("x", "test.fail", map[string]any{"message": "Bearer " + token}), node("h", "test.capture", nil)},
		"t.out>c", "c.out>x", "x.error>h")
	g := mkFlow("g", []Node{node("t", "test.trigger", nil), node("x", "test.fail", map[string]any{"message": token})}, "t.out>x")
	if err := rt.Validate(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	if len(rec.lines) != 0 {
		t.Fatalf("validation asked the tracer: %q", rec.lines)
	}
	deploy(t, rt, f, 3)
	deploy(t, rt, g, 1)
	ctx := context.WithValue(t.Context(), spanKey{}, "incoming")
	tr, err := rt.Run(ctx, "f", "", Msg{})
	if err != nil {
		t.Fatal(err)
	}
	if tr.TraceID != "trace-run1" || tr.SpanID != "run1" {
		t.Errorf("trace ids %q %q, want trace-run1 run1", tr.TraceID, tr.SpanID)
	}
	gtr, err := rt.Run(t.Context(), "g", "", Msg{})
	if err == nil {
		t.Fatal("run of g did not fail")
	}
	want := []string{
		"flow f v3",
		"flow g v1",
		`start run1 f parent="incoming" trigger=t/test.trigger run-id-set=true`,
		"step run1/t test.trigger parent=run1",
		`end run1/t port="out" err=""`,
		"step run1/c test.ctx parent=run1",
		`end run1/c port="out" err=""`,
		"step run1/x test.fail parent=run1",
		`end run1/x port="error" err="[redacted]"`,
		"step run1/h test.capture parent=run1",
		`end run1/h port="out" err=""`,
		`end run1 err=""`,
		`start run2 g parent="" trigger=t/test.trigger run-id-set=true`,
		"step run2/t test.trigger parent=run2",
		`end run2/t port="out" err=""`,
		"step run2/x test.fail parent=run2",
		`end run2/x port="" err="[redacted]: test block failed"`,
		`end run2 err="node \"x\": [redacted]: test block failed"`,
	}
	if !slices.Equal(rec.lines, want) {
		t.Errorf("tracer calls:\n%s\nwant:\n%s", strings.Join(rec.lines, "\n"), strings.Join(want, "\n"))
	}
	if len(gtr.Steps) != 2 || len(tr.Steps) != 4 {
		t.Errorf("steps %d and %d, want one span per step (4 and 2)", len(tr.Steps), len(gtr.Steps))
	}
}

// freeTracer is a tracer whose every call allocates nothing, so a run's
// allocations with it are the runtime's own.
type freeTracer struct{}

type freeSpan struct{}

func (freeTracer) Flow(string, int) FlowTracer                            { return freeTracer{} }
func (freeTracer) Extract(ctx context.Context, _ Carrier) context.Context { return ctx }
func (freeTracer) Inject(context.Context, Carrier)                        {}
func (freeTracer) StartRun(ctx context.Context, _, _, _ string) (context.Context, RunSpan) {
	return ctx, freeSpan{}
}
func (freeSpan) IDs() (string, string) { return "", "" }
func (freeSpan) StartStep(ctx context.Context, _, _ string) (context.Context, StepSpan) {
	return ctx, freeStep{}
}
func (freeSpan) End(string) {}

type freeStep struct{}

func (freeStep) End(string, string) {}

// TestTracingOffAllocs: with no tracer a run allocates exactly what it
// allocates with a tracer that allocates nothing itself: the hooks cost
// nothing when tracing is off (allocations counted, not timed).
func TestTracingOffAllocs(t *testing.T) {
	count := func(tracer Tracer) float64 {
		h := newHarness()
		rt := newTestRuntime(t, h, Options{Tracer: tracer, SnapshotsPerSecond: 1})
		f := mkFlow("f", []Node{node("t", "test.trigger", nil), node("a", "test.pass", nil), node("b", "test.pass", nil)},
			"t.out>a", "a.out>b")
		deploy(t, rt, f, 1)
		fire := h.trigger("t")
		if fire == nil {
			t.Fatal("trigger not started")
		}
		ctx := t.Context()
		msg := Msg{"n": 1}
		for range 5 { // past the snapshot rate: light runs, as under load
			if _, err := fire.Fire(ctx, msg); err != nil {
				t.Fatal(err)
			}
		}
		return testing.AllocsPerRun(200, func() {
			if _, err := fire.Fire(ctx, msg); err != nil {
				t.Fatal(err)
			}
		})
	}
	off, free := count(nil), count(freeTracer{})
	if off != free {
		t.Errorf("a run allocates %v times without a tracer and %v with an allocation-free one", off, free)
	}
	if off == 0 {
		t.Errorf("a run allocated nothing: the measure is wrong")
	}
}

// TestTracerSubflowAndCatch: a sub-flow's run span is a child of the
// calling step's span; a catch run's is a child of the failed run's.
func TestTracerSubflowAndCatch(t *testing.T) {
	rec := &recTracer{}
	rt := newTestRuntime(t, nil, Options{Registry: secretRegistry(t), Tracer: rec})
	deploy(t, rt, mkFlow("sub", []Node{node("e", "test.entry", nil), node("r", "test.ret", nil)}, "e.out>r"), 1)
	deploy(t, rt, mkFlow("main", []Node{node("t", "test.trigger", nil), node("c", "test.call", nil),
		node("x", "test.fail", nil), node("k", "test.catch", nil)}, "t.out>c", "c.ok>x"), 1)
	rec.mu.Lock()
	rec.lines = nil
	rec.mu.Unlock()
	if _, err := rt.Run(t.Context(), "main", "t", Msg{}); err == nil {
		t.Fatal("run of main did not fail")
	}
	var starts []string
	for _, l := range rec.lines {
		if strings.HasPrefix(l, "start ") {
			starts = append(starts, l)
		}
	}
	want := []string{
		`start run1 main parent="" trigger=t/test.trigger run-id-set=true`,
		`start run2 sub parent="run1/c" trigger=e/test.entry run-id-set=true`,
		`start run3 main parent="run1" trigger=k/test.catch run-id-set=true`,
	}
	if !slices.Equal(starts, want) {
		t.Errorf("runs started:\n%s\nwant:\n%s\nall calls:\n%s", strings.Join(starts, "\n"), strings.Join(want, "\n"), strings.Join(rec.lines, "\n"))
	}
}
