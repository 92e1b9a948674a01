package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/store/memstore"
	"github.com/flowd/flowd/store/storetest"
)

// wait is how long a test waits on a channel before failing: generous, as
// a run on a loaded CI machine may be slow; a passing test never waits it.
const wait = 5 * time.Second

// fixedNow is the injected clock of tests that do not tick in real time.
var fixedNow = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// tnode is a node of a test flow.
type tnode struct {
	id, typ string
	cfg     map[string]any
}

// buildFlow encodes a test flow as a document and decodes it the way flowd
// reads files (enginetest.Flow). Wires are "from:port->to".
func buildFlow(t testing.TB, id string, nodes []tnode, wires ...string) *engine.Flow {
	t.Helper()
	ns := make([]enginetest.Node, len(nodes))
	for i, n := range nodes {
		ns[i] = enginetest.Node{ID: n.id, Type: n.typ, Config: n.cfg}
	}
	return enginetest.Flow(t, id, ns, wires...)
}

// tickFlow is a flow "tick (schedule.cron) -> sink (test.sink)".
func tickFlow(t testing.TB, id string, cfg map[string]any) *engine.Flow {
	return buildFlow(t, id, []tnode{{"tick", Type, cfg}, {"sink", "test.sink", nil}}, "tick:out->sink")
}

// env is a scheduler, a runtime whose registry has schedule.cron and the
// test blocks, and the channel test.sink and test.panic send messages on.
type env struct {
	s    *Scheduler
	rt   *engine.Runtime
	sink chan engine.Msg
	// started and ended report test.block's runs.
	started, ended chan struct{}
	// flaky is how many more runs of test.flaky fail (after sending
	// their message on sink).
	flaky atomic.Int32
}

// newEnv builds an env; the runtime and the scheduler stop at cleanup.
func newEnv(t testing.TB, opts Options) *env {
	t.Helper()
	e := &env{s: NewScheduler(opts), sink: make(chan engine.Msg, 64),
		started: make(chan struct{}, 8), ended: make(chan struct{}, 8)}
	reg := enginetest.Registry(t, Register)
	svc := engine.NewServices()
	if err := Provide(svc, e.s); err != nil {
		t.Fatalf("Provide: %v", err)
	}
	registerTestBlocks(t, reg, e)
	rt, err := engine.New(engine.Options{Registry: reg, Now: opts.Now, Services: svc})
	if err != nil {
		t.Fatal(err)
	}
	e.rt = rt
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := e.s.Stop(ctx); err != nil {
			t.Errorf("Scheduler.Stop: %v", err)
		}
		if err := rt.Close(ctx); err != nil {
			t.Errorf("Runtime.Close: %v", err)
		}
	})
	return e
}

// registerTestBlocks adds blocks that report to the env: test.sink sends
// its message, test.panic sends it then panics, test.block signals and
// waits for its run to be cancelled, test.failstart is a trigger that
// cannot start.
func registerTestBlocks(t testing.TB, reg *engine.Registry, e *env) {
	t.Helper()
	send := func(msg engine.Msg) { e.sink <- engine.CopyValue(msg).(engine.Msg) }
	blocks := []struct {
		typ     string
		trigger bool
		fn      engine.BlockFunc
	}{
		{"test.sink", false, func(_ context.Context, _ *engine.Exec, msg engine.Msg) (string, error) {
			send(msg)
			return "", nil
		}},
		{"test.panic", false, func(_ context.Context, _ *engine.Exec, msg engine.Msg) (string, error) {
			send(msg)
			panic("boom")
		}},
		{"test.block", false, func(ctx context.Context, _ *engine.Exec, _ engine.Msg) (string, error) {
			e.started <- struct{}{}
			<-ctx.Done()
			e.ended <- struct{}{}
			return "", ctx.Err()
		}},
		{"test.flaky", false, func(_ context.Context, _ *engine.Exec, msg engine.Msg) (string, error) {
			send(msg)
			if e.flaky.Add(-1) >= 0 {
				return "", errors.New("flaky: not this time")
			}
			return "", nil
		}},
		{"test.failstart", true, nil},
	}
	for _, b := range blocks {
		spec := engine.Spec{Type: b.typ, Title: b.typ, Category: "test", Trigger: b.trigger}
		fn := b.fn
		factory := func(*engine.Setup) (engine.Block, error) { return fn, nil }
		if b.trigger {
			spec.Outputs = []string{"out"}
			factory = func(*engine.Setup) (engine.Block, error) { return failStart{}, nil }
		}
		if err := reg.Register(spec, factory); err != nil {
			t.Fatal(err)
		}
	}
}

type failStart struct{}

func (failStart) Process(context.Context, *engine.Exec, engine.Msg) (string, error) {
	return "out", nil
}
func (failStart) Start(context.Context, *engine.TriggerContext) error {
	return errors.New("cannot start")
}
func (failStart) Stop(context.Context) error { return nil }

// receive waits for the next message on the sink.
func (e *env) receive(t testing.TB) engine.Msg {
	t.Helper()
	select {
	case m := <-e.sink:
		return m
	case <-time.After(wait):
		t.Fatalf("no run within %s", wait)
		return nil
	}
}

// drain returns the messages already on the sink, without waiting.
func (e *env) drain() []engine.Msg {
	var out []engine.Msg
	for {
		select {
		case m := <-e.sink:
			out = append(out, m)
		default:
			return out
		}
	}
}

// waitCatchUps waits for the catch-up runs started so far.
func (s *Scheduler) waitCatchUps() {
	s.mu.Lock()
	wg := s.catchUps
	s.mu.Unlock()
	wg.Wait()
}

// mustCurrent returns the firing registration of flow/node, failing the test
// if there is none.
func (s *Scheduler) mustCurrent(t testing.TB, flow, node string) *registration {
	t.Helper()
	reg, _ := s.lookup(flow, node)
	if reg == nil {
		t.Fatalf("%s/%s is not armed", flow, node)
	}
	return reg
}

// wantNoCatchUp waits for the scheduler's catch-up pass and fails t for
// every catch-up run it started.
func (e *env) wantNoCatchUp(t *testing.T) {
	t.Helper()
	e.s.waitCatchUps()
	for _, m := range e.drain() {
		if sched(t, m)["catch_up"] == true {
			t.Errorf("a catch-up run: %v", m)
		}
	}
}

// sched returns the "schedule" object of a message.
func sched(t testing.TB, m engine.Msg) map[string]any {
	t.Helper()
	s, ok := m["schedule"].(map[string]any)
	if !ok {
		t.Fatalf("message has no schedule object: %v", m)
	}
	return s
}

// memKV is the in-memory store (store/memstore) with every update
// function called twice (storetest.TwiceUpdates), as an optimistic backend
// may, and a switch that makes updates fail.
type memKV struct {
	store.Store
	mu   sync.Mutex
	fail error
}

func newMemKV(t testing.TB) *memKV {
	t.Helper()
	return &memKV{Store: storetest.TwiceUpdates(memstore.MustNew(t, memstore.Options{}))}
}

func (m *memKV) UpdateKV(ctx context.Context, ns, key string, fn func([]byte) ([]byte, error)) error {
	m.mu.Lock()
	fail := m.fail
	m.mu.Unlock()
	if fail != nil {
		return fail
	}
	return m.Store.UpdateKV(ctx, ns, key, fn)
}

// GetKV fails like UpdateKV: a failing disk fails reads too.
func (m *memKV) GetKV(ctx context.Context, ns, key string) ([]byte, error) {
	m.mu.Lock()
	fail := m.fail
	m.mu.Unlock()
	if fail != nil {
		return nil, fail
	}
	return m.Store.GetKV(ctx, ns, key)
}

// setRaw stores a record's bytes as they are.
func (m *memKV) setRaw(t testing.TB, key string, data []byte) {
	t.Helper()
	if err := m.Store.SetKV(t.Context(), Namespace, key, data); err != nil {
		t.Fatal(err)
	}
}

func (m *memKV) seed(t testing.TB, key string, r record) {
	t.Helper()
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	m.setRaw(t, key, data)
}

func (m *memKV) get(t testing.TB, key string) record {
	t.Helper()
	rec, _, err := loadRecord(t.Context(), m.Store, key)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
