package schedule

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/store/memstore"
)

// eventually polls cond until it holds or wait passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, wait)
		}
		time.Sleep(time.Millisecond)
	}
}

// Two schedulers on two handles of one store (two nodes): only the holder
// of the scheduler role ticks, a tick is claimed once whichever node fires
// it, and a node that lost the role can no longer claim (ErrFenced).
func TestLeadershipAndClaims(t *testing.T) {
	mem := memstore.MustNew(t, memstore.Options{})
	var mu sync.Mutex
	clock := fixedNow
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	n1, n2 := mem, mem.Node()
	e1 := newEnv(t, Options{State: n1, Coordinator: n1, Node: "n1", Now: now})
	e1.s.Start()
	eventually(t, "n1 leads", e1.s.Leading)
	e2 := newEnv(t, Options{State: n2, Coordinator: n2, Node: "n2", Now: now})
	e2.s.Start()
	f := tickFlow(t, "f", map[string]any{"spec": "0 3 * * *"})
	for _, e := range []*env{e1, e2} {
		if err := e.rt.Deploy(t.Context(), f, 1); err != nil {
			t.Fatal(err)
		}
	}
	if e2.s.Leading() {
		t.Fatal("both nodes lead")
	}
	reg1, reg2 := e1.s.mustCurrent(t, "f", "tick"), e2.s.mustCurrent(t, "f", "tick")
	tick := tickAt(reg1.t.c.sched, now())

	steps := []struct {
		name    string
		e       *env
		reg     *registration
		wantErr error
		runs    int
	}{
		{"the leader fires the tick", e1, reg1, nil, 1},
		{"the leader again: the tick is claimed", e1, reg1, errClaimed, 0},
		{"the other node: the tick is claimed", e2, reg2, errClaimed, 0},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.e.s.mu.Lock()
			ctx := st.e.s.runCtx
			st.e.s.mu.Unlock()
			_, err := st.e.s.fire(ctx, st.reg, kindTick, now(), tick)
			if !errors.Is(err, st.wantErr) && (st.wantErr != nil || err != nil) {
				t.Fatalf("fire: %v, want %v", err, st.wantErr)
			}
			if got := st.e.drain(); len(got) != st.runs {
				t.Errorf("runs = %d, want %d", len(got), st.runs)
			}
		})
	}

	t.Run("a node that lost the role cannot claim", func(t *testing.T) {
		e1.s.campMu.Lock()
		l := e1.s.lead
		e1.s.campMu.Unlock()
		e1.s.mu.Lock()
		fenced := e1.s.runCtx // fenced by l
		e1.s.mu.Unlock()
		if err := l.Resign(t.Context()); err != nil {
			t.Fatal(err)
		}
		// Either node may win the next campaign (n1 campaigns again at
		// once); what matters is that a new leadership exists and the
		// resigned one is fenced.
		eventually(t, "a new leadership", func() bool {
			e1.s.campMu.Lock()
			again := e1.s.lead != nil && e1.s.lead != l
			e1.s.campMu.Unlock()
			e1.s.mu.Lock()
			again = again && e1.s.runCtx != fenced
			e1.s.mu.Unlock()
			return e2.s.Leading() || again
		})
		// If n1 won the role again, the scheduler has cancelled the lost
		// leadership's context; the cancelled case is also checked on
		// its own, whoever won.
		cancelled, cancel := context.WithCancel(fenced)
		cancel()
		for _, c := range []struct {
			name string
			ctx  context.Context
		}{{"its run context", fenced}, {"its run context, cancelled", cancelled}} {
			_, err := e1.s.fire(c.ctx, reg1, kindTick, now(), tick.Add(24*time.Hour))
			if !errors.Is(err, store.ErrFenced) {
				t.Fatalf("fire under the lost leadership (%s): %v, want ErrFenced", c.name, err)
			}
			if got := e1.drain(); len(got) != 0 {
				t.Errorf("%s: runs = %d, want 0", c.name, len(got))
			}
		}
		leader, reg := e2, reg2
		if !e2.s.Leading() {
			leader, reg = e1, reg1
		}
		leader.s.mu.Lock()
		ctx := leader.s.runCtx
		leader.s.mu.Unlock()
		if _, err := leader.s.fire(ctx, reg, kindTick, now(), tick.Add(24*time.Hour)); err != nil {
			t.Fatalf("the new leader fires the next tick: %v", err)
		}
		if got := leader.drain(); len(got) != 1 {
			t.Errorf("runs on the new leader = %d, want 1", len(got))
		}
	})

	t.Run("a pause made on one node is seen by the other's claim", func(t *testing.T) {
		if err := e1.s.Pause(t.Context(), "f", "tick"); err != nil {
			t.Fatal(err)
		}
		e2.s.mu.Lock()
		ctx := e2.s.runCtx
		e2.s.mu.Unlock()
		_, err := e2.s.fire(ctx, reg2, kindTick, now(), tick.Add(48*time.Hour))
		if !errors.Is(err, errPaused) {
			t.Fatalf("fire after a pause elsewhere: %v, want errPaused", err)
		}
		ctx2, cancel := context.WithTimeout(t.Context(), wait)
		defer cancel()
		if err := e2.s.Reload(ctx2, "f/tick"); err != nil {
			t.Fatal(err)
		}
		if info, _ := e2.s.Get("f", "tick", 0); !info.Paused {
			t.Errorf("after Reload the other node lists the schedule as running")
		}
	})
}

// A tick claimed by a node that died in its run is run again by the next
// scheduler to start (or win the role) when the schedule sets catch_up:
// at least once. Without catch_up it is not (at most once).
func TestUnfinishedTickRunsAgain(t *testing.T) {
	tick := time.Date(2026, 3, 10, 3, 0, 0, 0, time.UTC) // fixedNow is 12:00 that day
	seeded := record{Spec: "0 3 * * *", Timezone: "UTC", Armed: tick.Add(-72 * time.Hour),
		LastFired: tick.Add(-24 * time.Hour), FiredFor: tick.Add(-24 * time.Hour),
		ClaimedFor: tick, ClaimedBy: "dead-node", ClaimedAt: tick}
	cases := []struct {
		name     string
		catchUp  bool
		rec      record
		wantRuns int
	}{
		{"catch_up runs the unfinished tick again", true, seeded, 1},
		{"without catch_up it stays lost", false, seeded, 0},
		{"a finished tick does not run again", true, func() record { r := seeded; r.FiredFor = tick; return r }(), 0},
		{"a tick of a replaced spec does not run again", true, func() record { r := seeded; r.Armed = tick.Add(time.Hour); return r }(), 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := newMemKV(t)
			st.seed(t, "f/tick", c.rec)
			e := newEnv(t, Options{State: st, Now: func() time.Time { return fixedNow }, Node: "n1"})
			if err := e.rt.Deploy(t.Context(), tickFlow(t, "f", map[string]any{"spec": "0 3 * * *", "catch_up": c.catchUp}), 1); err != nil {
				t.Fatal(err)
			}
			e.s.Start()
			e.s.waitCatchUps()
			runs := e.drain()
			if len(runs) != c.wantRuns {
				t.Fatalf("runs = %d, want %d", len(runs), c.wantRuns)
			}
			got := st.get(t, "f/tick")
			if c.wantRuns == 0 {
				if !got.FiredFor.Equal(c.rec.FiredFor) || got.ClaimedBy != c.rec.ClaimedBy {
					t.Errorf("record changed: %+v", got)
				}
				return
			}
			sch, _ := runs[0]["schedule"].(map[string]any)
			if sch["scheduled_for"] != tick.Format(time.RFC3339) || sch["catch_up"] != true {
				t.Errorf("message schedule = %v, want scheduled_for %s and catch_up", sch, tick)
			}
			if !got.FiredFor.Equal(tick) || got.ClaimedBy != "n1" || got.LastRun == nil || !got.LastRun.CatchUp {
				t.Errorf("record after the re-run = %+v, want fired_for %s, claimed by n1, a catch-up run", got, tick)
			}
			// A second start finds it finished.
			e2 := newEnv(t, Options{State: st, Now: func() time.Time { return fixedNow }, Node: "n2"})
			if err := e2.rt.Deploy(t.Context(), tickFlow(t, "f", map[string]any{"spec": "0 3 * * *", "catch_up": true}), 1); err != nil {
				t.Fatal(err)
			}
			e2.s.Start()
			e2.s.waitCatchUps()
			if runs := e2.drain(); len(runs) != 0 {
				t.Errorf("a later start ran it again: %d runs", len(runs))
			}
		})
	}
}
