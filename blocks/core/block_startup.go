package core

import (
	"context"
	"errors"
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
			"A run that fails is started again (retry on), after 1 s, then 2 s, 4 s... up to " +
			"a minute between attempts, until one succeeds or the flow version stops; each " +
			"failure is logged as a warning. msg.startup.at is the start time, " +
			"msg.startup.attempt the attempt (1 for the first).",
		Trigger: true,
		Fields: []engine.Field{
			{Name: "retry", Label: "Retry a failed run", Kind: engine.KindBool, Default: true,
				Help: "Start a failed run again with a growing back-off (1 s doubling up to 1 min) " +
					"until one succeeds. Off: a failed start-up run waits for the next start."},
		},
		Outputs: []string{"out"},
	}
}

// startup fires once, in the background, after Start, and again after a
// failure while retry is on. Stop cancels a run that has not finished and
// the wait for the next attempt; attempts run one after the other, never
// two at once.
type startup struct {
	retry bool

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

var (
	_ engine.Block   = (*startup)(nil)
	_ engine.Trigger = (*startup)(nil)
)

func newStartupFromConfig(s *engine.Setup) (engine.Block, error) {
	return &startup{retry: s.Config.Bool("retry")}, nil
}

func (*startup) Process(context.Context, *engine.Exec, engine.Msg) (string, error) { return "out", nil }

func (s *startup) Start(_ context.Context, t *engine.TriggerContext) error {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.mu.Lock()
	s.cancel, s.done = cancel, done
	s.mu.Unlock()
	go func() {
		defer close(done)
		s.run(ctx, t)
	}()
	return nil
}

// run fires the start-up run until one succeeds (retry off: once), the
// flow version stops (ctx), or the version is gone.
func (s *startup) run(ctx context.Context, t *engine.TriggerContext) {
	at := t.Now().UTC().Format(time.RFC3339Nano)
	for attempt := 1; ; attempt++ {
		tr, err := t.Fire(ctx, engine.Msg{"startup": map[string]any{"at": at, "attempt": attempt}})
		if err == nil {
			if attempt > 1 && t.Logger != nil {
				t.Logger.Info("start-up run succeeded after retries", "run", tr.ID, "attempt", attempt)
			}
			return
		}
		run := ""
		if tr != nil {
			run = tr.ID
		}
		if ctx.Err() != nil || errors.Is(err, engine.ErrNotDeployed) || errors.Is(err, engine.ErrClosed) {
			return // stopped: the next start runs it again
		}
		if !s.retry {
			if t.Logger != nil {
				t.Logger.Warn("start-up run failed", "run", run, "err", err)
			}
			return
		}
		wait := engine.RetryDelay(attempt)
		if t.Logger != nil {
			t.Logger.Warn("start-up run failed; trying again", "run", run, "attempt", attempt,
				"retry_in", wait.Round(time.Millisecond).String(), "err", err)
		}
		if t.Sleep(ctx, wait) != nil {
			return
		}
	}
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
