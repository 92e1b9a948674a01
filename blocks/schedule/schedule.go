// Package schedule provides the schedule.cron trigger and the Scheduler
// service that runs it: one robfig/cron instance for every deployed flow,
// with state that survives restarts, so that a key rotation due while
// flowd was down still happens.
//
// A deploy builds the node (spec and zone are checked here, never at a
// tick), and the trigger's Start arms it in the Scheduler:
//
//	deploy --Start--> Scheduler.arm ---- cron entry ---- tick --> paused? --> Fire (one run at a time)
//	                       |                                                    |
//	                       +--> first time in this process and Scheduler      record last_fired,
//	                            started: catch up a missed tick, once          last_run
//
// On several nodes sharing a store (Options.Coordinator), every node arms
// every schedule but only the holder of the "scheduler" role ticks; each
// tick is claimed in its record (claimed_for, in the same transaction that
// checks the pause) before it runs, and the run carries the leadership's
// fenced context, so a tick fires once across the nodes and a node that
// lost the role cannot write.
//
// State is one JSON record per schedule in the StateStore namespace
// "schedule", key "<flow>/<node>": paused flag, spec and zone, when they
// were armed, last fired, last run. It is shared by every version of the
// flow, so a pause survives redeploys and restarts.
//
// Time zones: nodes name an IANA zone (default UTC); "Local" is refused, as
// the same flow would fire at different instants on different servers. In
// zones with daylight saving time, fixed-time specs ("30 2 * * *") follow
// the wall clock the way Vixie cron does: a time skipped by the clock
// change runs when the gap ends, a time repeated runs once. Wildcard specs
// ("*/15 * * * *", "@hourly") follow elapsed time.
package schedule

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/flowd/flowd/engine"
)

// Type is the block type of the cron trigger.
const Type = "schedule.cron"

// Config fields.
const (
	fieldSpec     = "spec"
	fieldTimezone = "timezone"
	fieldCatchUp  = "catch_up"
	fieldRetry    = "retry"
	fieldPayload  = "payload"
)

// Register adds schedule.cron to reg. It needs no services: a runtime that
// deploys schedule.cron arms its nodes in the Scheduler given to Provide.
func Register(reg *engine.Registry) error {
	return reg.Register(cronSpec(), newCronFromConfig)
}

// Provide gives the schedule.cron nodes of a runtime built with svc the
// scheduler that arms them.
func Provide(svc *engine.Services, s *Scheduler) error {
	if s == nil {
		return errors.New("schedule: Provide needs a Scheduler")
	}
	return engine.Provide(svc, s)
}

func cronSpec() engine.Spec {
	return engine.Spec{
		Type:     Type,
		Title:    "Schedule",
		Category: "schedule",
		Description: "Starts a run on a cron schedule. The message is " +
			`{"schedule": {"spec", "timezone", "fired_at", "scheduled_for", "catch_up", "manual"}, "payload": ...} ` +
			"with times in RFC 3339, UTC. It can be paused from the schedules page; a pause " +
			"survives restarts and redeploys.",
		Trigger: true,
		Fields: []engine.Field{
			{Name: fieldSpec, Label: "Schedule", Kind: engine.KindString, Required: true,
				Help: `Five fields "minute hour day-of-month month day-of-week" ("0 3 * * *": 03:00 daily), ` +
					`six with seconds first ("*/10 * * * * *"), or a descriptor: @yearly, @monthly, ` +
					`@weekly, @daily, @hourly, @every 15m (at least 1s).`},
			{Name: fieldTimezone, Label: "Time zone", Kind: engine.KindString,
				Help: `IANA time zone the schedule is read in, such as "Europe/Paris"; empty: the ` +
					`scheduler's zone (UTC unless the host sets Options.Location). ` +
					`"Local" is not allowed: it differs between servers.`},
			{Name: fieldCatchUp, Label: "Catch up", Kind: engine.KindBool, Default: false,
				Help: "If a tick passed while flowd was down, run once when it starts. " +
					"Use it for jobs that must not be skipped, such as key rotation."},
			{Name: fieldRetry, Label: "Retry", Kind: engine.KindBool, Default: false,
				Help: "If a scheduled run fails, run it again for the same tick after 1 s, 2 s, 4 s... " +
					"up to a minute between attempts, until one succeeds, the next tick is due, or this " +
					"node stops firing the schedules. Only for jobs that may run twice, such as key " +
					"rotation (jose.rotate rotates once per tick however often it runs)."},
			{Name: fieldPayload, Label: "Payload", Kind: engine.KindJSON,
				Help: `Any JSON value, put on the message as "payload".`},
		},
		Outputs: []string{"out"},
	}
}

func newCronFromConfig(setup *engine.Setup) (engine.Block, error) {
	// Only validating without a scheduler: the spec and zone are checked
	// against UTC.
	s, err := engine.ServiceOr(setup, "schedule.Provide", func() *Scheduler { return nil })
	if err != nil {
		return nil, fmt.Errorf("schedule.cron needs a scheduler: %w", err)
	}
	loc, now := time.UTC, time.Now()
	if s != nil {
		loc, now = s.loc, s.now()
	}
	conf := setup.Config
	c, errs := compile(conf.String(fieldSpec), conf.String(fieldTimezone), loc, now)
	if errs != nil {
		var ves engine.ValidationErrors
		for _, e := range errs {
			var ve engine.ValidationErrors
			if errors.As(setup.Errorf(e.Field, "%s", e.Msg), &ve) {
				ves = append(ves, ve...)
			}
		}
		return nil, ves
	}
	t := newCron(s, setup.FlowID, setup.NodeID, c, conf.Bool(fieldCatchUp), conf.JSON(fieldPayload))
	t.retry = conf.Bool(fieldRetry)
	return t, nil
}

// trigger is a deployed schedule.cron node.
type trigger struct {
	s          *Scheduler
	flow, node string
	c          *compiled
	catchUp    bool
	retry      bool // run a failed tick again (Scheduler.retry)
	payload    any  // nil: no payload key on the message

	mu  sync.Mutex
	reg *registration
}

var (
	_ engine.Block   = (*trigger)(nil)
	_ engine.Trigger = (*trigger)(nil)
)

func newCron(s *Scheduler, flow, node string, c *compiled, catchUp bool, payload any) *trigger {
	return &trigger{s: s, flow: flow, node: node, c: c, catchUp: catchUp, payload: payload}
}

// Process is not called for triggers; the runtime sends the message on "out".
func (t *trigger) Process(context.Context, *engine.Exec, engine.Msg) (string, error) {
	return "out", nil
}

// Start arms the schedule. It fails only if the schedule's state cannot be
// read or written: firing a schedule whose pause could not be read is the
// worse mistake.
func (t *trigger) Start(ctx context.Context, tc *engine.TriggerContext) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.reg != nil {
		return errors.New("schedule: trigger started twice")
	}
	reg, err := t.s.arm(ctx, t, tc)
	if err != nil {
		return err
	}
	t.reg = reg
	return nil
}

// Stop disarms the schedule; a run in flight finishes.
func (t *trigger) Stop(context.Context) error {
	t.mu.Lock()
	reg := t.reg
	t.reg = nil
	t.mu.Unlock()
	if reg != nil {
		t.s.disarm(reg)
	}
	return nil
}

// message is what a run starts with:
//
//	{"schedule": {"spec": "0 3 * * *", "timezone": "Europe/Paris",
//	              "fired_at": "2026-03-29T01:00:00Z", "scheduled_for": "2026-03-29T01:00:00Z",
//	              "catch_up": false, "manual": false},
//	 "payload": <the node's payload, if set>}
//
// scheduled_for is the tick being served: for a catch-up, the latest tick
// missed; for a manual run, fired_at.
func (t *trigger) message(at, scheduledFor time.Time, kind fireKind) engine.Msg {
	msg := engine.Msg{"schedule": map[string]any{
		"spec":          t.c.spec,
		"timezone":      t.c.zone,
		"fired_at":      at.UTC().Format(time.RFC3339),
		"scheduled_for": scheduledFor.UTC().Format(time.RFC3339),
		"catch_up":      kind.catchingUp(),
		"manual":        kind == kindManual,
	}}
	if t.payload != nil {
		msg["payload"] = engine.CopyValue(t.payload)
	}
	return msg
}
