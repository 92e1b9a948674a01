package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/store"
)

// traceWriter persists traces off the request path. Runs hand traces to a
// buffered channel; one goroutine keeps, per flow, only the newest
// keep traces received since the last write (older ones would be trimmed
// from the store's ring at once anyway) and writes them every
// traceInterval in one store transaction. Under load that bounds the cost
// of persistence to keep encodes and one commit per flow per interval,
// whatever the request rate. When the buffer is full a trace is dropped
// from persistence (it stays in the runtime's memory ring) rather than
// slowing the run; drops are counted and logged.
type traceWriter struct {
	st      store.Runs
	log     *slog.Logger
	keep    int
	ch      chan *engine.Trace
	done    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	dropped int
	flushed chan chan struct{}
}

const (
	traceBuffer   = 4096
	traceInterval = 250 * time.Millisecond
)

func newTraceWriter(st store.Runs, log *slog.Logger, keep int) *traceWriter {
	if keep <= 0 {
		keep = store.DefaultRunsPerFlow
	}
	w := &traceWriter{st: st, log: log, keep: keep, ch: make(chan *engine.Trace, traceBuffer),
		done: make(chan struct{}), flushed: make(chan chan struct{})}
	go w.loop()
	return w
}

func (w *traceWriter) SaveTrace(t *engine.Trace) {
	select {
	case w.ch <- t:
	default:
		w.mu.Lock()
		w.dropped++
		n := w.dropped
		w.mu.Unlock()
		if n == 1 || n%1000 == 0 {
			w.log.Warn("trace persistence is behind; traces kept in memory only", "dropped", n)
		}
	}
}

// Flush waits until every trace handed over so far is written.
func (w *traceWriter) Flush() {
	ack := make(chan struct{})
	select {
	case w.flushed <- ack:
		<-ack
	case <-w.done:
	}
}

// pendingRing holds the newest keep traces of one flow.
type pendingRing struct {
	buf  []*engine.Trace
	next int
	full bool
}

func (p *pendingRing) add(t *engine.Trace, keep int) {
	if len(p.buf) < keep && !p.full {
		p.buf = append(p.buf, t)
		if len(p.buf) == keep {
			p.full, p.next = true, 0
		}
		return
	}
	p.buf[p.next] = t
	p.next = (p.next + 1) % keep
}

func (w *traceWriter) loop() {
	defer close(w.done)
	pending := map[string]*pendingRing{}
	tick := time.NewTicker(traceInterval)
	defer tick.Stop()
	add := func(t *engine.Trace) {
		p := pending[t.Flow]
		if p == nil {
			p = &pendingRing{}
			pending[t.Flow] = p
		}
		p.add(t, w.keep)
	}
	write := func() {
		if len(pending) == 0 {
			return
		}
		var batch []store.RunRecord
		for _, p := range pending {
			for _, t := range p.buf {
				data, err := json.Marshal(t)
				if err != nil {
					w.log.Error("encoding run trace", "run", t.ID, "err", err)
					continue
				}
				batch = append(batch, store.RunRecord{Flow: t.Flow, ID: t.ID, Started: t.Started, Data: data})
			}
		}
		clear(pending)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.st.AppendRuns(ctx, batch); err != nil && !errors.Is(err, store.ErrClosed) {
			w.log.Error("persisting run traces", "count", len(batch), "err", err)
		}
	}
	drain := func() {
		for {
			select {
			case t, ok := <-w.ch:
				if !ok {
					return
				}
				add(t)
			default:
				return
			}
		}
	}
	for {
		select {
		case t, ok := <-w.ch:
			if !ok {
				write()
				return
			}
			add(t)
		case ack := <-w.flushed:
			drain()
			write()
			close(ack)
		case <-tick.C:
			write()
		}
	}
}

func (w *traceWriter) close() {
	w.once.Do(func() { close(w.ch) })
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
