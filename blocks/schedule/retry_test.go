package schedule

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/engine/enginetest"
	"github.com/flowd/flowd/store/memstore"
)

// sleeper is a recording Options.Sleep: each wait is sent on asked and
// lasts until the test lets it end (goOn) or its ctx ends (then its end
// is sent on cut).
type sleeper struct {
	asked chan time.Duration
	goOn  chan struct{}
	cut   chan error
}

func newSleeper() *sleeper {
	return &sleeper{asked: make(chan time.Duration, 16), goOn: make(chan struct{}, 16), cut: make(chan error, 16)}
}

func (s *sleeper) sleep(ctx context.Context, d time.Duration) error {
	s.asked <- d
	select {
	case <-s.goOn:
		return nil
	case <-ctx.Done():
		s.cut <- ctx.Err()
		return ctx.Err()
	}
}

func (s *sleeper) next(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-s.asked:
		return d
	case <-time.After(wait):
		t.Fatal("no retry was scheduled")
		return 0
	}
}

// within checks d is base jittered by at most a fifth.
func within(t *testing.T, what string, d, base time.Duration) {
	t.Helper()
	if lo, hi := base*4/5, base*6/5; d < lo || d > hi {
		t.Errorf("%s: %s, want %s to %s", what, d, lo, hi)
	}
}

// fires collects OnFire reports.
type fires struct {
	mu  sync.Mutex
	got []string
}

func (f *fires) on(_, _, kind, outcome string) {
	f.mu.Lock()
	f.got = append(f.got, kind+":"+outcome)
	f.mu.Unlock()
}

func (f *fires) list() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.got, " ")
}

func flakyFlow(t testing.TB, retry bool) *engine.Flow {
	return buildFlow(t, "f", []tnode{{"tick", Type, map[string]any{"spec": "0 3 * * *", "retry": retry}}, {"work", "test.flaky", nil}},
		"tick:out->work")
}

// fireTick fires the schedule's tick as cron would, with the run context.
func (e *env) fireTick(t *testing.T, tick time.Time) error {
	t.Helper()
	e.s.mu.Lock()
	ctx := e.s.runCtx
	e.s.mu.Unlock()
	_, err := e.s.fire(ctx, e.s.mustCurrent(t, "f", "tick"), kindTick, e.s.now(), tick)
	return err
}

// TestFailedTickIsRetried: a schedule with retry runs a failed tick again
// after about 1 s, then 2 s (the test's Sleep: no real waiting), one
// attempt at a time, for the same tick, until a run succeeds; each
// failure is a warning; the record ends with the tick fired and its last
// run ok. Without retry a failed tick waits for the next one.
func TestFailedTickIsRetried(t *testing.T) {
	tick := time.Date(2026, 3, 10, 3, 0, 0, 0, time.UTC)
	t.Run("retry", func(t *testing.T) {
		st := newMemKV(t)
		sl := newSleeper()
		var logs enginetest.LogBuffer
		var f fires
		e := newEnv(t, Options{State: st, Now: func() time.Time { return fixedNow }, Node: "n1", Sleep: sl.sleep,
			OnFire: f.on, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		e.flaky.Store(2)
		if err := e.rt.Deploy(t.Context(), flakyFlow(t, true), 1); err != nil {
			t.Fatal(err)
		}
		e.s.Start()
		if err := e.fireTick(t, tick); err == nil {
			t.Fatal("the first run succeeded; want it to fail")
		}
		for i, base := range []time.Duration{time.Second, 2 * time.Second} {
			within(t, "wait before retry", sl.next(t), base)
			// One attempt at a time: while the retry waits, the runs so
			// far are done and no other is going.
			runs := e.drain()
			if len(runs) != 1 || sched(t, runs[0])["scheduled_for"] != tick.Format(time.RFC3339) {
				t.Fatalf("retry %d: runs while waiting %v, want the one before it, for %s", i+1, runs, tick)
			}
			sl.goOn <- struct{}{}
		}
		if m := e.receive(t); sched(t, m)["scheduled_for"] != tick.Format(time.RFC3339) {
			t.Errorf("the last retry served %v, want %s", sched(t, m)["scheduled_for"], tick)
		}
		// The second retry succeeded: the loop ends, the record says so.
		eventually(t, "the retry loop ends", func() bool {
			e.s.mu.Lock()
			defer e.s.mu.Unlock()
			return e.s.slots["f/tick"].retryFor.IsZero()
		})
		rec := st.get(t, "f/tick")
		checks := []struct {
			what      string
			got, want any
		}{
			{"fired for", rec.FiredFor.Equal(tick), true},
			{"claimed for", rec.ClaimedFor.Equal(tick), true},
			{"last run", rec.LastRun != nil && rec.LastRun.Status == engine.StatusOK, true},
			{"no failed tick left", rec.failedTick().IsZero(), true},
			{"fires", f.list(), "tick:error retry:error retry:ok"},
			{"no further wait", len(sl.asked), 0},
			{"warnings", strings.Count(logs.String(), `level=WARN msg="schedule: run failed; trying again" flow=f node=tick`), 2},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
			}
		}
	})
	t.Run("no retry", func(t *testing.T) {
		sl := newSleeper()
		e := newEnv(t, Options{State: newMemKV(t), Now: func() time.Time { return fixedNow }, Sleep: sl.sleep})
		e.flaky.Store(1)
		if err := e.rt.Deploy(t.Context(), flakyFlow(t, false), 1); err != nil {
			t.Fatal(err)
		}
		e.s.Start()
		if err := e.fireTick(t, tick); err == nil {
			t.Fatal("the run succeeded; want it to fail")
		}
		e.s.mu.Lock()
		retrying := !e.s.slots["f/tick"].retryFor.IsZero()
		e.s.mu.Unlock()
		if retrying || len(sl.asked) != 0 {
			t.Errorf("a schedule without retry retries")
		}
	})
	t.Run("the next tick is due first", func(t *testing.T) {
		sl := newSleeper()
		var logs enginetest.LogBuffer
		late := tick.Add(24*time.Hour - 500*time.Millisecond)
		e := newEnv(t, Options{State: newMemKV(t), Now: func() time.Time { return late }, Sleep: sl.sleep,
			Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		e.flaky.Store(1)
		if err := e.rt.Deploy(t.Context(), flakyFlow(t, true), 1); err != nil {
			t.Fatal(err)
		}
		e.s.Start()
		if err := e.fireTick(t, tick); err == nil {
			t.Fatal("the run succeeded; want it to fail")
		}
		eventually(t, "the retry loop ends", func() bool {
			e.s.mu.Lock()
			defer e.s.mu.Unlock()
			return e.s.slots["f/tick"].retryFor.IsZero()
		})
		if len(sl.asked) != 0 || !strings.Contains(logs.String(), "not retried: the next tick is due first") {
			t.Errorf("waits %d, log:\n%s", len(sl.asked), logs.String())
		}
	})
}

// TestRetryEndsWithTicking: Stop ends a retry waiting for its attempt (at
// once, not after its back-off), and so does losing the scheduler role;
// the node that holds the role next retries the failed tick itself.
func TestRetryEndsWithTicking(t *testing.T) {
	tick := time.Date(2026, 3, 10, 3, 0, 0, 0, time.UTC)
	t.Run("stop", func(t *testing.T) {
		sl := newSleeper()
		e := newEnv(t, Options{State: newMemKV(t), Now: func() time.Time { return fixedNow }, Sleep: sl.sleep})
		e.flaky.Store(5)
		if err := e.rt.Deploy(t.Context(), flakyFlow(t, true), 1); err != nil {
			t.Fatal(err)
		}
		e.s.Start()
		e.fireTick(t, tick)
		sl.next(t)
		ctx, cancel := context.WithTimeout(t.Context(), wait)
		defer cancel()
		if err := e.s.Stop(ctx); err != nil {
			t.Fatalf("Stop with a retry waiting: %v", err)
		}
		if err := <-sl.cut; !errors.Is(err, context.Canceled) {
			t.Errorf("the retry's wait ended with %v", err)
		}
		if runs := e.drain(); len(runs) != 1 {
			t.Errorf("%d runs, want only the first", len(runs))
		}
	})
	t.Run("role lost", func(t *testing.T) {
		mem := memstore.MustNew(t, memstore.Options{})
		sl := newSleeper()
		var mu sync.Mutex
		clock := tick.Add(-time.Hour) // armed before the tick
		now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
		e := newEnv(t, Options{State: mem, Coordinator: mem, Node: "n1", Now: now, Sleep: sl.sleep})
		e.flaky.Store(1)
		if err := e.rt.Deploy(t.Context(), flakyFlow(t, true), 1); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		clock = tick.Add(time.Minute)
		mu.Unlock()
		e.s.Start()
		eventually(t, "n1 leads", e.s.Leading)
		e.fireTick(t, tick)
		sl.next(t)
		e.s.campMu.Lock()
		l := e.s.lead
		e.s.campMu.Unlock()
		if err := l.Resign(t.Context()); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-sl.cut:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("the retry's wait ended with %v", err)
			}
		case <-time.After(wait):
			t.Fatal("losing the role did not end the retry's wait")
		}
		// n1 wins the role again: as the new leader it finds the failed
		// tick in the record and retries it.
		sl.next(t)
		sl.goOn <- struct{}{}
		e.receive(t) // the first run's message is drained below
		eventually(t, "the tick is done", func() bool {
			rec, _, err := loadRecord(t.Context(), mem, "f/tick")
			return err == nil && rec.LastRun != nil && rec.LastRun.Status == engine.StatusOK && rec.FiredFor.Equal(tick)
		})
	})
}

// TestRedoIsReportedAsCatchUp: the re-run of a tick whose node died in its
// run is reported to OnFire as a catch-up (it used to index past the kind
// names and panic inside the catch-up, after the run).
func TestRedoIsReportedAsCatchUp(t *testing.T) {
	tick := time.Date(2026, 3, 10, 3, 0, 0, 0, time.UTC)
	st := newMemKV(t)
	st.seed(t, "f/tick", record{Spec: "0 3 * * *", Timezone: "UTC", Armed: tick.Add(-72 * time.Hour),
		LastFired: tick.Add(-24 * time.Hour), FiredFor: tick.Add(-24 * time.Hour),
		ClaimedFor: tick, ClaimedBy: "dead-node", ClaimedAt: tick})
	var f fires
	e := newEnv(t, Options{State: st, Now: func() time.Time { return fixedNow }, Node: "n1", OnFire: f.on})
	if err := e.rt.Deploy(t.Context(), tickFlow(t, "f", map[string]any{"spec": "0 3 * * *", "catch_up": true}), 1); err != nil {
		t.Fatal(err)
	}
	e.s.Start()
	e.s.waitCatchUps()
	if got := f.list(); got != "catch_up:ok" {
		t.Errorf("OnFire: %q, want catch_up:ok", got)
	}
}
