package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/store"
)

// traceWriter persists traces off the request path. A run adds its trace
// to its flow's pending ring under a mutex (no channel send, no goroutine
// wake-up per request: under load that wake-up alone cost net/http's
// connection goroutines hundreds of ms at p99). The ring keeps only the
// newest keep traces, since the store's ring would trim older ones at
// once. Every traceInterval one goroutine takes the rings, encodes them and
// writes them in one store transaction, so the cost of persistence does not
// grow with the request rate.
type traceWriter struct {
	st   store.Runs
	log  *slog.Logger
	keep int

	mu      sync.Mutex
	pending map[string]*pendingRing
	closed  bool

	flush chan chan struct{}
	quit  chan struct{}
	done  chan struct{}
	once  sync.Once
}

const traceInterval = 250 * time.Millisecond

func newTraceWriter(st store.Runs, log *slog.Logger, keep int) *traceWriter {
	if keep <= 0 {
		keep = store.DefaultRunsPerFlow
	}
	w := &traceWriter{st: st, log: log, keep: keep, pending: map[string]*pendingRing{},
		flush: make(chan chan struct{}), quit: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	return w
}

func (w *traceWriter) SaveTrace(t *engine.Trace) {
	w.mu.Lock()
	if !w.closed {
		p := w.pending[t.Flow]
		if p == nil {
			p = &pendingRing{}
			w.pending[t.Flow] = p
		}
		p.add(t, w.keep)
	}
	w.mu.Unlock()
}

// Flush waits until every trace handed over so far is written.
func (w *traceWriter) Flush() {
	ack := make(chan struct{})
	select {
	case w.flush <- ack:
		<-ack
	case <-w.done:
	}
}

// pendingRing holds the newest keep traces of one flow.
type pendingRing struct {
	buf  []*engine.Trace
	next int
}

func (p *pendingRing) add(t *engine.Trace, keep int) {
	if len(p.buf) < keep {
		p.buf = append(p.buf, t)
		return
	}
	p.buf[p.next] = t
	p.next = (p.next + 1) % keep
}

// write takes the pending traces and stores them in one transaction.
func (w *traceWriter) write() {
	w.mu.Lock()
	pending := w.pending
	if len(pending) == 0 {
		w.mu.Unlock()
		return
	}
	w.pending = make(map[string]*pendingRing, len(pending))
	w.mu.Unlock()
	var batch []store.RunRecord
	for _, p := range pending {
		for _, t := range p.buf {
			data, err := engine.EncodeTrace(t)
			if err != nil {
				w.log.Error("encoding run trace", "run", t.ID, "err", err)
				continue
			}
			batch = append(batch, store.RunRecord{Flow: t.Flow, ID: t.ID, Started: t.Started, Data: data})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.st.AppendRuns(ctx, batch); err != nil && !errors.Is(err, store.ErrClosed) {
		w.log.Error("persisting run traces", "count", len(batch), "err", err)
	}
}

func (w *traceWriter) loop() {
	defer close(w.done)
	tick := time.NewTicker(traceInterval)
	defer tick.Stop()
	for {
		select {
		case <-w.quit:
			w.write()
			return
		case ack := <-w.flush:
			w.write()
			close(ack)
		case <-tick.C:
			w.write()
		}
	}
}

// close writes what is pending and stops; later traces are not persisted.
func (w *traceWriter) close() {
	w.once.Do(func() {
		close(w.quit)
		<-w.done
		w.mu.Lock()
		w.closed = true
		w.mu.Unlock()
		w.write()
	})
	<-w.done
}

// kvVars stores flow variables as JSON in the KV namespace "vars/<flow>".
type kvVars struct{ st store.KV }

func varsNS(flow string) string { return "vars/" + flow }

func (v kvVars) LoadVars(ctx context.Context, flow string) (map[string]any, error) {
	keys, err := v.st.ListKV(ctx, varsNS(flow))
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, len(keys))
	for _, k := range keys {
		raw, err := v.st.GetKV(ctx, varsNS(flow), k)
		if err != nil {
			return nil, err
		}
		var val any
		if err := json.Unmarshal(raw, &val); err != nil {
			return nil, fmt.Errorf("flow variable %q: %w", k, err)
		}
		out[k] = val
	}
	return out, nil
}

// LoadVar reads one variable (engine.VarLoader), for a change another
// node made.
func (v kvVars) LoadVar(ctx context.Context, flow, key string) (any, bool, error) {
	raw, err := v.st.GetKV(ctx, varsNS(flow), key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var val any
	if err := json.Unmarshal(raw, &val); err != nil {
		return nil, false, fmt.Errorf("flow variable %q: %w", key, err)
	}
	return val, true, nil
}

// VarsHook keeps this node's flow variables in step with writes other
// nodes make (KV namespace "vars/<flow>").
func (a *App) VarsHook() Hook {
	return Hook{Name: "flow variables", Match: store.Filter{Kinds: []store.Kind{store.KindKV}, Group: "vars/"},
		Changed: func(ctx context.Context, c store.Change) {
			flow := strings.TrimPrefix(c.Group, "vars/")
			if err := a.rt.ReloadVar(ctx, flow, c.Name); err != nil {
				a.log.Warn("reloading a flow variable", "flow", flow, "key", c.Name, "err", err)
			}
		}}
}

func (v kvVars) SaveVar(ctx context.Context, flow, key string, value any) error {
	if value == nil {
		err := v.st.DeleteKV(ctx, varsNS(flow), key)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	}
	raw, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("flow variable %q is not JSON: %w", key, err)
	}
	return v.st.SetKV(ctx, varsNS(flow), key, raw)
}

// FlushTraces waits until traces handed to the store writer are persisted.
func (a *App) FlushTraces() { a.traces.Flush() }
