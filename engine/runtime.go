package engine

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"reflect"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Msg is a message travelling along the wires: a JSON-like map.
type Msg = map[string]any

// Limits bound one run.
type Limits struct {
	MaxSteps        int           // node executions per run (default 1000)
	Deadline        time.Duration // wall time per run (default 30s)
	MaxMessageBytes int           // estimated encoded size of a message (default 1 MiB)
}

func (l Limits) withDefaults() Limits {
	if l.MaxSteps <= 0 {
		l.MaxSteps = 1000
	}
	if l.Deadline <= 0 {
		l.Deadline = 30 * time.Second
	}
	if l.MaxMessageBytes <= 0 {
		l.MaxMessageBytes = 1 << 20
	}
	return l
}

// VarStore persists flow variables (the `flow` of expressions).
type VarStore interface {
	LoadVars(ctx context.Context, flow string) (map[string]any, error)
	// SaveVar writes one variable; a nil value deletes it.
	SaveVar(ctx context.Context, flow, key string, value any) error
}

// Options configure a Runtime.
type Options struct {
	Registry *Registry
	Logger   *slog.Logger
	Limits   Limits
	// Env is the allow-list of environment variables expressions see as `env`.
	Env map[string]string
	// Vars persists flow variables; nil keeps them in memory only.
	Vars VarStore
	// Traces persists finished traces; nil keeps them in memory only.
	Traces TraceSink
	// TraceRing is how many recent traces per flow are kept in memory (default 100).
	TraceRing int
	// SnapshotsPerSecond bounds how many runs per flow and second record
	// message snapshots (default 20; negative: every run). Every run leaves
	// a trace with its path, ports, durations and errors; runs past the
	// rate leave a light one (Trace.Light): no messages, except those of
	// steps that failed (whether or not an error wire handled it). Runs
	// started with Runtime.Run (the admin API's run) always take
	// snapshots. On a busy endpoint, snapshots of every run would cost
	// more than the rest of the run together.
	SnapshotsPerSecond int
	// MaxExprNodes is the AST node budget of an expression (default 1000).
	MaxExprNodes uint
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Observer counts runs and step errors and is handed to every block
	// factory as Setup.Observer (default NopObserver). See Observer.
	Observer Observer
	// Tracer, if set, opens a span per run and per step and is handed to
	// every block factory as Setup.Tracer (default nil: no tracing, at no
	// cost per run). See Tracer.
	Tracer Tracer
	// Sleep waits d or until ctx ends, for blocks that wait (core.delay;
	// Exec.Sleep). Default: a real timer. With a frozen Now, give a Sleep
	// that moves that clock instead (flowtest.Clock.Sleep).
	Sleep func(ctx context.Context, d time.Duration) error
	// Services are what block factories look up at deploy (keysets,
	// clients, a router: see Services and each block package's Provide).
	// nil: none, which is enough to validate flows of a bare registry.
	Services *Services
}

// Runtime deploys flows and runs them.
//
// A run carries one message from a trigger node along the wires:
//
//	trigger --out--> A --ok--> B          each wire of a port gets its own
//	                   \--ok--> C         copy of the message; a block error
//	                   \-error-> D        goes out of "error" if wired, else
//	                                      the run fails.
//
// Runs execute on the caller's goroutine (an HTTP handler, a cron job) in
// breadth-first order, under a step limit, a deadline and a message size
// limit, and leave a Trace.
type Runtime struct {
	reg    *Registry
	log    *slog.Logger
	limits Limits
	opts   Options
	cc     compileEnv
	// realClock: Options.Now was left to time.Now, so a run's start time
	// is the monotonic reading it takes anyway.
	realClock bool
	clock     fastClock

	mu     sync.Mutex   // serializes Deploy/Undeploy/Close
	fmu    sync.RWMutex // guards flows, so runs never wait for a deploy
	flows  map[string]*deployment
	vars   map[string]*Vars
	rings  map[string]*traceRing
	rmu    sync.Mutex // guards rings and vars maps
	closed atomic.Bool

	// catchGlobal counts deployed global catch triggers, so a failed run
	// looks for them only when there are some.
	catchGlobal atomic.Int64

	retiring  sync.WaitGroup // replaced versions whose runs are finishing
	closeDone chan struct{}  // closed once Close has drained everything
}

// New returns a Runtime.
func New(opts Options) (*Runtime, error) {
	if opts.Registry == nil {
		return nil, errors.New("engine: Options.Registry is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.TraceRing <= 0 {
		opts.TraceRing = 100
	}
	if opts.SnapshotsPerSecond == 0 {
		opts.SnapshotsPerSecond = DefaultSnapshotsPerSecond
	}
	realClock := opts.Now == nil
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Env == nil {
		opts.Env = map[string]string{}
	}
	if opts.Observer == nil {
		opts.Observer = NopObserver{}
	}
	if opts.Sleep == nil {
		opts.Sleep = RealSleep
	}
	return &Runtime{
		reg: opts.Registry, log: opts.Logger, limits: opts.Limits.withDefaults(), opts: opts, realClock: realClock,
		cc:    compileEnv{maxNodes: opts.MaxExprNodes},
		flows: map[string]*deployment{}, vars: map[string]*Vars{}, rings: map[string]*traceRing{},
		closeDone: make(chan struct{}),
	}, nil
}

// Registry returns the runtime's block registry.
func (r *Runtime) Registry() *Registry { return r.reg }

// deployment is one built version of a flow.
type deployment struct {
	rt      *Runtime
	flow    *Flow
	version int
	nodes   map[string]*nodeInst
	order   []*nodeInst // document order
	vars    *Vars
	ring    *traceRing
	runs    RunObserver
	tracer  FlowTracer // nil: runs are not traced
	// sensitive is every key the flow's block types declare sensitive.
	sensitive []string
	// secrets are the literal values of the flow's config fields marked
	// Field.Secret: a run starts with them marked (Exec.MarkSecret).
	secrets []string
	// catchFlow and catchGlobal are the catch triggers (catch.go).
	catchFlow, catchGlobal []*nodeInst

	// Runs in flight are counted so a replaced version closes its blocks
	// only after they finish. A counter, not an RWMutex: a run that starts
	// another run of the same version (a block firing a trigger) must not
	// deadlock behind a pending retire.
	inflight atomic.Int64
	retired  atomic.Bool
	idle     chan struct{} // closed once retired and no run is in flight
	idleOnce sync.Once
}

// enter registers a run; false if the version is retired.
func (d *deployment) enter() bool {
	d.inflight.Add(1)
	if d.retired.Load() {
		d.leave()
		return false
	}
	return true
}

func (d *deployment) leave() {
	if d.inflight.Add(-1) == 0 && d.retired.Load() {
		d.idleOnce.Do(func() { close(d.idle) })
	}
}

// drain marks the version retired and waits for its runs in flight.
func (d *deployment) drain() {
	d.retired.Store(true)
	if d.inflight.Load() == 0 {
		d.idleOnce.Do(func() { close(d.idle) })
	}
	<-d.idle
}

type nodeInst struct {
	node    *Node
	spec    *Spec
	block   Block
	out     map[string][]*nodeInst
	log     *slog.Logger // with flow and node
	trigger Trigger
	tctx    *TriggerContext
	// firePort is the port a trigger sends its message out of: "out", or
	// the trigger's first declared output if it has no "out"; fire are
	// its targets, out[firePort], resolved at deploy.
	firePort string
	fire     []*nodeInst
	errs     Counter // failed steps, resolved at deploy
	// catch is the scope of a catch trigger (CatchFlow, CatchGlobal), "" otherwise.
	catch string
}

// Validate checks a flow against the registry exactly as Deploy would
// (config, expressions, wires, block factories) without running anything.
func (r *Runtime) Validate(ctx context.Context, f *Flow) error {
	d, err := r.build(ctx, f, 0)
	if err != nil {
		return err
	}
	d.closeBlocks()
	return nil
}

// Validate checks a flow against the registry's specs: block types, config
// fields and expressions, wires and ports. It does not call factories.
func (reg *Registry) Validate(f *Flow) error {
	_, _, errs := reg.check(f, &compileEnv{})
	return errs.err()
}

func (reg *Registry) check(f *Flow, cc *compileEnv) (map[string]*Spec, map[string]*Config, ValidationErrors) {
	var errs ValidationErrors
	specs := map[string]*Spec{}
	configs := map[string]*Config{}
	badConfig := map[string]bool{}
	for i := range f.Nodes {
		n := &f.Nodes[i]
		e, ok := reg.types[n.Type]
		if !ok {
			ve := verr(n.ID, "type", "unknown block type %q", n.Type)
			ve.cause = errUnknownTypeCause
			errs = append(errs, ve)
			continue
		}
		spec := e.spec
		specs[n.ID] = &spec
		c, cerrs := parseConfig(&spec, n, cc)
		errs = append(errs, cerrs...)
		configs[n.ID] = c
		badConfig[n.ID] = len(cerrs) > 0
	}
	type wkey struct{ from, port, to string }
	seen := map[wkey]bool{}
	for i, w := range f.Wires {
		field := fmt.Sprintf("wires[%d]", i)
		from, to := f.Node(w.From), f.Node(w.To)
		switch {
		case from == nil:
			errs = append(errs, verr(w.From, field+".from", "wire from a node that does not exist"))
			continue
		case to == nil:
			errs = append(errs, verr(w.To, field+".to", "wire to a node that does not exist"))
			continue
		}
		if s := specs[w.To]; s != nil && s.Trigger {
			errs = append(errs, verr(w.To, field+".to", "%s is a trigger and has no input", s.Type))
		}
		// A node with a bad config has unknown dynamic ports: its config
		// errors are reported, its wires' ports are not guessed at.
		if s := specs[w.From]; s != nil && !badConfig[w.From] {
			ports, perr := safePorts(s, configs[w.From])
			switch {
			case perr != nil:
				errs = append(errs, verr(w.From, field+".port", "%v", perr))
			case !slices.Contains(ports, w.Port):
				errs = append(errs, verr(w.From, field+".port", "block %s has no output port %q (ports: %q)", s.Type, w.Port, ports))
			}
		}
		k := wkey{w.From, w.Port, w.To}
		if seen[k] {
			errs = append(errs, verr(w.From, field, "duplicate wire %s:%s -> %s", w.From, w.Port, w.To))
		}
		seen[k] = true
	}
	return specs, configs, errs
}

// safePorts is Spec.Ports with a panicking DynamicOutputs turned into an error.
func safePorts(s *Spec, c *Config) (ports []string, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("block %s failed to list its output ports: %v", s.Type, p)
		}
	}()
	return s.Ports(c), nil
}

func (r *Runtime) build(ctx context.Context, f *Flow, version int) (d *deployment, err error) {
	specs, configs, errs := r.reg.check(f, &r.cc)
	if len(errs) > 0 {
		return nil, errs
	}
	d = &deployment{rt: r, flow: f, version: version, nodes: make(map[string]*nodeInst, len(f.Nodes)),
		idle: make(chan struct{})}
	// Validation (version 0) builds blocks that never run: they observe
	// nothing, so a flow only checked never gets series of its own.
	obs := r.opts.Observer
	if version == 0 {
		obs = NopObserver{}
	}
	d.runs = obs.Runs(f.ID)
	tracer := r.opts.Tracer
	if version == 0 {
		tracer = nil
	}
	if tracer != nil {
		d.tracer = tracer.Flow(f.ID, version)
	}
	// The error returns below set d to nil, so the cleanup keeps its own
	// pointer to close the blocks built so far.
	built := d
	defer func() {
		if err != nil {
			built.closeBlocks()
		}
	}()
	// Keys one block declares sensitive stay redacted in every step after
	// it, so every node's snapshots redact the flow's whole list.
	for _, s := range specs {
		for _, k := range s.Sensitive {
			if !slices.Contains(d.sensitive, k) {
				d.sensitive = append(d.sensitive, k)
			}
		}
	}
	// Every node is built, so a document's factory errors come all at once.
	var ferrs ValidationErrors
	for i := range f.Nodes {
		n := &f.Nodes[i]
		for _, fl := range specs[n.ID].Fields {
			if fl.Secret && (fl.Kind == KindString || fl.Kind == KindText) {
				if v := configs[n.ID].String(fl.Name); v != "" && !slices.Contains(d.secrets, v) {
					d.secrets = append(d.secrets, v)
				}
			}
		}
	}
	// Clipped: a run's MarkSecret appends to a copy, never into this array.
	d.secrets = slices.Clip(d.secrets)
	for i := range f.Nodes {
		n := &f.Nodes[i]
		if n.Disabled {
			continue // validated above, never built: see disabled.go
		}
		spec := specs[n.ID]
		inst := &nodeInst{node: n, spec: spec, out: map[string][]*nodeInst{}}
		inst.log = r.log.With("flow", f.ID, "node", n.ID)
		setup := &Setup{Ctx: ctx, FlowID: f.ID, NodeID: n.ID, Version: version, Config: configs[n.ID],
			Logger: inst.log, Limits: r.limits, Observer: obs, Services: r.opts.Services, Validating: version == 0, Tracer: tracer}
		inst.errs = obs.StepErrors(f.ID, n.ID, n.Type)
		b, err := callFactory(r.reg.types[n.Type].factory, setup)
		if err != nil {
			ferrs = appendValidation(ferrs, n.ID, err)
			continue
		}
		if b == nil {
			ferrs = append(ferrs, verr(n.ID, "", "block %s built nothing", n.Type))
			continue
		}
		inst.block = b
		if spec.Trigger {
			t, ok := b.(Trigger)
			if !ok {
				if c, isCloser := b.(Closer); isCloser {
					c.Close()
				}
				ferrs = append(ferrs, verr(n.ID, "", "trigger block %s does not implement Trigger", n.Type))
				continue
			}
			inst.trigger = t
			if c, ok := b.(Catcher); ok {
				switch inst.catch = c.CatchScope(); inst.catch {
				case CatchFlow:
					d.catchFlow = append(d.catchFlow, inst)
				case CatchGlobal:
					d.catchGlobal = append(d.catchGlobal, inst)
				default:
					ferrs = append(ferrs, verr(n.ID, "", "catch block %s has unknown scope %q", n.Type, inst.catch))
				}
			}
			inst.firePort = "out"
			if !slices.Contains(spec.Outputs, "out") && len(spec.Outputs) > 0 {
				inst.firePort = spec.Outputs[0]
			}
		}
		d.nodes[n.ID] = inst
		d.order = append(d.order, inst)
	}
	if len(ferrs) > 0 {
		return nil, ferrs
	}
	// Wires in canonical order, so a port's targets run in the same order
	// whether the document was hand-written or exported.
	ws := slices.Clone(f.Wires)
	slices.SortFunc(ws, func(a, b Wire) int { return cmpStrings(a.From, b.From, a.Port, b.Port, a.To, b.To) })
	for _, w := range ws {
		from, to := d.nodes[w.From], d.nodes[w.To]
		if from == nil || to == nil {
			continue // a wire from or to a disabled node carries nothing
		}
		from.out[w.Port] = append(from.out[w.Port], to)
	}
	for _, n := range d.order {
		if n.trigger != nil {
			n.fire = n.out[n.firePort]
		}
	}
	return d, nil
}

// asValidation returns err as ValidationErrors, naming node if err does not
// already name one.
func asValidation(node string, err error) error {
	var ves ValidationErrors
	if errors.As(err, &ves) {
		return err
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		return ValidationErrors{ve}
	}
	ve = verr(node, "", "%v", err)
	if errors.Is(err, ErrNoService) {
		ve.cause = errNoServiceCause // the host's wiring, not the document
	}
	return ValidationErrors{ve}
}

func callFactory(fac Factory, s *Setup) (b Block, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("building the block failed: %v", p)
		}
	}()
	return fac(s)
}

func (d *deployment) closeBlocks() {
	for _, n := range d.order {
		if c, ok := n.block.(Closer); ok {
			if err := c.Close(); err != nil {
				d.rt.log.Warn("closing block", "flow", d.flow.ID, "node", n.node.ID, "err", err)
			}
		}
	}
}

// Deploy validates and builds a flow version, starts its triggers and
// atomically replaces the running version of the same flow. Runs in flight
// finish on the version they started with. On error nothing changes.
// The runtime keeps its own copy of f.
func (r *Runtime) Deploy(ctx context.Context, f *Flow, version int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	// Checked under the lock: a Deploy racing Close must not start triggers
	// after Close has stopped them all.
	if r.closed.Load() {
		return ErrClosed
	}
	f = cloneFlow(f)
	d, err := r.build(ctx, f, version)
	if err != nil {
		return err
	}
	if d.vars, err = r.varsFor(ctx, f.ID); err != nil {
		d.closeBlocks()
		return err
	}
	d.ring = r.ringFor(f.ID)
	var started []*nodeInst
	for _, n := range d.order {
		if n.trigger == nil {
			continue
		}
		n.tctx = &TriggerContext{FlowID: f.ID, NodeID: n.node.ID, d: d, n: n, Logger: n.log}
		if err := safeStart(ctx, n); err != nil {
			for _, s := range started {
				safeStop(ctx, s, r.log)
			}
			// Runs a trigger fired while starting finish before the
			// blocks close.
			d.drain()
			d.closeBlocks()
			return asValidation(n.node.ID, err)
		}
		started = append(started, n)
	}
	r.fmu.Lock()
	old := r.flows[f.ID]
	r.flows[f.ID] = d
	r.catchGlobal.Add(int64(len(d.catchGlobal)))
	r.fmu.Unlock()
	if old != nil {
		old.retire(ctx)
	}
	return nil
}

// cloneFlow deep-copies a flow document, so a caller changing its Flow after
// Deploy cannot change the running version.
func cloneFlow(f *Flow) *Flow {
	c := *f
	c.Nodes = slices.Clone(f.Nodes)
	for i := range c.Nodes {
		if cfg := c.Nodes[i].Config; cfg != nil {
			m := make(map[string]json.RawMessage, len(cfg))
			for k, v := range cfg {
				m[k] = slices.Clone(v)
			}
			c.Nodes[i].Config = m
		}
		c.Nodes[i].LintIgnore = slices.Clone(c.Nodes[i].LintIgnore)
	}
	c.Wires = slices.Clone(f.Wires)
	return &c
}

func safeStart(ctx context.Context, n *nodeInst) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("starting trigger failed: %v", p)
		}
	}()
	return n.trigger.Start(ctx, n.tctx)
}

func safeStop(ctx context.Context, n *nodeInst, log *slog.Logger) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("trigger stop panicked", "node", n.node.ID, "panic", p)
		}
	}()
	if err := n.trigger.Stop(ctx); err != nil {
		log.Warn("stopping trigger", "node", n.node.ID, "err", err)
	}
}

// retire stops the version's triggers, then closes its blocks once its runs
// in flight are done.
func (d *deployment) retire(ctx context.Context) {
	d.rt.catchGlobal.Add(-int64(len(d.catchGlobal)))
	// From here on the version starts no run: a trigger firing while it
	// is being stopped gets ErrNotDeployed.
	d.retired.Store(true)
	for _, n := range d.order {
		if n.trigger != nil {
			safeStop(ctx, n, d.rt.log)
		}
	}
	d.rt.retiring.Add(1)
	go func() {
		defer d.rt.retiring.Done()
		d.drain()
		d.closeBlocks()
	}()
}

// Undeploy stops a flow. Runs in flight finish.
func (r *Runtime) Undeploy(ctx context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fmu.Lock()
	d := r.flows[id]
	delete(r.flows, id)
	r.fmu.Unlock()
	if d == nil {
		return fmt.Errorf("undeploy %q: %w", id, ErrNotDeployed)
	}
	d.retire(ctx)
	return nil
}

// Deployed returns the deployed version of a flow.
func (r *Runtime) Deployed(id string) (version int, ok bool) {
	r.fmu.RLock()
	defer r.fmu.RUnlock()
	if d := r.flows[id]; d != nil {
		return d.version, true
	}
	return 0, false
}

// DeployedFlow returns a copy of the deployed document of a flow.
func (r *Runtime) DeployedFlow(id string) (*Flow, int, bool) {
	r.fmu.RLock()
	defer r.fmu.RUnlock()
	if d := r.flows[id]; d != nil {
		return cloneFlow(d.flow), d.version, true
	}
	return nil, 0, false
}

// Close stops every trigger and waits, until ctx ends, for runs in flight
// (on deployed and on replaced versions), then closes every block. Close may
// be called again, e.g. with a longer ctx after a first one timed out.
func (r *Runtime) Close(ctx context.Context) error {
	if !r.closed.Load() {
		r.mu.Lock()
		if !r.closed.Swap(true) {
			r.fmu.Lock()
			flows := r.flows
			r.flows = map[string]*deployment{}
			r.fmu.Unlock()
			for _, d := range flows {
				d.retire(ctx)
			}
			go func() {
				r.retiring.Wait()
				close(r.closeDone)
			}()
		}
		r.mu.Unlock()
	}
	select {
	case <-r.closeDone:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close: runs still in flight: %w", ctx.Err())
	}
}

// Traces returns the recent traces of a flow held in memory, newest first.
func (r *Runtime) Traces(flow string) []*Trace {
	r.rmu.Lock()
	ring := r.rings[flow]
	r.rmu.Unlock()
	if ring == nil {
		return nil
	}
	return ring.list()
}

func (r *Runtime) ringFor(flow string) *traceRing {
	r.rmu.Lock()
	defer r.rmu.Unlock()
	ring := r.rings[flow]
	if ring == nil {
		ring = newTraceRing(r.opts.TraceRing)
		ring.snaps.rate = int64(r.opts.SnapshotsPerSecond)
		r.rings[flow] = ring
	}
	return ring
}

// Forget drops a deleted flow's in-memory traces and variables.
func (r *Runtime) Forget(flow string) {
	r.rmu.Lock()
	delete(r.rings, flow)
	delete(r.vars, flow)
	r.rmu.Unlock()
}

// Run starts a run of a deployed flow from one of its trigger nodes, as if
// it had fired (the manual trigger). nodeID "" picks the flow's only
// trigger, or its core.manual trigger when it has several.
func (r *Runtime) Run(ctx context.Context, flowID, nodeID string, msg Msg) (*Trace, error) {
	// A redeploy can retire the version between the lookup and the start
	// of the run; the run then goes to the new version.
	for range 3 {
		tr, err := r.runOnce(ctx, flowID, nodeID, msg)
		if !errors.Is(err, errRetired) {
			return tr, err
		}
	}
	return nil, fmt.Errorf("run %q: %w (redeployed repeatedly)", flowID, ErrNotDeployed)
}

// errRetired is returned by deployment.run on a replaced version; it
// wraps ErrNotDeployed.
var errRetired = fmt.Errorf("%w (version was replaced)", ErrNotDeployed)

func (r *Runtime) runOnce(ctx context.Context, flowID, nodeID string, msg Msg) (*Trace, error) {
	r.fmu.RLock()
	d := r.flows[flowID]
	r.fmu.RUnlock()
	if d == nil {
		if r.closed.Load() {
			return nil, fmt.Errorf("run %q: %w", flowID, ErrClosed)
		}
		return nil, fmt.Errorf("run %q: %w", flowID, ErrNotDeployed)
	}
	var start *nodeInst
	if nodeID != "" {
		start = d.nodes[nodeID]
		if start == nil || start.trigger == nil {
			return nil, fmt.Errorf("run %q: node %q is not a trigger of this flow", flowID, nodeID)
		}
	} else {
		var triggers []*nodeInst
		for _, n := range d.order {
			if n.trigger != nil && n.catch == "" { // catch triggers start only when named
				triggers = append(triggers, n)
				if n.node.Type == "core.manual" {
					start = n
				}
			}
		}
		if start == nil {
			if len(triggers) != 1 {
				return nil, fmt.Errorf("run %q: %w (found %d triggers; name one)", flowID, ErrNoTrigger, len(triggers))
			}
			start = triggers[0]
		}
	}
	return d.run(ctx, start, msg, true, -1, start.catch != "", nil)
}

// TriggerContext is how a started trigger fires runs of its flow version.
type TriggerContext struct {
	FlowID string
	NodeID string
	Logger *slog.Logger
	d      *deployment
	n      *nodeInst
}

// Fire runs the flow from this trigger with msg, on the caller's goroutine,
// and returns its trace. The error is the run's failure, if it failed.
func (t *TriggerContext) Fire(ctx context.Context, msg Msg) (*Trace, error) {
	return t.d.run(ctx, t.n, msg, false, -1, t.n.catch != "", nil)
}

// FireSized is Fire for a trigger that knows an upper bound of its
// message's size, in the units of the engine's estimate (a string counts
// its length plus 2, a map key its length plus 4, a map or list 2 plus
// its members, a number or bool 8). The engine then checks that bound
// against Limits.MaxMessageBytes instead of walking the message; a bound
// below the real size lets a too-big message through this first check
// only (blocks without Spec.Bounded still re-measure it).
func (t *TriggerContext) FireSized(ctx context.Context, msg Msg, size int) (*Trace, error) {
	return t.d.run(ctx, t.n, msg, false, max(size, 0), t.n.catch != "", nil)
}

// Version is the flow version this trigger belongs to.
func (t *TriggerContext) Version() int { return t.d.version }

// Now reads the runtime's clock (Options.Now), for triggers that stamp
// their messages: a frozen clock then reaches them too.
func (t *TriggerContext) Now() time.Time { return t.d.rt.opts.Now() }

// Sleep waits d with the runtime's Options.Sleep, or until ctx ends, for
// triggers that wait between runs (core.startup's retries): a test's
// Sleep then moves its clock instead of waiting.
func (t *TriggerContext) Sleep(ctx context.Context, d time.Duration) error {
	return t.d.rt.opts.Sleep(ctx, d)
}

// Exec is the state of one run that blocks see.
type Exec struct {
	RunID   string
	FlowID  string
	Version int
	NodeID  string // the node being executed
	Started time.Time
	Logger  *slog.Logger // the node's logger (flow and node attributes); add RunID as needed
	env     Env
	d       *deployment
	vars    *Vars    // a zero Exec's own variables (block unit tests)
	secrets []string // values marked secret in this run; shares d.secrets until MarkSecret
	// Sub-flow calls (call.go): the frame this run answers to, the
	// steps left to this run, the steps a call used.
	call      *callFrame
	stepsLeft int
	callSteps int
	// grew is what the running step said it added to the message
	// (Grew); -1 when it said nothing.
	grew int
	// lazy: the running step's message may hold Lazy values.
	lazy bool
	// answer is what Answered reported (Trace.Answer).
	answer int32
	// bound is one more than an upper bound of the running step's
	// message's estimated size when the run knows one; 0 (a zero Exec,
	// or unknown) says nothing.
	bound   int
	stepMsg Msg // the message the running step received
}

// Answered records the status this run answered its trigger with (a
// block that answers the trigger's caller says so: http.respond reports
// the HTTP status it wrote). It shows in the run's trace (Trace.Answer);
// a sub-flow's answer is also its caller's, so a request answered by a
// called flow shows its status on the caller's run too. The first answer
// stands: a trigger is answered once.
func (x *Exec) Answered(status int) {
	if x != nil && x.answer == 0 && status > 0 && status <= math.MaxInt32 {
		x.answer = int32(status)
	}
}

// MessageBound returns an upper bound of the estimated size (MessageSize)
// of the message the running step received, or -1 when the run does not
// know one (a run with snapshots off knows it after most steps without
// walking the message).
func (x *Exec) MessageBound() int { return x.bound - 1 }

// Grew tells the engine that the running step added at most n to its
// message's estimated size, in MessageSize's units (a string counts its
// length plus 2, a map key its length plus 4, a map or list 2 plus its
// members, a number or bool 8): every value it wrote, with its key and
// the maps it created on the way; a value replaced counts in full. A run
// without snapshots then checks the message against
// Limits.MaxMessageBytes by adding n to the size known before the step,
// instead of walking the whole message. An overestimate only makes the
// engine walk sooner; an underestimate lets a message grow past the
// limit, so a block that cannot bound what it wrote does not call Grew.
// Calls add up.
func (x *Exec) Grew(n int) {
	x.grew = max(x.grew, 0) + max(n, 0)
}

// MarkSecret marks a value a block produced or received as secret for the
// rest of the run: every trace snapshot of the run (the steps before this
// one too), Exec.Redact and Exec.RedactText show it as [redacted] wherever
// it sits, whatever field it was copied to; a value of 8 bytes or more is
// also cut out of longer strings. Use it for values whose shape says
// nothing (a decrypted payload, a generated secret, a password); tokens,
// keys and credentials with a known shape are redacted without it.
func (x *Exec) MarkSecret(v string) {
	if v == "" || slices.Contains(x.secrets, v) {
		return
	}
	x.secrets = append(x.secrets, v)
}

// Redact is engine.Redact that also hides the values the run marked secret.
func (x *Exec) Redact(v any) any {
	s := &snapper{budget: snapBudget, secrets: x.secrets}
	return s.snapshot(v, 0)
}

// RedactText is engine.RedactText that also cuts the values the run marked
// secret.
func (x *Exec) RedactText(text string) string {
	out, _ := redactSecrets(text, x.secrets)
	return out
}

// Now is the run's start time: one clock reading per run, so every block of
// a run agrees on "now".
func (x *Exec) Now() time.Time { return x.Started }

// Vars returns the flow's persistent variables. A zero Exec, as block unit
// tests build, gets in-memory variables of its own.
func (x *Exec) Vars() *Vars {
	if x.d != nil && x.d.vars != nil {
		return x.d.vars
	}
	if x.vars == nil {
		m := map[string]any{}
		x.vars = &Vars{}
		x.vars.cur.Store(&m)
	}
	return x.vars
}

// Env returns the standard expression environment for msg. Its `flow` is
// the variables as they are now, so a variable set earlier in the run is
// seen by the expressions after it.
func (x *Exec) Env(msg Msg) *Env {
	if x.lazy {
		// The VM must see built values (see Lazy). x.lazy stays set: msg
		// may be another message than the step's.
		resolveLazy(msg)
	}
	x.env.Msg = msg
	x.env.Flow = x.Vars().snapshot()
	return &x.env
}

// runState is a run's working state.
type runState struct {
	x  Exec
	rc runCtx
	// sn takes the run's message snapshots: made when the first is
	// taken (a full run, a failed step), as a light run only measures
	// sizes (msgSize), and without it the state fits a smaller size
	// class.
	sn    *snapper
	queue [2]queued // a chain needs one; fan-out grows a copy
}

// snapper returns the run's snapper, making it on first use.
func (rs *runState) snapper(d *deployment) *snapper {
	if rs.sn == nil {
		rs.sn = &snapper{extra: d.sensitive, limit: d.rt.limits.MaxMessageBytes, secrets: rs.x.secrets}
	}
	return rs.sn
}

// step is the snapper's take for a run that records snapshots (full);
// otherwise it only estimates the message's size, without allocating.
func (rs *runState) step(d *deployment, msg Msg, prev any, pn *snapNode, full bool) (any, *snapNode, int) {
	if !full {
		return nil, nil, msgSize(msg, d.rt.limits.MaxMessageBytes)
	}
	return rs.snapper(d).take(msg, prev, pn)
}

type queued struct {
	n    *nodeInst
	msg  Msg
	snap any       // the trace snapshot of msg when it was sent, shared where unchanged
	node *snapNode // its private mirror
	size int       // an upper bound of msg's estimated size; -1: unknown
	nsec int32     // how many values were marked secret when snap was taken
	lazy bool      // msg may hold Lazy values (see Lazy)
}

// run carries msg from start through the flow. snapAll takes message
// snapshots whatever the flow's snapshot rate; sizeHint >= 0 is the
// trigger's bound on msg's size (FireSized).
//
// A run that fails goes to the catch triggers (catch.go), unless it is a
// catch run itself (caught).
//
// frame is set for a sub-flow run started by Exec.Call (call.go): the run
// then shares its caller's step budget and returns through core.output.
func (d *deployment) run(ctx context.Context, start *nodeInst, msg Msg, snapAll bool, sizeHint int, caught bool, frame *callFrame) (tr *Trace, err error) {
	if !d.enter() {
		return nil, fmt.Errorf("run %q version %d: %w", d.flow.ID, d.version, errRetired)
	}
	defer d.leave()
	if msg == nil {
		msg = Msg{}
	}
	rt := d.rt
	lim := rt.limits
	t0 := rt.clock.now() // monotonic, whatever clock Options.Now is
	started := t0
	if !rt.realClock {
		started = rt.opts.Now()
	}
	// Two allocations: the trace (with its id's text), which outlives
	// the run (ring, trace writer, caller), and the working state, which
	// does not. One for both would keep the run's context (for http.in:
	// the request and its response writer) alive as long as the trace.
	tr = &Trace{}
	rs := &runState{}
	// The record is zero: fields are set one by one, as a composite
	// literal assigned through a pointer is a copy of the whole struct,
	// with a write barrier over all of it while the collector marks.
	x := &rs.x
	x.RunID, x.FlowID, x.Version, x.Started, x.d, x.secrets = tr.newRunID(started), d.flow.ID, d.version, started, d, d.secrets
	steps, maxSteps := 0, lim.MaxSteps
	if frame != nil {
		// Values the run that led here marked secret stay secret here, and
		// a call hands back what this run marks (call.go).
		for _, v := range frame.secrets {
			x.MarkSecret(v)
		}
		if !frame.seed {
			x.call, maxSteps = frame, frame.budget
			defer func() { frame.used, frame.secrets, frame.answer = steps, x.secrets, x.answer }()
		}
	}
	x.env.Env, x.env.Now = rt.opts.Env, started
	full := snapAll || d.ring.snaps.allow(t0)
	tr.ID, tr.Flow, tr.Version, tr.Trigger = x.RunID, d.flow.ID, d.version, start.node.ID
	tr.Started, tr.Status, tr.Light = started, StatusOK, !full
	tr.Steps = tr.stepBuf[:0]
	ctx, span := d.startRunSpan(ctx, tr, start)
	rc := &rs.rc
	rc.Context, rc.deadline = ctx, t0.Add(lim.Deadline)
	defer rc.stop()
	outer := ctx
	ctx = rc
	cur := msg // the message of the step running, for catch runs
	// at is the time since t0 at the last clock reading: the end of the
	// step that ran last, which is the run's end when it ran to its end
	// (the loop reads the clock once per step). Before the first step
	// ran it is 0, and the run's end is read here.
	var at time.Duration
	defer func() {
		if at == 0 {
			at = time.Since(t0)
		}
		tr.Duration, tr.Answer = int64(at), x.answer
		if err != nil {
			tr.Status, tr.Error = StatusError, err.Error()
		}
		d.runs.Finished(err == nil, time.Duration(tr.Duration))
		if len(x.secrets) > len(d.secrets) {
			redactEarlier(tr, x.secrets)
		}
		if span != nil {
			span.End(x.RedactText(tr.Error))
		}
		d.ring.add(tr)
		if rt.opts.Traces != nil {
			rt.saveTrace(tr)
		}
		if err != nil && !caught && (d.catchFlow != nil || rt.catchGlobal.Load() > 0) {
			rt.dispatchCatch(outer, d, tr, cur, err, x.secrets)
		}
	}()

	var first any
	var firstNode *snapNode
	size := sizeHint
	if full || sizeHint < 0 {
		first, firstNode, size = rs.step(d, msg, nil, nil, full)
	}
	if size > lim.MaxMessageBytes {
		tr.ErrorNode = start.node.ID
		return tr, fmt.Errorf("node %q: %w (more than %d bytes)", start.node.ID, ErrMessageTooBig, lim.MaxMessageBytes)
	}
	tr.addStep(&Step{Node: start.node.ID, Type: start.node.Type, Port: start.firePort, Msg: first})
	if span != nil {
		triggerStepSpan(ctx, span, start)
	}
	queue := enqueue(rs.queue[:0], start.fire, msg, first, firstNode, len(x.secrets), size, hasLazy(msg))
	// Step times are offsets from t0 on the monotonic clock, which is
	// cheaper to read than the wall clock time.Now also reads. The first
	// step starts at t0: its duration includes the trigger's snapshot
	// and the queue's set-up above, a clock reading fewer per run.
	for head := 0; head < len(queue); {
		q := queue[head]
		cur = q.msg
		// queue[head] keeps its message until overwritten or the run
		// ends: clearing it cost a write barrier per step.
		if head++; head == len(queue) {
			// Drained: reuse the backing array (a chain never grows it).
			queue, head = queue[:0], 0
		}
		steps++
		if steps > maxSteps {
			tr.ErrorNode = q.n.node.ID
			return tr, fmt.Errorf("%w (%d node executions); a wire loop?", ErrStepLimit, lim.MaxSteps)
		}
		if cerr := rc.errAt(t0.Add(at)); cerr != nil {
			tr.ErrorNode = q.n.node.ID
			if errors.Is(cerr, context.DeadlineExceeded) {
				return tr, fmt.Errorf("%w (%s) before node %q", ErrDeadline, lim.Deadline, q.n.node.ID)
			}
			return tr, fmt.Errorf("run cancelled before node %q: %w", q.n.node.ID, cerr)
		}
		x.NodeID, x.Logger = q.n.node.ID, q.n.log
		began := at
		x.stepsLeft = maxSteps - steps
		x.grew = -1
		x.bound, x.stepMsg = max(q.size+1, 0), q.msg
		if q.lazy && !q.n.spec.LazyMessage {
			resolveLazy(q.msg)
			q.lazy = false
		}
		x.lazy = q.lazy
		stepCtx := ctx
		var ss StepSpan
		if span != nil {
			stepCtx, ss = span.StartStep(ctx, q.n.node.ID, q.n.node.Type)
		}
		port, perr := q.n.process(stepCtx, x, q.msg)
		if x.callSteps > 0 { // a sub-flow call's steps count against this run's budget
			steps += x.callSteps
			x.callSteps = 0
		}
		at = time.Since(t0) // this step's end, the next one's start
		if int(q.nsec) != len(x.secrets) {
			// A value was marked secret since q.snap was taken: parts
			// of it shown in clear may now need redacting, so walk the
			// message afresh.
			q.snap, q.node = nil, nil
			if rs.sn != nil {
				rs.sn.secrets = x.secrets
			}
		}
		step := Step{Node: q.n.node.ID, Type: q.n.node.Type, Port: port, Duration: int64(at - began)}
		if perr != nil && errors.Is(rc.errAt(t0.Add(at)), context.DeadlineExceeded) {
			perr = fmt.Errorf("%w (%s) in node %q: %v", ErrDeadline, lim.Deadline, q.n.node.ID, perr)
		}
		if ss != nil {
			endStepSpan(ss, x, q.n, port, perr)
		}
		if perr != nil {
			q.n.errs.Inc()
			step.Error = perr.Error()
			targets := q.n.out[ErrorPort]
			if len(targets) == 0 || errors.Is(perr, ErrDeadline) {
				// The failing step keeps its message, light trace or not.
				step.Port = ""
				step.Msg, _, _ = rs.snapper(d).take(q.msg, q.snap, q.node)
				tr.addStep(&step)
				tr.ErrorNode = q.n.node.ID
				return tr, fmt.Errorf("node %q: %w", q.n.node.ID, perr)
			}
			step.Port = ErrorPort
			q.msg["error"] = map[string]any{"message": perr.Error(), "node": q.n.node.ID}
			port = ErrorPort
		}
		// One walk of the message both snapshots it and checks its size;
		// without a snapshot, a Bounded block's output needs no walk, and
		// neither does the output of a block that told what it added
		// (Exec.Grew) to a message of known size. A step that failed keeps
		// its message even in a light run.
		keep := full || perr != nil
		var snap any
		var node *snapNode
		size := -1 // unknown after a Bounded block: it added an unknown, bounded amount
		switch {
		case !keep && x.grew >= 0 && q.size >= 0 && q.size+x.grew <= lim.MaxMessageBytes:
			size = q.size + x.grew
		case keep || !q.n.spec.Bounded:
			snap, node, size = rs.step(d, q.msg, q.snap, q.node, keep)
		}
		if size > lim.MaxMessageBytes {
			step.Error = ErrMessageTooBig.Error()
			step.Port = ""
			tr.addStep(&step)
			tr.ErrorNode = q.n.node.ID
			return tr, fmt.Errorf("node %q: %w (more than %d bytes)", q.n.node.ID, ErrMessageTooBig, lim.MaxMessageBytes)
		}
		step.Msg = snap
		tr.addStep(&step)
		if port != "" {
			// x.lazy: the message may hold Lazy values, the trigger's or
			// one this block put (Exec.PutLazy).
			queue = enqueue(queue, q.n.out[port], q.msg, snap, node, len(x.secrets), size, x.lazy)
		}
	}
	return tr, nil
}

// addStep appends a step to the trace field by field: appending the
// struct copies all of it, with a write barrier over the whole of it
// while the collector marks.
func (t *Trace) addStep(s *Step) {
	t.Steps = append(t.Steps, Step{})
	e := &t.Steps[len(t.Steps)-1]
	e.Node, e.Type, e.Port, e.Duration, e.Error, e.Msg = s.Node, s.Type, s.Port, s.Duration, s.Error, s.Msg
}

// saveTrace hands a trace to the sink; a panicking sink costs the trace,
// not the caller's goroutine.
func (r *Runtime) saveTrace(tr *Trace) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("trace sink panicked", "flow", tr.Flow, "run", tr.ID, "panic", fmt.Sprint(p))
		}
	}()
	r.opts.Traces.SaveTrace(tr)
}

// enqueue gives every target but the last its own copy of msg. A copy
// holds built values (CopyValue builds Lazy ones); the last target gets
// msg itself, lazy or not.
func enqueue(queue []queued, targets []*nodeInst, msg Msg, snap any, node *snapNode, nsec, size int, lazy bool) []queued {
	for i, t := range targets {
		m, l := msg, lazy
		if i < len(targets)-1 {
			m, l = CopyValue(msg).(Msg), false
		}
		// Field by field: appending a composite literal copies the
		// whole struct, with a write barrier over all of it while the
		// collector marks.
		queue = append(queue, queued{})
		e := &queue[len(queue)-1]
		e.n, e.msg, e.snap, e.node, e.nsec, e.size, e.lazy = t, m, snap, node, int32(nsec), size, l
	}
	return queue
}

// redactEarlier hides, in the steps of a finished run, the values its
// blocks marked secret after those steps' snapshots were taken (a block
// marking a value it received). Snapshots are shared between steps and
// never changed: changed parts are copied.
// Error texts are cleaned too: a block's error may quote a value.
func redactEarlier(tr *Trace, marked []string) {
	if isMarked(tr.Error, marked) {
		tr.Error, _ = redactSecrets(tr.Error, marked)
	}
	for i := range tr.Steps {
		st := &tr.Steps[i]
		if isMarked(st.Error, marked) {
			st.Error, _ = redactSecrets(st.Error, marked)
		}
		if st.Msg == nil {
			continue
		}
		if r, changed := redactMarked(st.Msg, marked, 0); changed {
			st.Msg = r
		}
	}
}

// take returns the trace snapshot of one step's message, sharing what
// still matches prev (the snapshot of the message the node received), and
// the message's estimated size. Past s.limit the walk stops: the snapshot
// is then nil and the size just over the limit.
func (s *snapper) take(msg Msg, prev any, pn *snapNode) (any, *snapNode, int) {
	s.budget, s.size = snapBudget, 0
	out, node, _ := s.snap(msg, prev, pn, 0)
	if s.over() {
		return nil, nil, s.size
	}
	return out, node, s.size
}

// process runs a block, turning a panic into a run error.
func (n *nodeInst) process(ctx context.Context, x *Exec, msg Msg) (port string, err error) {
	defer func() {
		if p := recover(); p != nil {
			x.d.rt.log.Error("block panicked", "flow", x.FlowID, "node", n.node.ID, "run", x.RunID,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			port, err = "", fmt.Errorf("%w (run %s)", ErrBlockPanic, x.RunID)
		}
	}()
	if n.trigger != nil {
		return "out", nil
	}
	return n.block.Process(ctx, x, msg)
}

var runSeq atomic.Uint64

// runIDLen is the length of a run id's text.
const runIDLen = 24

// newRunID returns an id that sorts by start time: 12 hex digits of
// milliseconds, 4 of a process counter, 8 random. Run ids name runs in
// traces and error answers; they grant nothing, so the random part comes
// from the runtime's fast generator, not crypto/rand.
func newRunID(t time.Time) string {
	var out [runIDLen]byte
	putRunID(&out, t)
	return string(out[:])
}

// newRunID is the package's newRunID with the text in the trace instead
// of an allocation of its own: the bytes are written once, here, and
// never again, so the string may share them. The string keeps the trace
// alive as long as it is held.
func (t *Trace) newRunID(at time.Time) string {
	putRunID(&t.idBuf, at)
	return unsafe.String(&t.idBuf[0], runIDLen)
}

func putRunID(out *[runIDLen]byte, t time.Time) {
	var b [runIDLen / 2]byte
	ms := uint64(t.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	seq := runSeq.Add(1)
	b[6], b[7] = byte(seq>>8), byte(seq)
	binary.LittleEndian.PutUint32(b[8:], mrand.Uint32())
	hex.Encode(out[:], b[:])
}

// Vars are a flow's persistent variables, shared by all its versions.
// Readers get an immutable snapshot; writers copy on write and persist
// through the VarStore before the snapshot changes.
type Vars struct {
	flow  string
	store VarStore
	mu    sync.Mutex
	cur   atomic.Pointer[map[string]any]
}

// varsFor returns the flow's variables, loading them on first use. A load
// failure fails the deploy rather than running the flow with its variables
// silently empty (and later overwriting them).
func (r *Runtime) varsFor(ctx context.Context, flow string) (*Vars, error) {
	r.rmu.Lock()
	v := r.vars[flow]
	r.rmu.Unlock()
	if v != nil {
		return v, nil
	}
	m := map[string]any{}
	if r.opts.Vars != nil {
		loaded, err := r.opts.Vars.LoadVars(ctx, flow)
		if err != nil {
			return nil, fmt.Errorf("load variables of flow %q: %w", flow, err)
		}
		for k, e := range loaded {
			m[k] = e
		}
	}
	v = &Vars{flow: flow, store: r.opts.Vars}
	v.cur.Store(&m)
	r.rmu.Lock()
	defer r.rmu.Unlock()
	if cur := r.vars[flow]; cur != nil { // Forget and Deploy never race, but be sure
		return cur, nil
	}
	r.vars[flow] = v
	return v, nil
}

func (v *Vars) snapshot() map[string]any { return *v.cur.Load() }

// VarLoader is implemented by a VarStore that can read one variable, so
// ReloadVar costs one read instead of a reload of the whole flow's set.
type VarLoader interface {
	// LoadVar returns one variable; ok is false when it does not exist.
	LoadVar(ctx context.Context, flow, key string) (val any, ok bool, err error)
}

// ReloadVar re-reads one variable of a flow from the VarStore, for a write
// made elsewhere (another node sharing the store). It does nothing when the
// flow's variables are not loaded in this runtime: the first deploy loads
// them fresh. It holds the variables' write lock, so a concurrent Set and a
// reload of the same key cannot leave an older value in the snapshot.
func (r *Runtime) ReloadVar(ctx context.Context, flow, key string) error {
	r.rmu.Lock()
	v := r.vars[flow]
	r.rmu.Unlock()
	if v == nil || v.store == nil {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	var (
		val any
		ok  bool
	)
	if l, isLoader := v.store.(VarLoader); isLoader {
		var err error
		if val, ok, err = l.LoadVar(ctx, flow, key); err != nil {
			return fmt.Errorf("reload flow variable %q: %w", key, err)
		}
	} else {
		all, err := v.store.LoadVars(ctx, flow)
		if err != nil {
			return fmt.Errorf("reload flow variable %q: %w", key, err)
		}
		val, ok = all[key]
	}
	old := v.snapshot()
	if cur, had := old[key]; had == ok && (!ok || reflect.DeepEqual(cur, val)) {
		return nil // this runtime's own write, seen again through the feed
	}
	m := make(map[string]any, len(old)+1)
	for k, e := range old {
		m[k] = e
	}
	if ok {
		m[key] = val
	} else {
		delete(m, key)
	}
	v.cur.Store(&m)
	return nil
}

// Get returns a variable.
func (v *Vars) Get(key string) (any, bool) {
	val, ok := v.snapshot()[key]
	return val, ok
}

// Set writes a variable (nil deletes it), persisting it first.
func (v *Vars) Set(ctx context.Context, key string, val any) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.store != nil {
		if err := v.store.SaveVar(ctx, v.flow, key, val); err != nil {
			return fmt.Errorf("save flow variable %q: %w", key, err)
		}
	}
	old := v.snapshot()
	m := make(map[string]any, len(old)+1)
	for k, e := range old {
		m[k] = e
	}
	if val == nil {
		delete(m, key)
	} else {
		m[key] = val
	}
	v.cur.Store(&m)
	return nil
}
