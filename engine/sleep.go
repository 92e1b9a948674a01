package engine

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"time"
)

// RealSleep waits d on a timer, or until ctx ends (its error then); a d
// of 0 or less only checks ctx. It is the default of every Sleep option
// (the engine's Options.Sleep, the scheduler's).
func RealSleep(ctx context.Context, d time.Duration) error {
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
	sleep := RealSleep
	if x.d != nil {
		sleep = x.d.rt.opts.Sleep
	}
	if err := sleep(ctx, d); err != nil {
		return fmt.Errorf("waiting %s: %w", d, err)
	}
	return nil
}

// Retry back-off of triggers that run a failed run again (core.startup,
// schedule.cron's retry): RetryDelay(1) is about RetryFirst, each next
// attempt waits twice as long, up to RetryMax.
const (
	RetryFirst = time.Second
	RetryMax   = time.Minute
)

// RetryDelay is how long to wait before retry number attempt (1 for the
// first): RetryFirst doubled per attempt up to RetryMax, jittered by up to
// a fifth either way so that nodes that failed together do not retry in
// step.
func RetryDelay(attempt int) time.Duration {
	d := RetryFirst
	for i := 1; i < attempt && d < RetryMax; i++ {
		d *= 2
	}
	d = min(d, RetryMax)
	spread := int64(d / 5)
	return d - time.Duration(spread) + time.Duration(mrand.Int64N(2*spread+1))
}
