package schedule

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/store/storetest"
)

func TestDeployRejectsBadSpecsAndZones(t *testing.T) {
	tests := []struct {
		name string
		cfg  map[string]any
		// want lists "field: message part" for every problem, in order.
		want []string
	}{
		{"minute out of range", map[string]any{"spec": "61 * * * *"},
			[]string{`spec: minute field "61": end of range (61) above maximum (59)`}},
		{"too few fields", map[string]any{"spec": "* * *"}, []string{"spec: has 3 fields; want 5"}},
		{"too many fields", map[string]any{"spec": "0 0 0 * * * *"}, []string{"spec: has 7 fields"}},
		{"every zero", map[string]any{"spec": "@every 0s"}, []string{"spec: @every must be at least 1s, not 0s"}},
		{"every sub-second", map[string]any{"spec": "@every 100ms"}, []string{"spec: @every must be at least 1s, not 100ms"}},
		{"every fraction", map[string]any{"spec": "@every 1500ms"}, []string{"spec: @every must be a whole number of seconds"}},
		{"every negative", map[string]any{"spec": "@every -5m"}, []string{"spec: @every must be at least 1s"}},
		{"every no duration", map[string]any{"spec": "@every"}, []string{"spec: @every needs a duration"}},
		{"every garbage", map[string]any{"spec": "@every soon"}, []string{`spec: @every: "soon" is not a duration`}},
		{"empty", map[string]any{"spec": ""}, []string{"spec: required"}},
		{"blank", map[string]any{"spec": "   "}, []string{"spec: is empty"}},
		{"missing", map[string]any{}, []string{"spec: required"}},
		{"unknown descriptor", map[string]any{"spec": "@nonsense"}, []string{`spec: unknown descriptor "@nonsense"`}},
		{"never fires", map[string]any{"spec": "0 0 30 2 *"}, []string{"spec: never fires"}},
		{"zero step", map[string]any{"spec": "*/0 * * * *"}, []string{`spec: minute field "*/0": step of range should be a positive number`}},
		{"bad day name", map[string]any{"spec": "0 3 * * FUNDAY"}, []string{`spec: day-of-week field "FUNDAY"`}},
		{"second out of range", map[string]any{"spec": "60 * * * * *"}, []string{`spec: second field "60"`}},
		{"zone in spec", map[string]any{"spec": "TZ=Europe/Paris 0 3 * * *"}, []string{"spec: put the time zone in the timezone field"}},
		// robfig/cron v3.0.1 panics on this one (slice bounds out of range).
		{"zone alone in spec", map[string]any{"spec": "TZ=UTC"}, []string{"spec: put the time zone in the timezone field"}},
		{"cron zone in spec", map[string]any{"spec": "CRON_TZ=UTC 0 3 * * *"}, []string{"spec: put the time zone in the timezone field"}},
		{"not a string", map[string]any{"spec": 5}, []string{"spec: must be a string"}},
		{"unknown zone", map[string]any{"spec": "0 3 * * *", "timezone": "Mars/Olympus"},
			[]string{`timezone: unknown time zone "Mars/Olympus"`}},
		{"path as zone", map[string]any{"spec": "0 3 * * *", "timezone": "../../etc/passwd"},
			[]string{`timezone: "../../etc/passwd" is not a time zone name`}},
		{"absolute path as zone", map[string]any{"spec": "0 3 * * *", "timezone": "/etc/localtime"},
			[]string{`timezone: "/etc/localtime" is not a time zone name`}},
		{"local zone", map[string]any{"spec": "0 3 * * *", "timezone": "Local"},
			[]string{`timezone: "Local" depends on the server's settings`}},
		{"lower-case utc", map[string]any{"spec": "0 3 * * *", "timezone": "utc"},
			[]string{`timezone: unknown time zone "utc"`}},
		{"both wrong", map[string]any{"spec": "* * *", "timezone": "Mars/Olympus"},
			[]string{`timezone: unknown time zone "Mars/Olympus"`, "spec: has 3 fields"}},
		{"unknown field", map[string]any{"spec": "@daily", "every": "1h"}, []string{"every: unknown field"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Options{Now: func() time.Time { return fixedNow }})
			err := e.rt.Deploy(t.Context(), tickFlow(t, "f", tt.cfg), 1)
			if !errors.Is(err, engine.ErrInvalidFlow) {
				t.Fatalf("Deploy error = %v, want ErrInvalidFlow", err)
			}
			var ves engine.ValidationErrors
			if !errors.As(err, &ves) {
				t.Fatalf("Deploy error %T is not ValidationErrors", err)
			}
			if len(ves) != len(tt.want) {
				t.Fatalf("got %d problems (%v), want %d", len(ves), err, len(tt.want))
			}
			for i, ve := range ves {
				field, msg, _ := strings.Cut(tt.want[i], ": ")
				if ve.Node != "tick" || ve.Field != field || !strings.Contains(ve.Msg, msg) {
					t.Errorf("problem %d = node %q field %q %q, want node \"tick\" field %q containing %q",
						i, ve.Node, ve.Field, ve.Msg, field, msg)
				}
			}
			if got := e.s.List(1); len(got) != 0 {
				t.Errorf("List after a refused deploy = %v, want nothing armed", got)
			}
		})
	}
}

func TestDeployAccepts(t *testing.T) {
	// fixedNow is Tuesday 2026-03-10 12:00 UTC, 13:00 in Paris (CET).
	tests := []struct {
		name, spec, zone string // zone "-" leaves the field out
		wantZone         string
		wantNext         []string
	}{
		{"daily at three", "0 3 * * *", "-", "UTC", []string{"2026-03-11T03:00:00Z", "2026-03-12T03:00:00Z"}},
		{"seconds", "*/1 * * * * *", "UTC", "UTC", []string{"2026-03-10T12:00:01Z", "2026-03-10T12:00:02Z"}},
		{"extra spaces", " 0  3 * *   * ", "UTC", "UTC", []string{"2026-03-11T03:00:00Z", "2026-03-12T03:00:00Z"}},
		{"daily descriptor in Paris", "@daily", "Europe/Paris", "Europe/Paris", []string{"2026-03-10T23:00:00Z", "2026-03-11T23:00:00Z"}},
		{"hourly", "@hourly", "", "UTC", []string{"2026-03-10T13:00:00Z", "2026-03-10T14:00:00Z"}},
		{"yearly", "@yearly", "UTC", "UTC", []string{"2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"}},
		{"every", "@every 15m", "UTC", "UTC", []string{"2026-03-10T12:15:00Z", "2026-03-10T12:30:00Z"}},
		{"weekdays by name", "0 3 * * MON-FRI", "UTC", "UTC", []string{"2026-03-11T03:00:00Z", "2026-03-12T03:00:00Z"}},
		{"deep zone name", "0 9 1 * *", "America/Argentina/Buenos_Aires", "America/Argentina/Buenos_Aires",
			[]string{"2026-04-01T12:00:00Z", "2026-05-01T12:00:00Z"}},
		{"leap day", "0 0 29 2 *", "UTC", "UTC", []string{"2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Options{Now: func() time.Time { return fixedNow }})
			cfg := map[string]any{"spec": tt.spec}
			if tt.zone != "-" {
				cfg["timezone"] = tt.zone
			}
			if err := e.rt.Deploy(t.Context(), tickFlow(t, "f", cfg), 1); err != nil {
				t.Fatalf("Deploy: %v", err)
			}
			got := e.s.List(len(tt.wantNext))
			if len(got) != 1 {
				t.Fatalf("List = %v, want one schedule", got)
			}
			in := got[0]
			var next []string
			for _, n := range in.Next {
				next = append(next, n.Format(time.RFC3339))
			}
			want := Info{Flow: "f", Node: "tick", Version: 1, Spec: tt.spec, Timezone: tt.wantZone}
			in.Next = nil
			if !reflect.DeepEqual(in, want) || !reflect.DeepEqual(next, tt.wantNext) {
				t.Errorf("List = %+v next %v\nwant %+v next %v", in, next, want, tt.wantNext)
			}
		})
	}
}

func TestFiresEverySecond(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.s.Start()
	f := tickFlow(t, "f", map[string]any{"spec": "* * * * * *", "payload": map[string]any{"k": "v", "n": 1}})
	if err := e.rt.Deploy(t.Context(), f, 1); err != nil {
		t.Fatal(err)
	}
	first := e.receive(t)
	second := e.receive(t) // the scheduler keeps going
	for i, m := range []engine.Msg{first, second} {
		s := sched(t, m)
		fired, err1 := time.Parse(time.RFC3339, s["fired_at"].(string))
		tick, err2 := time.Parse(time.RFC3339, s["scheduled_for"].(string))
		if err1 != nil || err2 != nil {
			t.Fatalf("run %d: times do not parse: %v %v", i, err1, err2)
		}
		if d := fired.Sub(tick); d < 0 || d > time.Second {
			t.Errorf("run %d: fired_at %s is not within a second after scheduled_for %s", i, fired, tick)
		}
		if s["spec"] != "* * * * * *" || s["timezone"] != "UTC" || s["catch_up"] != false || s["manual"] != false {
			t.Errorf("run %d: schedule = %v", i, s)
		}
		if p := m["payload"].(map[string]any); len(p) != 2 || p["k"] != "v" || p["n"].(interface{ String() string }).String() != "1" {
			t.Errorf("run %d: payload = %v", i, m["payload"])
		}
	}
	// The first run was recorded before the second could start.
	in, err := e.s.Get("f", "tick", 1)
	if err != nil {
		t.Fatal(err)
	}
	if in.LastFired.IsZero() || in.LastRun == nil || in.LastRun.Status != engine.StatusOK || in.LastRun.ID == "" {
		t.Errorf("after a run: last fired %v, last run %+v", in.LastFired, in.LastRun)
	}
}

func TestPanickingBlockFailsTheRunOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.s.Start()
	f := buildFlow(t, "f", []tnode{{"tick", Type, map[string]any{"spec": "* * * * * *"}}, {"boom", "test.panic", nil}},
		"tick:out->boom")
	if err := e.rt.Deploy(t.Context(), f, 1); err != nil {
		t.Fatal(err)
	}
	e.receive(t)
	e.receive(t) // a second tick: the panic took nothing down
	traces := e.rt.Traces("f")
	if len(traces) == 0 {
		t.Fatal("no traces")
	}
	for _, tr := range traces {
		if tr.Status != engine.StatusError || !strings.Contains(tr.Error, "panicked") || tr.ErrorNode != "boom" {
			t.Errorf("trace %s: status %q error %q node %q, want a failed run at boom", tr.ID, tr.Status, tr.Error, tr.ErrorNode)
		}
	}
	in, err := e.s.Get("f", "tick", 0)
	if err != nil {
		t.Fatal(err)
	}
	if in.LastRun == nil || in.LastRun.Status != engine.StatusError || !strings.Contains(in.LastRun.Error, "panicked") {
		t.Errorf("last run = %+v, want the failed run", in.LastRun)
	}
	// A manual run fails the same way, with the engine's sentinel.
	tr, err := e.s.RunNow(t.Context(), "f", "tick")
	if !errors.Is(err, engine.ErrBlockPanic) || tr == nil || tr.Status != engine.StatusError {
		t.Errorf("RunNow = %v, %v; want a failed trace and ErrBlockPanic", tr, err)
	}
}

func TestPanicOutsideBlocksIsAFailedRun(t *testing.T) {
	st := newMemKV(t)
	e := newEnv(t, Options{State: st, Now: func() time.Time { return fixedNow }})
	if err := e.rt.Deploy(t.Context(), tickFlow(t, "f", map[string]any{"spec": "@daily"}), 1); err != nil {
		t.Fatal(err)
	}
	// A trigger context without a deployment makes the engine itself panic.
	good := e.s.mustCurrent(t, "f", "tick")
	bad := &registration{t: good.t, tc: &engine.TriggerContext{}, slot: good.slot}
	tr, err := e.s.fire(t.Context(), bad, kindTick, fixedNow, fixedNow)
	if tr != nil || !errors.Is(err, ErrRunPanicked) {
		t.Fatalf("fire = %v, %v; want ErrRunPanicked", tr, err)
	}
	rec := st.get(t, "f/tick")
	if rec.LastRun == nil || rec.LastRun.Status != engine.StatusError || !strings.Contains(rec.LastRun.Error, "panicked") ||
		!rec.LastFired.Equal(fixedNow) {
		t.Errorf("record after the panic = %+v (last run %+v)", rec, rec.LastRun)
	}
	// The schedule still runs.
	if _, err := e.s.RunNow(t.Context(), "f", "tick"); err != nil {
		t.Errorf("RunNow after the panic: %v", err)
	}
}

func TestCatchUp(t *testing.T) {
	daily := "0 3 * * *"
	ago := func(d time.Duration) time.Time { return fixedNow.Add(-d) }
	tests := []struct {
		name       string
		spec       string
		catchUp    bool
		seed       *record // nil: no record
		startFirst bool    // Scheduler.Start before the deploy, not after
		wantFires  int
		wantFor    string // scheduled_for of the catch-up run
	}{
		{"missed daily tick fires once", daily, true,
			&record{Spec: daily, Timezone: "UTC", LastFired: ago(48 * time.Hour)}, false, 1, "2026-03-10T03:00:00Z"},
		{"scheduler started before the deploy", daily, true,
			&record{Spec: daily, Timezone: "UTC", LastFired: ago(48 * time.Hour)}, true, 1, "2026-03-10T03:00:00Z"},
		{"record without a spec", daily, true,
			&record{LastFired: ago(48 * time.Hour)}, false, 1, "2026-03-10T03:00:00Z"},
		{"armed, never fired, missed", daily, true,
			&record{Spec: daily, Timezone: "UTC", Armed: ago(30 * time.Hour)}, false, 1, "2026-03-10T03:00:00Z"},
		{"every hour, missed three", "@every 1h", true,
			&record{Spec: "@every 1h", Timezone: "UTC", LastFired: ago(3*time.Hour + 10*time.Minute)}, false, 1, "2026-03-10T11:50:00Z"},
		{"nothing missed", daily, true,
			&record{Spec: daily, Timezone: "UTC", LastFired: time.Date(2026, 3, 10, 3, 0, 0, 0, time.UTC)}, false, 0, ""},
		{"catch_up off", daily, false,
			&record{Spec: daily, Timezone: "UTC", LastFired: ago(48 * time.Hour)}, false, 0, ""},
		{"paused", daily, true,
			&record{Paused: true, Spec: daily, Timezone: "UTC", LastFired: ago(48 * time.Hour)}, false, 0, ""},
		{"first deploy ever", daily, true, nil, false, 0, ""},
		{"schedule changed while down", daily, true,
			&record{Spec: "0 4 * * *", Timezone: "UTC", LastFired: ago(48 * time.Hour)}, false, 0, ""},
		{"zone changed while down", daily, true,
			&record{Spec: daily, Timezone: "Europe/Paris", LastFired: ago(48 * time.Hour)}, false, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newMemKV(t)
			if tt.seed != nil {
				st.seed(t, "f/tick", *tt.seed)
			}
			var fmu sync.Mutex
			var onFire []string
			e := newEnv(t, Options{State: st, Now: func() time.Time { return fixedNow }, OnFire: func(flow, node, kind, outcome string) {
				if kind == "catch_up" {
					fmu.Lock()
					onFire = append(onFire, flow+"/"+node+" "+kind+" "+outcome)
					fmu.Unlock()
				}
			}})
			f := tickFlow(t, "f", map[string]any{"spec": tt.spec, "catch_up": tt.catchUp})
			if tt.startFirst {
				e.s.Start()
			}
			if err := e.rt.Deploy(t.Context(), f, 1); err != nil {
				t.Fatal(err)
			}
			e.s.Start()
			e.s.waitCatchUps()
			// Only catch-up runs count: a real tick could come in if the
			// test ran exactly at 03:00 UTC.
			var fires []map[string]any
			for _, m := range e.drain() {
				if s := sched(t, m); s["catch_up"] == true {
					fires = append(fires, s)
				}
			}
			if len(fires) != tt.wantFires {
				t.Fatalf("catch-up runs = %d (%v), want %d", len(fires), fires, tt.wantFires)
			}
			fmu.Lock()
			wantOnFire := slices.Repeat([]string{"f/tick catch_up ok"}, tt.wantFires)
			if !slices.Equal(onFire, wantOnFire) {
				t.Errorf("OnFire saw %v, want %v", onFire, wantOnFire)
			}
			fmu.Unlock()
			rec := st.get(t, "f/tick")
			if tt.wantFires == 1 {
				want := map[string]any{"spec": tt.spec, "timezone": "UTC", "fired_at": "2026-03-10T12:00:00Z",
					"scheduled_for": tt.wantFor, "catch_up": true, "manual": false}
				if !reflect.DeepEqual(fires[0], want) {
					t.Errorf("catch-up message = %v\nwant %v", fires[0], want)
				}
				if !rec.LastFired.Equal(fixedNow) || rec.LastRun == nil || !rec.LastRun.CatchUp || rec.LastRun.Status != engine.StatusOK {
					t.Errorf("record after catch-up = %+v, last run %+v", rec, rec.LastRun)
				}
			} else {
				wantLast := time.Time{}
				if tt.seed != nil {
					wantLast = tt.seed.LastFired
				}
				if !rec.LastFired.Equal(wantLast) {
					t.Errorf("last fired = %v, want unchanged %v", rec.LastFired, wantLast)
				}
			}
			if rec.Spec != tt.spec || rec.Timezone != "UTC" || rec.Armed.IsZero() && rec.LastFired.IsZero() {
				t.Errorf("record = %+v, want the armed spec and a baseline", rec)
			}

			// Catch-up happens once per process: not on a redeploy, not
			// on a restart of the ticking.
			if err := e.rt.Deploy(t.Context(), f, 2); err != nil {
				t.Fatal(err)
			}
			if err := e.s.Stop(t.Context()); err != nil {
				t.Fatal(err)
			}
			e.s.Start()
			e.wantNoCatchUp(t)
		})
	}
}

func TestPauseSurvivesRestartAndRedeploy(t *testing.T) {
	st := newMemKV(t)
	clock := fixedNow
	opts := Options{State: st, Now: func() time.Time { return clock }}
	f := tickFlow(t, "f", map[string]any{"spec": "0 3 * * *", "catch_up": true})

	// The first process pauses the schedule and goes away.
	e1 := newEnv(t, opts)
	if err := e1.rt.Deploy(t.Context(), f, 1); err != nil {
		t.Fatal(err)
	}
	if err := e1.s.Pause(t.Context(), "f", "tick"); err != nil {
		t.Fatal(err)
	}
	if err := e1.rt.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := e1.s.List(0); len(got) != 0 {
		t.Fatalf("List after the runtime closed = %v, want nothing", got)
	}

	// Two days later a new process starts over the same store.
	clock = fixedNow.Add(48 * time.Hour)
	e := newEnv(t, opts)
	if err := e.rt.Deploy(t.Context(), f, 1); err != nil {
		t.Fatal(err)
	}
	e.s.Start()
	e.s.waitCatchUps()

	steps := []struct {
		name       string
		do         func(t *testing.T) error
		tick       bool // then run the cron job, as cron would
		wantPaused bool
		wantRun    string // "" no run; "tick" or "manual"
		wantFired  bool   // the record has a last-fired time
	}{
		{"paused after restart: no catch-up, no tick", nil, true, true, "", false},
		// Manual runs do not count as fired: catch-up still sees the missed tick.
		{"manual run while paused", func(t *testing.T) error {
			_, err := e.s.RunNow(t.Context(), "f", "tick")
			return err
		}, false, true, "manual", false},
		{"still paused after a redeploy", func(t *testing.T) error {
			return e.rt.Deploy(t.Context(), f, 2)
		}, true, true, "", false},
		{"resume", func(t *testing.T) error { return e.s.Resume(t.Context(), "f", "tick") }, true, false, "tick", true},
		{"pause again", func(t *testing.T) error { return e.s.Pause(t.Context(), "f", "tick") }, true, true, "", true},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			if step.do != nil {
				if err := step.do(t); err != nil {
					t.Fatal(err)
				}
			}
			if step.tick {
				e.s.tick(e.s.mustCurrent(t, "f", "tick"))
			}
			got := e.drain()
			switch {
			case step.wantRun == "" && len(got) != 0:
				t.Errorf("runs = %v, want none", got)
			case step.wantRun != "" && len(got) != 1:
				t.Errorf("runs = %v, want one", got)
			case step.wantRun != "":
				if s := sched(t, got[0]); s["manual"] != (step.wantRun == "manual") || s["catch_up"] != false {
					t.Errorf("run = %v, want a %s run", s, step.wantRun)
				}
			}
			in, err := e.s.Get("f", "tick", 2)
			if err != nil {
				t.Fatal(err)
			}
			if in.Paused != step.wantPaused || len(in.Next) != 2 {
				t.Errorf("Get = %+v, want paused %v with 2 next times", in, step.wantPaused)
			}
			if rec := st.get(t, "f/tick"); rec.Paused != step.wantPaused || rec.LastFired.IsZero() == step.wantFired {
				t.Errorf("stored record = %+v, want paused %v, fired %v", rec, step.wantPaused, step.wantFired)
			}
		})
	}
	// Only the tick moved the last-fired time; the manual run did not.
	rec := st.get(t, "f/tick")
	if !rec.LastFired.Equal(clock) || rec.LastRun == nil || rec.LastRun.Manual {
		t.Errorf("record = %+v, last run %+v; want last fired at the tick", rec, rec.LastRun)
	}
}

func TestNoCatchUpForTimeUndeployed(t *testing.T) {
	// Catch-up is for ticks missed while flowd was down. Within one
	// process, a flow that was undeployed across its tick was meant not to
	// run: deploying it again does not catch up.
	st := newMemKV(t)
	clock := fixedNow
	var mu sync.Mutex
	e := newEnv(t, Options{State: st, Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }})
	e.s.Start()
	f := tickFlow(t, "f", map[string]any{"spec": "0 3 * * *", "catch_up": true})
	steps := []struct {
		name    string
		advance time.Duration
		do      func(t *testing.T) error
	}{
		{"first deploy", 0, func(t *testing.T) error { return e.rt.Deploy(t.Context(), f, 1) }},
		{"undeploy", 0, func(t *testing.T) error { return e.rt.Undeploy(t.Context(), "f") }},
		{"deploy two days later", 48 * time.Hour, func(t *testing.T) error { return e.rt.Deploy(t.Context(), f, 2) }},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			mu.Lock()
			clock = clock.Add(step.advance)
			mu.Unlock()
			if err := step.do(t); err != nil {
				t.Fatal(err)
			}
			e.wantNoCatchUp(t)
		})
	}
}

func TestPauseWithRealStoreSurvivesRestart(t *testing.T) {
	// The same check against the bbolt store flowd uses, across a reopen.
	path := t.TempDir() + "/db"
	for i, wantBefore := range []bool{false, true} {
		st := storetest.BoltAt(t, path)
		e := newEnv(t, Options{State: storetest.TwiceUpdates(st), Now: func() time.Time { return fixedNow }})
		if err := e.rt.Deploy(t.Context(), tickFlow(t, "f", map[string]any{"spec": "@daily"}), i+1); err != nil {
			t.Fatal(err)
		}
		in, err := e.s.Get("f", "tick", 1)
		if err != nil {
			t.Fatal(err)
		}
		if in.Paused != wantBefore {
			t.Fatalf("process %d: paused = %v, want %v", i, in.Paused, wantBefore)
		}
		if err := e.s.Pause(t.Context(), "f", "tick"); err != nil {
			t.Fatal(err)
		}
		if err := e.rt.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRedeployHandsOver(t *testing.T) {
	// Each step ticks a day later: a tick is claimed once, so the same
	// instant twice would (rightly) fire once.
	var mu sync.Mutex
	clock := fixedNow
	e := newEnv(t, Options{Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }})
	v1 := tickFlow(t, "f", map[string]any{"spec": "0 3 * * *"})
	v2 := tickFlow(t, "f", map[string]any{"spec": "0 4 * * *"})
	broken := buildFlow(t, "f", []tnode{{"tick", Type, map[string]any{"spec": "0 5 * * *"}}, {"sink", "test.sink", nil},
		{"other", "test.failstart", nil}}, "tick:out->sink")

	if err := e.rt.Deploy(t.Context(), v1, 1); err != nil {
		t.Fatal(err)
	}
	old := e.s.mustCurrent(t, "f", "tick")
	if err := e.rt.Deploy(t.Context(), v2, 2); err != nil {
		t.Fatal(err)
	}
	// v3 arms its schedule, then fails on another trigger: v2 stays.
	if err := e.rt.Deploy(t.Context(), broken, 3); err == nil {
		t.Fatal("deploying a flow whose trigger cannot start worked")
	}
	cur := e.s.mustCurrent(t, "f", "tick")
	// The moment of a redeploy when both versions are armed: the newest
	// fires, the other's job does nothing until the newest goes away.
	next, err := e.s.arm(t.Context(), cur.t, cur.tc)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name     string
		before   func()
		reg      *registration
		wantRuns int
	}{
		{"the replaced version's job does nothing", nil, old, 0},
		{"while both are armed, the older does nothing", nil, cur, 0},
		{"while both are armed, the newer fires", nil, next, 1},
		{"once the newer goes, the older fires again", func() { e.s.disarm(next) }, cur, 1},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			if step.before != nil {
				step.before()
			}
			mu.Lock()
			clock = clock.Add(24 * time.Hour)
			mu.Unlock()
			e.s.tick(step.reg)
			if got := e.drain(); len(got) != step.wantRuns {
				t.Errorf("runs = %v, want %d", got, step.wantRuns)
			}
		})
	}
	got := e.s.List(1)
	if len(got) != 1 || got[0].Version != 2 || got[0].Spec != "0 4 * * *" {
		t.Errorf("List = %+v, want only version 2", got)
	}
}

func TestStateErrors(t *testing.T) {
	st := newMemKV(t)
	e := newEnv(t, Options{State: st, Now: func() time.Time { return fixedNow }})
	if err := e.rt.Deploy(t.Context(), tickFlow(t, "f", map[string]any{"spec": "@daily"}), 1); err != nil {
		t.Fatal(err)
	}
	disk := errors.New("disk on fire")
	st.mu.Lock()
	st.fail = disk
	st.mu.Unlock()
	tests := []struct {
		name    string
		do      func() error
		want    error
		wantMsg string
	}{
		{"pause reports the store error", func() error { return e.s.Pause(t.Context(), "f", "tick") }, disk, "disk on fire"},
		{"a run still runs", func() error { _, err := e.s.RunNow(t.Context(), "f", "tick"); return err }, nil, ""},
		// The engine reports a trigger's start error as a deploy problem
		// of the node, by its text.
		{"a deploy of another flow fails", func() error {
			return e.rt.Deploy(t.Context(), tickFlow(t, "g", map[string]any{"spec": "@daily"}), 1)
		}, engine.ErrInvalidFlow, "read the state of g/tick: disk on fire"},
		{"pause of an unknown schedule", func() error { return e.s.Pause(t.Context(), "f", "nope") }, ErrNotFound, "f/nope"},
		{"resume of an unknown schedule", func() error { return e.s.Resume(t.Context(), "nope", "tick") }, ErrNotFound, "nope/tick"},
		{"run of an unknown schedule", func() error { _, err := e.s.RunNow(t.Context(), "nope", "tick"); return err }, ErrNotFound, "nope/tick"},
		{"get of an unknown schedule", func() error { _, err := e.s.Get("nope", "tick", 1); return err }, ErrNotFound, "nope/tick"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			switch {
			case tt.want == nil && err != nil:
				t.Errorf("error = %v, want none", err)
			case tt.want != nil && (!errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.wantMsg)):
				t.Errorf("error = %v, want %v containing %q", err, tt.want, tt.wantMsg)
			}
		})
	}
	// The failed pause did not pause it in memory either.
	if in, _ := e.s.Get("f", "tick", 0); in.Paused {
		t.Error("paused after a failed pause")
	}
}

func TestCorruptStateIsPaused(t *testing.T) {
	st := newMemKV(t)
	st.setRaw(t, "f/tick", []byte("{not json"))
	e := newEnv(t, Options{State: st, Now: func() time.Time { return fixedNow }})
	if err := e.rt.Deploy(t.Context(), tickFlow(t, "f", map[string]any{"spec": "@daily"}), 1); err != nil {
		t.Fatal(err)
	}
	in, err := e.s.Get("f", "tick", 0)
	if err != nil || !in.Paused {
		t.Fatalf("Get = %+v, %v; want paused", in, err)
	}
	if err := e.s.Resume(t.Context(), "f", "tick"); err != nil {
		t.Fatal(err)
	}
	if rec := st.get(t, "f/tick"); rec.Paused || rec.Spec != "@daily" {
		t.Errorf("record after resume = %+v, want a clean one", rec)
	}
}

func TestStopCancelsRunsItGivesUpOn(t *testing.T) {
	st := newMemKV(t)
	st.seed(t, "f/tick", record{Spec: "@daily", Timezone: "UTC", LastFired: fixedNow.Add(-48 * time.Hour)})
	e := newEnv(t, Options{State: st, Now: func() time.Time { return fixedNow }})
	f := buildFlow(t, "f", []tnode{{"tick", Type, map[string]any{"spec": "@daily", "catch_up": true}},
		{"slow", "test.block", nil}}, "tick:out->slow")
	if err := e.rt.Deploy(t.Context(), f, 1); err != nil {
		t.Fatal(err)
	}
	e.s.Start()
	select {
	case <-e.started:
	case <-time.After(wait):
		t.Fatal("the catch-up run did not start")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := e.s.Stop(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Stop = %v, want it to give up with context.Canceled", err)
	}
	select {
	case <-e.ended:
	case <-time.After(wait):
		t.Fatal("the run was not cancelled")
	}
	e.s.waitCatchUps()
	if rec := st.get(t, "f/tick"); rec.LastRun == nil || rec.LastRun.Status != engine.StatusError {
		t.Errorf("last run = %+v, want the cancelled run", rec.LastRun)
	}
}
