package engine

import (
	"context"
	"fmt"
	"time"
)

// realSleep waits d on a timer, or until ctx ends.
func realSleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Sleep waits d with the runtime's Options.Sleep, or until ctx (the run's
// deadline included) ends; the error then wraps ctx's.
func (x *Exec) Sleep(ctx context.Context, d time.Duration) error {
	sleep := realSleep
	if x.d != nil {
		sleep = x.d.rt.opts.Sleep
	}
	if err := sleep(ctx, d); err != nil {
		return fmt.Errorf("waiting %s: %w", d, err)
	}
	return nil
}
