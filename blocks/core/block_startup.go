package core

import (
	"context"
	"sync"
	"time"

	"github.com/flowd/flowd/engine"
)

func startupSpec() engine.Spec {
	return engine.Spec{
		Type:     "core.startup",
		Title:    "On start",
		Category: Category,
		Description: "Starts one run each time this flow version starts: when flowd starts " +
			"with the flow deployed, and after every deploy. Use it for idempotent set-up, such " +
			"as making sure a keyset exists before the first request needs it. " +
			"msg.startup.at is the start time.",
		Trigger: true,
		Outputs: []string{"out"},
	}
}

// startup fires once, in the background, after Start. Stop cancels a run
// that has not finished.
type startup struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

var (
	_ engine.Block   = (*startup)(nil)
	_ engine.Trigger = (*startup)(nil)
)

func newStartupFromConfig(*engine.Setup) (engine.Block, error) { return &startup{}, nil }

func (*startup) Process(context.Context, *engine.Exec, engine.Msg) (string, error) { return "out", nil }

func (s *startup) Start(_ context.Context, t *engine.TriggerContext) error {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.mu.Lock()
	s.cancel, s.done = cancel, done
	s.mu.Unlock()
	go func() {
		defer close(done)
		tr, err := t.Fire(ctx, engine.Msg{"startup": map[string]any{"at": t.Now().UTC().Format(time.RFC3339Nano)}})
		if err != nil && t.Logger != nil {
			run := ""
			if tr != nil {
				run = tr.ID
			}
			t.Logger.Warn("start-up run failed", "run", run, "err", err)
		}
	}()
	return nil
}

func (s *startup) Stop(ctx context.Context) error {
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
