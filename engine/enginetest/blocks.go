package enginetest

import (
	"context"
	"sync"
	"testing"

	"github.com/flowd/flowd/engine"
)

// Category is the editor category of the test blocks.
const Category = "test"

// Received is one message a Capture or Sink block received.
type Received struct {
	Node string // the node that received it
	Msg  engine.Msg
}

// Recorder holds what the nodes of a Capture or Sink block type received,
// in order, across every flow and run of the runtime. It is safe for
// concurrent use.
type Recorder struct {
	mu  sync.Mutex
	got []Received
}

func (r *Recorder) add(node string, msg engine.Msg) {
	c, _ := engine.CopyValue(msg).(map[string]any)
	r.mu.Lock()
	r.got = append(r.got, Received{Node: node, Msg: c})
	r.mu.Unlock()
}

// Received returns what was received so far.
func (r *Recorder) Received() []Received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Received(nil), r.got...)
}

// Msgs returns the messages received so far.
func (r *Recorder) Msgs() []engine.Msg {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]engine.Msg, len(r.got))
	for i, g := range r.got {
		out[i] = g.Msg
	}
	return out
}

// Capture registers typ (namespaced, "test.capture") as a block that
// records a copy of every message it receives and sends it on out of
// "out".
func Capture(t testing.TB, reg *engine.Registry, typ string) *Recorder {
	t.Helper()
	return record(t, reg, typ, "out")
}

// Sink registers typ as a block that records a copy of every message it
// receives and ends the branch (it has no output port).
func Sink(t testing.TB, reg *engine.Registry, typ string) *Recorder {
	t.Helper()
	return record(t, reg, typ, "")
}

func record(t testing.TB, reg *engine.Registry, typ, port string) *Recorder {
	t.Helper()
	rec := &Recorder{}
	spec := engine.Spec{Type: typ, Title: "Capture", Category: Category,
		Description: "Records every message it receives (test block).", Outputs: []string{}}
	if port != "" {
		spec.Outputs = []string{port}
	}
	must(t, reg.Register(spec, func(s *engine.Setup) (engine.Block, error) {
		node := s.NodeID
		return engine.BlockFunc(func(_ context.Context, _ *engine.Exec, msg engine.Msg) (string, error) {
			rec.add(node, msg)
			return port, nil
		}), nil
	}))
	return rec
}

// Fail registers typ as a block that always fails with err, for testing
// error ports and failed runs.
func Fail(t testing.TB, reg *engine.Registry, typ string, err error) {
	t.Helper()
	spec := engine.Spec{Type: typ, Title: "Fail", Category: Category,
		Description: "Always fails (test block).", Outputs: []string{"out"}}
	must(t, reg.Register(spec, func(*engine.Setup) (engine.Block, error) {
		return engine.BlockFunc(func(context.Context, *engine.Exec, engine.Msg) (string, error) {
			return "", err
		}), nil
	}))
}

// Set registers typ as a block that assigns top-level message members from
// the expressions of its "set" field (name -> expression) and sends the
// message on out of "out": a stand-in for core.set in tests that do not
// import blocks/core. An expression that fails is the run error.
func Set(t testing.TB, reg *engine.Registry, typ string) {
	t.Helper()
	spec := engine.Spec{Type: typ, Title: "Set", Category: Category,
		Description: "Sets message members from expressions (test block).", Outputs: []string{"out"},
		Fields: []engine.Field{{Name: "set", Label: "Set", Kind: engine.KindExprMap, Required: true,
			Help: "Member name -> expression over msg."}}}
	must(t, reg.Register(spec, func(s *engine.Setup) (engine.Block, error) {
		exprs := s.Config.Exprs("set")
		return engine.BlockFunc(func(_ context.Context, x *engine.Exec, msg engine.Msg) (string, error) {
			for _, e := range exprs {
				v, err := e.Expr.Eval(x, msg)
				if err != nil {
					return "", err
				}
				msg[e.Name] = v
			}
			return "out", nil
		}), nil
	}))
}

// Trigger registers typ as a trigger that starts runs only when the test
// calls Runtime.Run (or Run): a start node for flows under test that need
// no HTTP route or schedule.
func Trigger(t testing.TB, reg *engine.Registry, typ string) {
	t.Helper()
	spec := engine.Spec{Type: typ, Title: "Trigger", Category: Category, Trigger: true,
		Description: "Starts a run when the test runs the flow (test block).", Outputs: []string{"out"}}
	must(t, reg.Register(spec, func(*engine.Setup) (engine.Block, error) { return idleTrigger{}, nil }))
}

type idleTrigger struct{}

var _ engine.Trigger = idleTrigger{}

func (idleTrigger) Process(context.Context, *engine.Exec, engine.Msg) (string, error) {
	return "out", nil
}
func (idleTrigger) Start(context.Context, *engine.TriggerContext) error { return nil }
func (idleTrigger) Stop(context.Context) error                          { return nil }

// Traces is an engine.TraceSink that keeps every finished trace, for tests
// of what a run persists. It is safe for concurrent use.
type Traces struct {
	mu  sync.Mutex
	got []*engine.Trace
}

var _ engine.TraceSink = (*Traces)(nil)

// SaveTrace keeps t.
func (s *Traces) SaveTrace(t *engine.Trace) {
	s.mu.Lock()
	s.got = append(s.got, t)
	s.mu.Unlock()
}

// All returns the traces saved so far, oldest first.
func (s *Traces) All() []*engine.Trace {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*engine.Trace(nil), s.got...)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("enginetest: %v", err)
	}
}
