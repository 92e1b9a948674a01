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

// traceWriter persists traces off the request path: runs hand traces to a
// buffered channel and one goroutine writes them in batches (one store
// transaction per batch). When the buffer is full a trace is dropped from
// persistence (it stays in the runtime's memory ring) rather than slowing
// the run; drops are counted and logged.
type traceWriter struct {
	st      store.Runs
	log     *slog.Logger
	ch      chan *engine.Trace
	done    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	dropped int
	flushed chan chan struct{}
}

const (
	traceBuffer   = 4096
	traceBatch    = 128
	traceInterval = 50 * time.Millisecond
)

func newTraceWriter(st store.Runs, log *slog.Logger) *traceWriter {
	w := &traceWriter{st: st, log: log, ch: make(chan *engine.Trace, traceBuffer),
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

func (w *traceWriter) loop() {
	defer close(w.done)
	batch := make([]store.RunRecord, 0, traceBatch)
	tick := time.NewTicker(traceInterval)
	defer tick.Stop()
	write := func() {
		if len(batch) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := w.st.AppendRuns(ctx, batch); err != nil && !errors.Is(err, store.ErrClosed) {
			w.log.Error("persisting run traces", "count", len(batch), "err", err)
		}
		cancel()
		batch = batch[:0]
	}
	add := func(t *engine.Trace) {
		data, err := json.Marshal(t)
		if err != nil {
			w.log.Error("encoding run trace", "run", t.ID, "err", err)
			return
		}
		batch = append(batch, store.RunRecord{Flow: t.Flow, ID: t.ID, Started: t.Started, Data: data})
		if len(batch) == traceBatch {
			write()
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
			for drained := false; !drained; {
				select {
				case t, ok := <-w.ch:
					if !ok {
						drained = true
						break
					}
					add(t)
				default:
					drained = true
				}
			}
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
