package core

import (
	"context"
	"time"

	"github.com/flowd/flowd/engine"
)

// maxDelay bounds core.delay: a run holds its caller (an HTTP request, a
// cron slot) for the whole wait.
const maxDelay = 5 * time.Minute

func delaySpec() engine.Spec {
	return engine.Spec{
		Type:     "core.delay",
		Title:    "Delay",
		Category: Category,
		Description: "Waits, then passes the message on unchanged. The run (and an HTTP caller) waits " +
			"too, so keep it short: at most " + maxDelay.String() + " and less than the run deadline. " +
			"A run cancelled or past its deadline while waiting leaves by \"error\".",
		Fields: []engine.Field{
			{Name: "duration", Label: "Wait", Kind: engine.KindDuration, Required: true, Min: "1ms", Max: maxDelay.String(),
				Help: "How long to wait, e.g. \"500ms\" or \"2s\"."},
		},
		Outputs: []string{"out"},
		Bounded: true,
	}
}

type delayBlock struct{ d time.Duration }

var _ engine.Block = (*delayBlock)(nil)

func newDelayFromConfig(s *engine.Setup) (engine.Block, error) {
	d := s.Config.Duration("duration")
	if s.Limits.Deadline > 0 && d >= s.Limits.Deadline {
		return nil, s.Errorf("duration", "%s is not shorter than the run deadline (%s): every run would fail here", d, s.Limits.Deadline)
	}
	return newDelay(d), nil
}

func newDelay(d time.Duration) *delayBlock { return &delayBlock{d: d} }

func (b *delayBlock) Process(ctx context.Context, x *engine.Exec, _ engine.Msg) (string, error) {
	if err := x.Sleep(ctx, b.d); err != nil {
		return "", err
	}
	return "out", nil
}
