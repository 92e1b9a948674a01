package engine

import (
	"context"
	"sync/atomic"
	"time"
)

// runCtx is a run's context: the caller's, with the run's deadline. The
// timer that closes Done at the deadline is made only when something asks
// for Done or derives a context (a block waiting on I/O); most runs never
// do, and a timer plus a cancel registration with the caller's context
// per run was a measurable part of a cheap endpoint's cost. Err reads the
// clock, so the run loop sees the deadline either way.
type runCtx struct {
	context.Context // the caller's
	deadline        time.Time
	timer           atomic.Pointer[timedCtx]
}

type timedCtx struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// stoppedCtx stands in for the timer once the run has ended: the run's
// context is then cancelled, as a context.WithDeadline's would be.
var stoppedCtx = func() *timedCtx {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return &timedCtx{ctx, cancel}
}()

func (c *runCtx) timed() context.Context {
	if t := c.timer.Load(); t != nil {
		return t.ctx
	}
	ctx, cancel := context.WithDeadline(c.Context, c.deadline)
	if c.timer.CompareAndSwap(nil, &timedCtx{ctx, cancel}) {
		return ctx
	}
	cancel()
	return c.timer.Load().ctx
}

func (c *runCtx) Deadline() (time.Time, bool) {
	if d, ok := c.Context.Deadline(); ok && d.Before(c.deadline) {
		return d, true
	}
	return c.deadline, true
}

func (c *runCtx) Done() <-chan struct{} { return c.timed().Done() }

func (c *runCtx) Err() error { return c.errAt(time.Now()) }

// errAt is Err with the clock read by the caller.
func (c *runCtx) errAt(now time.Time) error {
	if t := c.timer.Load(); t != nil {
		return t.ctx.Err()
	}
	if err := c.Context.Err(); err != nil {
		return err
	}
	if !now.Before(c.deadline) {
		// Make the timer, so Done, Err and context.Cause agree from now on.
		return c.timed().Err()
	}
	return nil
}

func (c *runCtx) Value(key any) any {
	if t := c.timer.Load(); t != nil && t != stoppedCtx {
		return t.ctx.Value(key) // context.Cause and derived contexts find the timer's cancelCtx
	}
	return c.Context.Value(key)
}

// stop ends the run's context, as the cancel of context.WithDeadline.
func (c *runCtx) stop() {
	if c.timer.CompareAndSwap(nil, stoppedCtx) {
		return
	}
	c.timer.Load().cancel()
}

// DefaultSnapshotsPerSecond is Options.SnapshotsPerSecond's default.
const DefaultSnapshotsPerSecond = 20

// snapLimiter lets at most rate runs per second take message snapshots
// (rate < 0: all). Two atomics and no lock: at a second's boundary a few
// runs may land in either second, which is fine for a sampling rate.
type snapLimiter struct {
	rate int64
	sec  atomic.Int64 // the current second, Unix
	n    atomic.Int64 // runs counted in it
}

func (l *snapLimiter) allow(now time.Time) bool {
	if l.rate < 0 {
		return true
	}
	sec := now.Unix()
	if old := l.sec.Load(); old != sec {
		if l.sec.CompareAndSwap(old, sec) {
			l.n.Store(0)
		}
	} else if l.n.Load() >= l.rate {
		return false // the common case under load: reads only, no write to a shared line
	}
	return l.n.Add(1) <= l.rate
}

// fastClock reads the time the way time.Now does, for less: it reads the
// wall clock (slow on some virtual machines: time.Now cost a run more
// than 100 ns on the benchmark VM) at most once per second, and in
// between adds the monotonic clock's progress to that reading. Its times
// carry a monotonic reading like time.Now's; a wall clock step (NTP,
// an operator) shows within a second.
type fastClock struct {
	base atomic.Pointer[time.Time]
}

const fastClockResync = time.Second

func (c *fastClock) now() time.Time {
	if b := c.base.Load(); b != nil {
		if d := time.Since(*b); d >= 0 && d < fastClockResync {
			return b.Add(d)
		}
	}
	t := time.Now()
	c.base.Store(&t)
	return t
}
