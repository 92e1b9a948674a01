package schedule

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/store"
)

// ErrRunPanicked is the error of a run whose start panicked outside any
// block (the engine recovers block panics into their own run errors).
var ErrRunPanicked = errors.New("schedule: run panicked")

// errBusy: a tick came while the schedule's previous run was still going.
var errBusy = errors.New("schedule: previous run still in progress")

// Options configure a Scheduler.
type Options struct {
	// State persists pauses and last-fired times (store.KV satisfies it).
	// nil keeps them in memory: they end with the process.
	State StateStore
	// Logger receives schedule events (default: discarded).
	Logger *slog.Logger
	// Now is the clock for messages, catch-up decisions and next times
	// (default time.Now). Ticks themselves follow the real clock.
	Now func() time.Time
	// Location is the zone of nodes that leave timezone empty, and the
	// field's default in the editor (default UTC; time.Local is refused
	// like the "Local" zone name, and replaced by UTC).
	Location *time.Location
	// OnFire, if set, is told of every fire: kind "tick", "catch_up" or
	// "manual"; outcome "ok", "error", or "skipped" (a tick or catch-up
	// that found the previous run still going). It must not block.
	OnFire func(flow, node, kind, outcome string)
	// Coordinator, if set, elects the node that ticks: Start campaigns for
	// the role Role and ticks only while this node holds it; runs fired by
	// ticks carry the leadership's fenced context, so their store writes
	// fail with store.ErrFenced once it is lost. nil: this process always
	// ticks (one node).
	Coordinator Campaigner
	// Node names this node in claim records (claimed_by).
	Node string
	// Sleep is how a retry waits between attempts (default: a real timer;
	// see engine.Options.Sleep). It returns early with ctx's error.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Role is the Coordinator role whose holder fires the ticks.
const Role = "scheduler"

// Campaigner elects a leader; store.Coordinator satisfies it.
type Campaigner interface {
	Campaign(ctx context.Context, role string) (store.Leadership, error)
}

// maxNext bounds the activation times List, Get and Preview compute.
const maxNext = 100

// Scheduler runs the schedule.cron triggers of every deployed flow on one
// robfig/cron instance and keeps their state. It can take registrations
// (flow deploys) before Start; they fire once it starts.
type Scheduler struct {
	state StateStore
	log   *slog.Logger
	now   func() time.Time
	loc   *time.Location
	cron  *cron.Cron

	onFire func(flow, node, kind, outcome string)
	coord  Campaigner
	node   string
	sleep  func(ctx context.Context, d time.Duration) error

	// The campaign loop (Options.Coordinator).
	campMu     sync.Mutex
	campCancel context.CancelFunc
	campDone   chan struct{}
	lead       store.Leadership // held now, nil when not leading

	mu       sync.Mutex
	running  bool
	runCtx   context.Context // runs fired by ticks; cancelled when Stop gives up waiting
	cancel   context.CancelFunc
	catchUps *sync.WaitGroup // catch-up runs and retries since the last Start
	// ticking ends when ticking stops (Stop, the role lost): retries
	// waiting for their next attempt give up then.
	ticking   context.Context
	stopTicks context.CancelFunc
	slots     map[string]*slot
}

// slot is one schedule, "<flow>/<node>": it outlives the flow versions
// that register it, so its state and its one-run-at-a-time token carry
// over a redeploy.
type slot struct {
	flow, node, key string

	// Guarded by Scheduler.mu.
	regs      []*registration // started, not yet stopped; the last one is current
	activated bool            // catch-up was considered in this process
	retryFor  time.Time       // the tick a retry loop serves (zero: none)

	busy chan struct{} // holds a token while a run is in flight

	rmu    sync.Mutex // guards rec and loaded; held across state writes
	rec    record
	loaded bool
}

// registration is one started trigger: one flow version's node.
type registration struct {
	t     *trigger
	tc    *engine.TriggerContext
	slot  *slot
	entry cron.EntryID
}

// NewScheduler returns a Scheduler; call Start to make it tick.
func NewScheduler(opts Options) *Scheduler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	if opts.Location == time.Local {
		opts.Logger.Warn("schedule: Options.Location is time.Local, which differs between machines; using UTC")
		opts.Location = time.UTC
	}
	if opts.State == nil {
		opts.State = newMemState()
	}
	if opts.Sleep == nil {
		opts.Sleep = engine.RealSleep
	}
	logger := cronLogger{opts.Logger}
	ctx, cancel := context.WithCancel(context.Background())
	return &Scheduler{
		state: opts.State, log: opts.Logger, now: opts.Now, loc: opts.Location, coord: opts.Coordinator, node: opts.Node, onFire: opts.OnFire,
		sleep: opts.Sleep,
		cron: cron.New(cron.WithParser(parser), cron.WithLocation(time.UTC), cron.WithLogger(logger),
			cron.WithChain(cron.Recover(logger))),
		runCtx: ctx, cancel: cancel, catchUps: &sync.WaitGroup{}, slots: map[string]*slot{},
	}
}

// Start makes the scheduler tick, then fires once each schedule that has
// catch_up set and missed a tick while flowd was down. Start again after
// Stop resumes ticking; catch-up is considered once per schedule per
// Scheduler (and again each time this node wins the scheduler role).
//
// With Options.Coordinator, Start returns at once and a campaign goroutine
// ticks while this node holds Role: on every node but one the scheduler
// only lists, pauses and runs schedules by hand.
func (s *Scheduler) Start() {
	if s.coord == nil {
		s.startTicking(nil)
		return
	}
	s.campMu.Lock()
	defer s.campMu.Unlock()
	if s.campCancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.campCancel, s.campDone = cancel, make(chan struct{})
	go s.campaign(ctx, s.campDone)
}

// campaign wins the role, ticks until it is lost, and campaigns again.
func (s *Scheduler) campaign(ctx context.Context, done chan struct{}) {
	defer close(done)
	for {
		l, err := s.coord.Campaign(ctx, Role)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, store.ErrClosed) {
				return
			}
			s.log.Warn("schedule: campaign for the scheduler role failed", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		s.campMu.Lock()
		s.lead = l
		s.campMu.Unlock()
		s.log.Info("schedule: this node fires the schedules", "node", s.node)
		s.startTicking(l)
		select {
		case <-ctx.Done():
			return // Stop stops ticking, then resigns
		case <-l.Done():
		}
		s.log.Warn("schedule: scheduler role lost; ticks stop here", "node", s.node)
		sctx, cancel := context.WithTimeout(context.Background(), stateTimeout)
		if err := s.stopTicking(sctx); err != nil {
			s.log.Warn("schedule: stopping after the role was lost", "err", err)
		}
		cancel()
		s.campMu.Lock()
		s.lead = nil
		s.campMu.Unlock()
	}
}

// Leading reports whether this scheduler ticks now.
func (s *Scheduler) Leading() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running
}

// startTicking starts cron and the catch-ups; l, if set, fences the runs.
func (s *Scheduler) startTicking(l store.Leadership) {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return
	}
	s.running = true
	if s.runCtx.Err() != nil || l != nil {
		ctx := context.Background()
		if l != nil {
			ctx = l.Fenced(ctx)
			for _, sl := range s.slots {
				sl.activated = false // a new leader considers catch-up afresh
			}
		}
		s.cancel() // the previous runs are done, or were given up on
		s.runCtx, s.cancel = context.WithCancel(ctx)
	}
	s.catchUps = &sync.WaitGroup{}
	s.ticking, s.stopTicks = context.WithCancel(context.Background())
	s.cron.Start()
	var due []*registration
	for _, sl := range s.slots {
		if cur := sl.current(); cur != nil && !sl.activated {
			sl.activated = true
			due = append(due, cur)
		}
	}
	ctx, wg := s.runCtx, s.catchUps
	wg.Add(len(due))
	s.mu.Unlock()
	for _, reg := range due {
		go s.catchUp(ctx, wg, reg)
	}
}

// Stop stops ticking and waits, until ctx ends, for runs in flight; then
// it cancels them. Registrations stay: deploys may come and go while
// stopped, and Start resumes them. With a Coordinator it also ends the
// campaign and gives the role up (after the runs, whose writes it fences).
func (s *Scheduler) Stop(ctx context.Context) error {
	s.campMu.Lock()
	cancel, done := s.campCancel, s.campDone
	s.campCancel, s.campDone = nil, nil
	s.campMu.Unlock()
	if cancel == nil {
		return s.stopTicking(ctx)
	}
	cancel()
	<-done
	err := s.stopTicking(ctx)
	s.campMu.Lock()
	l := s.lead
	s.lead = nil
	s.campMu.Unlock()
	if l != nil {
		if rerr := l.Resign(context.WithoutCancel(ctx)); rerr != nil && err == nil && !errors.Is(rerr, store.ErrClosed) {
			err = fmt.Errorf("schedule: resign: %w", rerr)
		}
	}
	return err
}

func (s *Scheduler) stopTicking(ctx context.Context) error {
	s.mu.Lock()
	if !s.running {
		s.mu.Unlock()
		return nil
	}
	s.running = false
	s.stopTicks() // retries waiting for an attempt give up
	jobs := s.cron.Stop()
	wg, cancel := s.catchUps, s.cancel
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		<-jobs.Done()
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		cancel()
		return fmt.Errorf("schedule: stop: runs still in flight: %w", ctx.Err())
	}
}

func slotKey(flow, node string) string { return flow + "/" + node }

func (s *Scheduler) slotFor(flow, node string) *slot {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := slotKey(flow, node)
	sl := s.slots[key]
	if sl == nil {
		sl = &slot{flow: flow, node: node, key: key, busy: make(chan struct{}, 1)}
		s.slots[key] = sl
	}
	return sl
}

// current is the registration that fires; callers hold Scheduler.mu.
func (sl *slot) current() *registration {
	if len(sl.regs) == 0 {
		return nil
	}
	return sl.regs[len(sl.regs)-1]
}

func (sl *slot) snapshot() record {
	sl.rmu.Lock()
	defer sl.rmu.Unlock()
	return sl.rec
}

// lookup returns the current registration of a schedule, or nil.
func (s *Scheduler) lookup(flow, node string) (*registration, *slot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := s.slots[slotKey(flow, node)]
	if sl == nil {
		return nil, nil
	}
	return sl.current(), sl
}

// arm registers a started trigger. During a redeploy the new version arms
// before the old one disarms: the newest registration is the one that
// fires, and if it goes first (a failed deploy), the older fires again.
func (s *Scheduler) arm(ctx context.Context, t *trigger, tc *engine.TriggerContext) (*registration, error) {
	sl := s.slotFor(t.flow, t.node)
	if err := s.prepare(ctx, sl, t); err != nil {
		return nil, err
	}
	reg := &registration{t: t, tc: tc, slot: sl}
	s.mu.Lock()
	reg.entry = s.cron.Schedule(t.c.sched, cron.FuncJob(func() { s.tick(reg) }))
	sl.regs = append(sl.regs, reg)
	first := s.running && !sl.activated
	if first {
		sl.activated = true
		s.catchUps.Add(1)
	}
	runCtx, wg := s.runCtx, s.catchUps
	s.mu.Unlock()
	if first {
		go s.catchUp(runCtx, wg, reg)
	}
	return reg, nil
}

// prepare loads the schedule's record once per process and records the
// spec and zone being armed.
func (s *Scheduler) prepare(ctx context.Context, sl *slot, t *trigger) error {
	sl.rmu.Lock()
	defer sl.rmu.Unlock()
	if !sl.loaded {
		rec, corrupt, err := loadRecord(ctx, s.state, sl.key)
		if err != nil {
			return fmt.Errorf("schedule: read the state of %s: %w", sl.key, err)
		}
		if corrupt {
			s.log.Error("schedule: stored state does not decode; the schedule is paused until resumed",
				"flow", sl.flow, "node", sl.node)
		}
		sl.rec, sl.loaded = rec, true
	}
	now := s.now()
	probe := sl.rec
	if !probe.arm(t.c.spec, t.c.zone, now) {
		return nil
	}
	rec, err := updateRecord(ctx, s.state, sl.key, sl.rec, func(r *record) { r.arm(t.c.spec, t.c.zone, now) })
	if err != nil {
		return fmt.Errorf("schedule: write the state of %s: %w", sl.key, err)
	}
	sl.rec = rec
	return nil
}

func (s *Scheduler) disarm(reg *registration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cron.Remove(reg.entry)
	reg.slot.regs = slices.DeleteFunc(reg.slot.regs, func(r *registration) bool { return r == reg })
}

// tick is the cron job of one registration.
func (s *Scheduler) tick(reg *registration) {
	at := s.now()
	s.mu.Lock()
	current := reg.slot.current() == reg
	ctx := s.runCtx
	s.mu.Unlock()
	if !current || reg.slot.snapshot().Paused {
		return // a newer version of the flow fires instead, or someone paused it
	}
	s.fire(ctx, reg, kindTick, at, tickAt(reg.t.c.sched, at))
}

// catchUp fires a schedule once if catch_up is set and a tick passed
// between its baseline (last fired, or armed) and now.
func (s *Scheduler) catchUp(ctx context.Context, wg *sync.WaitGroup, reg *registration) {
	defer wg.Done()
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("schedule: catch-up panicked", "flow", reg.slot.flow, "node", reg.slot.node,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
	}()
	// A redeploy may have come in since: catch up on the newest version.
	cur, _ := s.lookup(reg.slot.flow, reg.slot.node)
	if cur == nil {
		return
	}
	reg = cur
	rec := reg.slot.snapshot()
	if fresh, corrupt, err := loadRecord(ctx, s.state, reg.slot.key); err == nil && !corrupt {
		rec = fresh // another node may have fired or claimed since this one read it
	}
	if failed := rec.failedTick(); reg.t.retry && !rec.Paused && !failed.IsZero() && !rec.Armed.After(failed) &&
		reg.t.c.sched.Next(failed).After(s.now()) {
		// The latest tick's run failed and the node retrying it stopped
		// (a restart, or the role moved here): retry it here.
		s.startRetry(reg, failed, errors.New(rec.LastRun.Error))
		return
	}
	base := rec.baseline()
	if !reg.t.catchUp || rec.Paused || base.IsZero() {
		return
	}
	now := s.now()
	first := reg.t.c.sched.Next(base)
	if first.IsZero() || first.After(now) {
		// No tick missed. One claimed whose run never finished (the node
		// died in it) runs again: at least once, for schedules that set
		// catch_up (jose.rotate rotates once per tick however often).
		// A tick of a spec replaced since (armed later) is not run again.
		if redo := rec.unfinished(); !redo.IsZero() && !rec.Armed.After(redo) {
			s.log.Info("schedule: running again a tick whose run did not finish", "flow", reg.slot.flow,
				"node", reg.slot.node, "scheduled_for", redo, "claimed_by", rec.ClaimedBy)
			s.fire(ctx, reg, kindRedo, now, redo)
		}
		return
	}
	missed := latestTick(reg.t.c.sched, first, now)
	s.log.Info("schedule: catching up a tick missed while flowd was down", "flow", reg.slot.flow,
		"node", reg.slot.node, "last_fired", rec.LastFired, "missed", missed)
	s.fire(ctx, reg, kindCatchUp, now, missed)
}

type fireKind int

const (
	kindTick fireKind = iota
	kindCatchUp
	kindManual
	kindRedo  // a catch-up of a claimed tick whose run did not finish
	kindRetry // a tick whose run failed, run again (retry)
)

// kindNames are the kinds OnFire reports; a redo is a catch-up.
var kindNames = [...]string{kindTick: "tick", kindCatchUp: "catch_up", kindManual: "manual", kindRedo: "catch_up", kindRetry: "retry"}

// claimMode is the claim a fire of this kind makes.
func (k fireKind) claimMode() claimMode {
	switch k {
	case kindRedo:
		return claimRedo
	case kindRetry:
		return claimRetry
	}
	return claimNew
}

// catchingUp: the run's message and record say catch_up.
func (k fireKind) catchingUp() bool { return k == kindCatchUp || k == kindRedo }

// fire runs the flow once. One run per schedule at a time: a tick or
// catch-up that finds one in flight is skipped (a slow key rotation must
// not pile up); a manual run waits its turn.
func (s *Scheduler) fire(ctx context.Context, reg *registration, kind fireKind, at, scheduledFor time.Time) (*engine.Trace, error) {
	sl := reg.slot
	if kind == kindManual {
		select {
		case sl.busy <- struct{}{}:
		case <-ctx.Done():
			return nil, fmt.Errorf("schedule: waiting for the previous run of %s: %w", sl.key, ctx.Err())
		}
	} else {
		select {
		case sl.busy <- struct{}{}:
		default:
			s.log.Warn("schedule: tick skipped: the previous run is still going", "flow", sl.flow, "node", sl.node,
				"scheduled_for", scheduledFor)
			s.fired(sl, kind, "skipped")
			return nil, errBusy
		}
	}
	defer func() { <-sl.busy }()
	if kind != kindManual {
		if err := s.claim(ctx, sl, scheduledFor, kind.claimMode()); err != nil {
			return nil, err
		}
	}
	tr, err := s.safeFire(ctx, reg, reg.t.message(at, scheduledFor, kind))
	if tr == nil && errors.Is(err, engine.ErrNotDeployed) {
		// The version was replaced as it fired; the new one has the schedule.
		return nil, err
	}
	s.recordRun(ctx, sl, kind, at, scheduledFor, tr, err)
	if err != nil {
		s.fired(sl, kind, "error")
		if reg.t.retry && kind != kindManual && kind != kindRetry && ctx.Err() == nil {
			s.startRetry(reg, scheduledFor, err)
		}
	} else {
		s.fired(sl, kind, "ok")
	}
	return tr, err
}

// startRetry starts the retry loop of a tick whose run failed, unless one
// runs for it already; a loop for an older tick gives up at its next
// attempt. It belongs to the current ticking: Stop and a lost role end it.
func (s *Scheduler) startRetry(reg *registration, scheduledFor time.Time, runErr error) {
	sl := reg.slot
	s.mu.Lock()
	if !s.running || sl.retryFor.Equal(scheduledFor) {
		s.mu.Unlock()
		return
	}
	sl.retryFor = scheduledFor
	ctx, ticking, wg := s.runCtx, s.ticking, s.catchUps
	wg.Add(1)
	s.mu.Unlock()
	go s.retry(ctx, ticking, wg, reg, scheduledFor, runErr)
}

// retry runs a failed tick again, one attempt at a time, after
// engine.RetryDelay (1 s doubling up to a minute, jittered), until a run
// succeeds or: the next tick is due before the next attempt, a newer tick
// is claimed or being retried, the schedule is paused or undeployed, it
// was run by hand since (whoever did sees how that went), or this node
// stops ticking (ticking ends: Stop, the scheduler role lost). Each attempt claims the tick again under the
// run's fenced context, so only the holder of the role retries, and
// jose.rotate's once-per-tick record makes a rotation that did commit a
// no-op.
func (s *Scheduler) retry(ctx, ticking context.Context, wg *sync.WaitGroup, reg *registration, scheduledFor time.Time, runErr error) {
	sl := reg.slot
	defer wg.Done()
	defer func() {
		s.mu.Lock()
		if sl.retryFor.Equal(scheduledFor) {
			sl.retryFor = time.Time{}
		}
		s.mu.Unlock()
		if p := recover(); p != nil {
			s.log.Error("schedule: retry panicked", "flow", sl.flow, "node", sl.node,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
	}()
	next := reg.t.c.sched.Next(scheduledFor)
	for attempt := 1; ; attempt++ {
		wait := engine.RetryDelay(attempt)
		if !next.IsZero() && !s.now().Add(wait).Before(next) {
			s.log.Warn("schedule: run failed; not retried: the next tick is due first", "flow", sl.flow, "node", sl.node,
				"scheduled_for", scheduledFor, "attempt", attempt, "err", runErr)
			return
		}
		s.log.Warn("schedule: run failed; trying again", "flow", sl.flow, "node", sl.node,
			"scheduled_for", scheduledFor, "attempt", attempt, "retry_in", wait.Round(time.Millisecond).String(), "err", runErr)
		if s.sleep(ticking, wait) != nil {
			return
		}
		s.mu.Lock()
		superseded := !sl.retryFor.Equal(scheduledFor)
		s.mu.Unlock()
		cur, _ := s.lookup(sl.flow, sl.node)
		if superseded || cur == nil {
			return
		}
		reg = cur // a redeploy since: retry with the current version
		_, err := s.fire(ctx, reg, kindRetry, s.now(), scheduledFor)
		switch {
		case err == nil:
			s.log.Info("schedule: retried run succeeded", "flow", sl.flow, "node", sl.node,
				"scheduled_for", scheduledFor, "attempt", attempt+1)
			return
		case errors.Is(err, errBusy):
			runErr = err // another run holds the slot: try again later
		case errors.Is(err, errPaused), errors.Is(err, errClaimed), errors.Is(err, store.ErrFenced),
			errors.Is(err, engine.ErrNotDeployed), ctx.Err() != nil:
			return // not this node's to retry any more
		default:
			runErr = err
		}
	}
}

// fired reports a fire to Options.OnFire.
func (s *Scheduler) fired(sl *slot, kind fireKind, outcome string) {
	if s.onFire != nil {
		s.onFire(sl.flow, sl.node, kindNames[kind], outcome)
	}
}

// claim records that this node serves the tick, under the run's (fenced)
// context: a paused schedule, a tick another node claimed, or a lost
// leadership (store.ErrFenced) refuse it, and nothing runs.
//
// A lost leadership is ErrFenced even when the run's context was
// cancelled too: once the role is lost the scheduler cancels that context
// (when it wins the role again, or gives up waiting for the runs), and a
// store may report the cancel before it checks the fence.
func (s *Scheduler) claim(ctx context.Context, sl *slot, scheduledFor time.Time, mode claimMode) error {
	sl.rmu.Lock()
	defer sl.rmu.Unlock()
	rec, err := claim(ctx, s.state, sl.key, sl.rec, scheduledFor, s.now(), s.node, mode)
	switch {
	case err == nil:
		sl.rec = rec
		return nil
	case errors.Is(err, errPaused), errors.Is(err, errClaimed):
		sl.rec = rec
		s.log.Debug("schedule: tick not fired", "flow", sl.flow, "node", sl.node, "scheduled_for", scheduledFor, "why", err)
		return err
	case !errors.Is(err, store.ErrFenced) && ctx.Err() != nil && fenceLost(ctx):
		s.log.Debug("schedule: tick not fired: the scheduler role was lost", "flow", sl.flow, "node", sl.node,
			"scheduled_for", scheduledFor)
		return fmt.Errorf("schedule: claim %s: scheduler role lost: %w (%w)", sl.key, store.ErrFenced, ctx.Err())
	default:
		s.log.Warn("schedule: tick not fired: claiming it failed", "flow", sl.flow, "node", sl.node,
			"scheduled_for", scheduledFor, "err", err)
		return fmt.Errorf("schedule: claim %s: %w", sl.key, err)
	}
}

// fenceLost reports whether ctx carries the fence of a leadership that is
// lost by now.
func fenceLost(ctx context.Context) bool {
	f, ok := store.FenceFrom(ctx)
	if !ok {
		return false
	}
	select {
	case <-f.Lost():
		return true
	default:
		return false
	}
}

// Reload re-reads a schedule's stored record (key "<flow>/<node>"), for a
// change another node made: a pause, a run it fired. Schedules this
// scheduler has not loaded are left alone.
func (s *Scheduler) Reload(ctx context.Context, key string) error {
	s.mu.Lock()
	sl := s.slots[key]
	s.mu.Unlock()
	if sl == nil {
		return nil
	}
	sl.rmu.Lock()
	defer sl.rmu.Unlock()
	if !sl.loaded {
		return nil
	}
	rec, corrupt, err := loadRecord(ctx, s.state, key)
	if err != nil {
		return fmt.Errorf("schedule: reload %s: %w", key, err)
	}
	if corrupt {
		rec = record{Paused: true}
	}
	sl.rec = rec
	return nil
}

// ReloadAll re-reads every loaded schedule's record.
func (s *Scheduler) ReloadAll(ctx context.Context) error {
	s.mu.Lock()
	keys := make([]string, 0, len(s.slots))
	for k := range s.slots {
		keys = append(keys, k)
	}
	s.mu.Unlock()
	var errs []error
	for _, k := range keys {
		errs = append(errs, s.Reload(ctx, k))
	}
	return errors.Join(errs...)
}

// safeFire turns a panic outside the blocks into a failed run, so a cron
// job never takes the process down whatever the engine does.
func (s *Scheduler) safeFire(ctx context.Context, reg *registration, msg engine.Msg) (tr *engine.Trace, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("schedule: run panicked", "flow", reg.slot.flow, "node", reg.slot.node,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			tr, err = nil, fmt.Errorf("%w: %v", ErrRunPanicked, p)
		}
	}()
	return reg.tc.Fire(ctx, msg)
}

// stateTimeout bounds a state write after a run; it is not bound by the
// run's context, which may be cancelled by then.
const stateTimeout = 10 * time.Second

// recordRun writes the run's head and, for ticks and catch-ups, the
// last-fired time. A failed run still fired: catch-up is for ticks that
// never happened, not for runs that went wrong.
func (s *Scheduler) recordRun(ctx context.Context, sl *slot, kind fireKind, at, scheduledFor time.Time, tr *engine.Trace, runErr error) {
	ri := &RunInfo{Status: engine.StatusOK, At: at.UTC(), Manual: kind == kindManual, CatchUp: kind.catchingUp()}
	if tr != nil {
		ri.ID, ri.Status, ri.Error = tr.ID, tr.Status, tr.Error
	}
	if runErr != nil {
		ri.Status = engine.StatusError
		if ri.Error == "" {
			ri.Error = runErr.Error()
		}
	}
	change := func(r *record) {
		r.LastRun = ri
		if kind != kindManual {
			r.LastFired = at.UTC()
			if scheduledFor.After(r.FiredFor) {
				r.FiredFor = scheduledFor.UTC()
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stateTimeout)
	defer cancel()
	sl.rmu.Lock()
	defer sl.rmu.Unlock()
	rec, err := updateRecord(ctx, s.state, sl.key, sl.rec, change)
	if err != nil {
		s.log.Error("schedule: recording a run", "flow", sl.flow, "node", sl.node, "err", err)
		change(&sl.rec) // keep this process right, at least
		return
	}
	sl.rec = rec
}

// Info describes one deployed schedule for the admin API and UI.
type Info struct {
	Flow     string `json:"flow"`
	Node     string `json:"node"`
	Version  int    `json:"version"` // the flow version whose trigger fires
	Spec     string `json:"spec"`
	Timezone string `json:"timezone"`
	CatchUp  bool   `json:"catch_up"`
	// Paused schedules still list their next times: when they would fire.
	Paused    bool        `json:"paused"`
	LastFired time.Time   `json:"last_fired,omitzero"` // last tick or catch-up run (not manual runs)
	LastRun   *RunInfo    `json:"last_run,omitempty"`  // any last run, manual ones included
	Next      []time.Time `json:"next"`                // next activations, UTC
}

// List returns every deployed schedule, sorted by flow then node, each with
// its next n activation times (n is capped at 100).
func (s *Scheduler) List(n int) []Info {
	s.mu.Lock()
	regs := make([]*registration, 0, len(s.slots))
	for _, sl := range s.slots {
		if cur := sl.current(); cur != nil {
			regs = append(regs, cur)
		}
	}
	s.mu.Unlock()
	now := s.now()
	out := make([]Info, 0, len(regs))
	for _, reg := range regs {
		out = append(out, s.info(reg, now, n))
	}
	slices.SortFunc(out, func(a, b Info) int {
		return cmp.Or(strings.Compare(a.Flow, b.Flow), strings.Compare(a.Node, b.Node))
	})
	return out
}

// Get returns one deployed schedule, or an error wrapping ErrNotFound.
func (s *Scheduler) Get(flow, node string, n int) (Info, error) {
	reg, _ := s.lookup(flow, node)
	if reg == nil {
		return Info{}, fmt.Errorf("%s/%s: %w", flow, node, ErrNotFound)
	}
	return s.info(reg, s.now(), n), nil
}

func (s *Scheduler) info(reg *registration, now time.Time, n int) Info {
	rec := reg.slot.snapshot()
	n = min(max(n, 0), maxNext)
	in := Info{Flow: reg.slot.flow, Node: reg.slot.node, Version: reg.tc.Version(), Spec: reg.t.c.spec,
		Timezone: reg.t.c.zone, CatchUp: reg.t.catchUp, Paused: rec.Paused, LastFired: rec.LastFired,
		LastRun: rec.LastRun, Next: []time.Time{}}
	if n > 0 {
		in.Next = nextTimes(reg.t.c.sched, s.everyFrom(reg, now), n)
	}
	return in
}

// everyFrom is where next times start: now, except for @every schedules,
// whose ticks count from when cron added them, which only cron knows.
func (s *Scheduler) everyFrom(reg *registration, now time.Time) time.Time {
	e, every := reg.t.c.sched.(cron.ConstantDelaySchedule)
	if !every {
		return now
	}
	s.mu.Lock()
	running := s.running
	s.mu.Unlock()
	if !running {
		return now
	}
	if next := s.cron.Entry(reg.entry).Next; !next.IsZero() {
		return next.Add(-e.Delay)
	}
	return now
}

// Pause stops a schedule from firing until Resume, across restarts and
// redeploys. Its entry stays listed; RunNow still runs it.
func (s *Scheduler) Pause(ctx context.Context, flow, node string) error {
	return s.setPaused(ctx, flow, node, true)
}

// Resume undoes Pause. It does not fire the ticks missed while paused.
func (s *Scheduler) Resume(ctx context.Context, flow, node string) error {
	return s.setPaused(ctx, flow, node, false)
}

func (s *Scheduler) setPaused(ctx context.Context, flow, node string, paused bool) error {
	reg, sl := s.lookup(flow, node)
	if reg == nil {
		return fmt.Errorf("%s/%s: %w", flow, node, ErrNotFound)
	}
	sl.rmu.Lock()
	defer sl.rmu.Unlock()
	rec, err := updateRecord(ctx, s.state, sl.key, sl.rec, func(r *record) { r.Paused = paused })
	if err != nil {
		return fmt.Errorf("schedule: pause %s: %w", sl.key, err)
	}
	sl.rec = rec
	s.log.Info("schedule: paused changed", "flow", flow, "node", node, "paused", paused)
	return nil
}

// RunNow runs a schedule's flow once, now, on the caller's goroutine, and
// returns its trace; the error is the run's failure, if it failed. It runs
// paused schedules too (it is a person asking), waits for a run in flight
// to finish first, and does not move the last-fired time that catch-up
// counts from.
func (s *Scheduler) RunNow(ctx context.Context, flow, node string) (*engine.Trace, error) {
	reg, _ := s.lookup(flow, node)
	if reg == nil {
		return nil, fmt.Errorf("%s/%s: %w", flow, node, ErrNotFound)
	}
	at := s.now()
	return s.fire(ctx, reg, kindManual, at, at)
}

// Preview checks a spec and zone exactly as a deploy would and returns the
// next n activation times (1 to 100, 5 when n <= 0) in the zone. The error
// is a *SpecError naming the field at fault; the zone is checked first.
func (s *Scheduler) Preview(spec, tz string, n int) ([]time.Time, error) {
	if n <= 0 {
		n = 5
	}
	now := s.now()
	c, errs := compile(spec, tz, s.loc, now)
	if errs != nil {
		return nil, errs[0]
	}
	out := nextTimes(c.sched, now, min(n, maxNext))
	for i := range out {
		out[i] = out[i].In(c.loc)
	}
	return out, nil
}

// cronLogger sends robfig/cron's logs to slog: its chatty Info at Debug.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug("cron: "+msg, kv...) }

func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error("cron: "+msg, append(kv, "err", err)...)
}
