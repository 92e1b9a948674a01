package schedule_test

import (
	"context"
	"fmt"
	"time"

	"github.com/flowd/flowd/blocks/schedule"
	"github.com/flowd/flowd/engine"
)

// An embedder registers schedule.cron, makes one Scheduler, provides it to
// the runtime and starts it alongside. Pass a store.KV as Options.State so that
// pauses and catch-up survive restarts.
func Example() {
	now := func() time.Time { return time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC) }
	s := schedule.NewScheduler(schedule.Options{Now: now})
	reg := engine.NewRegistry()
	if err := schedule.Register(reg); err != nil {
		panic(err)
	}
	svc := engine.NewServices()
	if err := schedule.Provide(svc, s); err != nil {
		panic(err)
	}
	rt, err := engine.New(engine.Options{Registry: reg, Services: svc})
	if err != nil {
		panic(err)
	}
	s.Start()
	defer s.Stop(context.Background())
	defer rt.Close(context.Background())

	f, err := engine.DecodeFlow([]byte(`{"schema": "flowd/v1", "id": "key-rollover", "name": "Key rollover",
		"nodes": [{"id": "tick", "type": "schedule.cron", "x": 0, "y": 0,
		           "config": {"spec": "0 3 * * *", "timezone": "Europe/Paris", "catch_up": true}}],
		"wires": []}`))
	if err != nil {
		panic(err)
	}
	if err := rt.Deploy(context.Background(), f, 1); err != nil {
		panic(err)
	}
	for _, in := range s.List(2) {
		fmt.Println(in.Flow, in.Node, in.Spec, in.Timezone, "paused:", in.Paused)
		for _, t := range in.Next {
			fmt.Println(" ", t.Format(time.RFC3339))
		}
	}
	// Output:
	// key-rollover tick 0 3 * * * Europe/Paris paused: false
	//   2026-03-11T02:00:00Z
	//   2026-03-12T02:00:00Z
}

// The editor previews a spec as it is typed; errors name the field.
func ExampleScheduler_Preview() {
	now := func() time.Time { return time.Date(2026, 3, 27, 12, 0, 0, 0, time.UTC) }
	s := schedule.NewScheduler(schedule.Options{Now: now})
	times, err := s.Preview("0 3 * * *", "Europe/Paris", 3)
	if err != nil {
		panic(err)
	}
	for _, t := range times {
		fmt.Println(t.Format(time.RFC3339), "=", t.UTC().Format(time.RFC3339))
	}
	_, err = s.Preview("0 3 * *", "Europe/Paris", 3)
	fmt.Println(err)
	// Output:
	// 2026-03-28T03:00:00+01:00 = 2026-03-28T02:00:00Z
	// 2026-03-29T03:00:00+02:00 = 2026-03-29T01:00:00Z
	// 2026-03-30T03:00:00+02:00 = 2026-03-30T01:00:00Z
	// spec: has 4 fields; want 5 (minute hour day-of-month month day-of-week), 6 with seconds first, or a descriptor such as "@daily"
}
