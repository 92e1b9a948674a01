package jose

import (
	"slices"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
)

// A rotation For a scheduled tick happens once per tick: a tick fired
// twice (two nodes, a re-run after a crash) must not activate a key
// published moments earlier.
func TestRotateOncePerTick(t *testing.T) {
	ctx := t.Context()
	m, _, clk := newKeysetsWith(t, "main", "ES256")
	tick1 := time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)
	tick2 := tick1.Add(24 * time.Hour)
	steps := []struct {
		name       string
		opts       RotateOptions
		wantRotate bool
	}{
		{"first run of tick 1 rotates", RotateOptions{For: tick1}, true},
		{"tick 1 again changes nothing", RotateOptions{For: tick1}, false},
		{"an older tick changes nothing", RotateOptions{For: tick1.Add(-time.Hour)}, false},
		{"a manual rotation (no tick) rotates", RotateOptions{}, true},
		{"tick 2 rotates", RotateOptions{For: tick2}, true},
		{"tick 2 again changes nothing", RotateOptions{For: tick2}, false},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			clk.Advance(time.Minute)
			before, err := m.Get(ctx, "main")
			if err != nil {
				t.Fatal(err)
			}
			rot, err := m.Rotate(ctx, "main", st.opts)
			if err != nil {
				t.Fatalf("Rotate: %v", err)
			}
			after, err := m.Get(ctx, "main")
			if err != nil {
				t.Fatal(err)
			}
			changed := !slices.EqualFunc(before.Keys, after.Keys, func(a, b KeyInfo) bool { return a.Kid == b.Kid && a.State == b.State })
			if changed != st.wantRotate || rot.AlreadyDone == st.wantRotate || (len(rot.Activated) > 0) != st.wantRotate {
				t.Errorf("changed = %v, rotation = %+v; want rotated = %v", changed, rot, st.wantRotate)
			}
		})
	}
}

func TestScheduledTick(t *testing.T) {
	at := "2026-03-01T03:00:00Z"
	want, _ := time.Parse(time.RFC3339, at)
	cases := []struct {
		name string
		msg  engine.Msg
		want time.Time
	}{
		{"a tick", engine.Msg{"schedule": map[string]any{"scheduled_for": at, "manual": false}}, want},
		{"a catch-up", engine.Msg{"schedule": map[string]any{"scheduled_for": at, "catch_up": true}}, want},
		{"a manual run rotates every time", engine.Msg{"schedule": map[string]any{"scheduled_for": at, "manual": true}}, time.Time{}},
		{"no schedule", engine.Msg{}, time.Time{}},
		{"schedule not an object", engine.Msg{"schedule": "x"}, time.Time{}},
		{"scheduled_for not a time", engine.Msg{"schedule": map[string]any{"scheduled_for": "soon"}}, time.Time{}},
		{"scheduled_for not a string", engine.Msg{"schedule": map[string]any{"scheduled_for": 12}}, time.Time{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := scheduledTick(c.msg); !got.Equal(c.want) {
				t.Errorf("scheduledTick = %v, want %v", got, c.want)
			}
		})
	}
}
