package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/store"
)

// The reconcile loop. The store holds the desired state (which version of
// which flow is deployed); every node, the one that took a deploy call
// included, converges its runtime to it from the feed:
//
//	Deploy (any node) --> validate --> store.Deploy (IfGen) --> Rev --> wait until this node applied Rev
//	                                        |
//	                                        v
//	feed --(KindDeploy)--> reconcile: DesiredState vs what runs --> undeploy, deploy --> applied = Rev
//	     --(kv, secret)--> hooks: keyset views, admin token, flow variables, schedule records
//
// A node that falls behind the feed (ErrCompacted) or loses it lists
// everything again: reconcile plus every hook's Resync. Deploy errors that
// only show when a trigger starts (a route another flow holds) come back
// from this node's apply; the deploy then puts the previous version back,
// as a single process always did.

// applyWait bounds how long a deploy waits for this node to apply it.
const applyWait = 10 * time.Second

// quietFeed is how long a node behind its store's newest revision may go
// without a word from the feed and still count as following it. A cluster
// store sends progress notices more often (etcd: every second).
const quietFeed = 5 * time.Second

// appliedEvery bounds how often the node registry hears of applied
// revisions that changed no deployment (KV and secret traffic).
const appliedEvery = time.Second

// Hook keeps a process-local cache in step with the store: Changed is
// called for every change Match selects, in commit order, on the feed
// goroutine (it must not block for long); Resync after the node listed the
// store again (start, or after falling behind the feed).
type Hook struct {
	Name    string // for logs
	Match   store.Filter
	Changed func(ctx context.Context, c store.Change)
	Resync  func(ctx context.Context)
}

// applyResult is the outcome of this node's last attempt to run a version.
type applyResult struct {
	version int
	err     error
}

// follower is the state of the reconcile loop.
type follower struct {
	mu       sync.Mutex
	started  bool
	cancel   context.CancelFunc
	done     chan struct{}
	applied  int64         // feed revision this node has converged to
	gen      int64         // deploy generation this node has converged to
	listed   chan struct{} // closed once the first list and watch are done
	moved    chan struct{} // closed when applied or gen moves, or the loop ends
	watching bool          // the watch is open
	reached  bool          // this pass of the loop has the store's revision: it lists or follows
	lastSeen time.Time     // when the feed last delivered anything
	results  map[string]applyResult
	running  map[string]int // flows this loop deployed, by version
	reported time.Time      // last SetApplied
}

// OnChange adds a hook. Call it before Start.
func (a *App) OnChange(h Hook) { a.hooks = append(a.hooks, h) }

// NodeID is this node's id in the node registry.
func (a *App) NodeID() string { return a.node }

// NewNodeID returns a random node id, "node-<12 hex digits>".
func NewNodeID() string { return newNodeID() }

func newNodeID() string {
	var b [6]byte
	rand.Read(b[:])
	return "node-" + hex.EncodeToString(b[:])
}

// Applied is the store revision this node has converged to: every change
// up to it is running here and in every cache that follows the feed.
func (a *App) Applied() int64 {
	a.fol.mu.Lock()
	defer a.fol.mu.Unlock()
	return a.fol.applied
}

// following reports whether the reconcile loop runs: Start was called.
// Without it (the CLI working on a stopped server's store) a deploy is
// stored and tried in this process's runtime alone, as it always was.
func (a *App) following() bool {
	a.fol.mu.Lock()
	defer a.fol.mu.Unlock()
	return a.fol.started
}

// startFollowing registers the node and starts the loop. It returns once
// the first pass (every deployed flow, every cache) is done. applyWait
// bounds how long the store may go unanswered, not the pass: once the
// store gave its revision, building every flow (keys generated, on a
// loaded machine) takes what it takes, until ctx ends.
func (a *App) startFollowing(ctx context.Context) error {
	a.fol.mu.Lock()
	if a.fol.started {
		a.fol.mu.Unlock()
		return nil
	}
	if err := a.st.Register(ctx, store.NodeInfo{ID: a.node, Addr: a.cfg.NodeAddr, Version: a.cfg.Version, Blocks: a.blocksHash()}); err != nil {
		a.fol.mu.Unlock()
		return fmt.Errorf("app: register node: %w", err)
	}
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.fol.started, a.fol.cancel, a.fol.done = true, cancel, make(chan struct{})
	a.fol.moved, a.fol.listed = make(chan struct{}), make(chan struct{})
	a.fol.results, a.fol.running = map[string]applyResult{}, map[string]int{}
	listed, done := a.fol.listed, a.fol.done
	a.fol.mu.Unlock()
	go a.follow(lctx)
	t := time.NewTimer(applyWait)
	defer t.Stop()
	for {
		select {
		case <-listed:
			a.startPublishing()
			return nil
		case <-done:
			return fmt.Errorf("app: node %s: the store's feed ended at start: %w", a.node, store.ErrClosed)
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			a.fol.mu.Lock()
			reached := a.fol.reached
			a.fol.mu.Unlock()
			if !reached {
				return fmt.Errorf("app: node %s could not list the store within %s: %w", a.node, applyWait, store.ErrUnavailable)
			}
			// The store answered and the pass is applying it: keep
			// waiting, and give up only if the store stops answering.
			t.Reset(applyWait)
		}
	}
}

// stopFollowing ends the loop and waits for it.
func (a *App) stopFollowing() {
	a.fol.mu.Lock()
	cancel, done := a.fol.cancel, a.fol.done
	a.fol.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// follow runs the loop until ctx ends or the store closes.
func (a *App) follow(ctx context.Context) {
	defer func() {
		a.fol.mu.Lock()
		a.fol.watching = false
		close(a.fol.done)
		a.fol.mu.Unlock()
		a.bump(0)
	}()
	backoff := 50 * time.Millisecond
	for {
		err := a.followOnce(ctx)
		a.fol.mu.Lock()
		a.fol.watching, a.fol.reached = false, false
		a.fol.mu.Unlock()
		if ctx.Err() != nil || errors.Is(err, store.ErrClosed) {
			return
		}
		if errors.Is(err, store.ErrCompacted) {
			a.log.Info("fell behind the store's feed: listing again", "node", a.node)
			backoff = 50 * time.Millisecond
			continue
		}
		a.log.Warn("store feed lost: listing again", "node", a.node, "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// followOnce lists the store, then applies its feed until the watch ends.
func (a *App) followOnce(ctx context.Context) error {
	rev, err := a.st.Rev(ctx)
	if err != nil {
		return err
	}
	a.fol.mu.Lock()
	a.fol.reached = true
	a.fol.mu.Unlock()
	gen := a.reconcile(ctx, true)
	for _, h := range a.hooks {
		if h.Resync != nil {
			h.Resync(ctx)
		}
	}
	ch, err := a.st.Watch(ctx, rev, store.Filter{})
	if err != nil {
		return err
	}
	a.fol.mu.Lock()
	a.fol.watching = true
	if a.fol.listed != nil {
		select {
		case <-a.fol.listed:
		default:
			close(a.fol.listed)
		}
	}
	a.fol.mu.Unlock()
	a.setGen(gen)
	a.bump(rev)
	for ev := range ch {
		if ev.Err != nil {
			return ev.Err
		}
		deploy := false
		var forget []string
		for _, c := range ev.Changes {
			switch {
			case c.Kind == store.KindDeploy:
				deploy = true
			case c.Kind == store.KindFlow && c.Deleted:
				forget = append(forget, c.Group)
			}
			for _, h := range a.hooks {
				if h.Changed != nil && h.Match.Match(c) {
					h.Changed(ctx, c)
				}
			}
		}
		gen := int64(-1)
		if deploy {
			gen = a.reconcile(ctx, false)
		}
		for _, id := range forget {
			a.rt.Forget(id)
			a.forgetDeployed(id)
			if any(a.runs) != any(a.st) {
				// Each node keeps its own traces: the deleting node's
				// DeleteFlow cannot reach this node's.
				if err := a.runs.DeleteRuns(ctx, id); err != nil {
					a.log.Warn("delete flow: its run traces stay on this node", "flow", id, "node", a.node, "err", err)
				}
			}
		}
		a.setGen(gen)
		a.bump(ev.Rev)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return fmt.Errorf("%w: the feed closed", store.ErrUnavailable)
}

// bump records that this node converged to rev (0: only wake waiters) and
// tells the node registry now and then.
func (a *App) bump(rev int64) {
	a.fol.mu.Lock()
	report := false
	var problems map[string]string
	gen := a.fol.gen
	if rev > 0 {
		a.fol.lastSeen = time.Now() // progress notices count: the feed is alive
	}
	if rev > a.fol.applied {
		a.fol.applied = rev
		if time.Since(a.fol.reported) >= appliedEvery {
			report, a.fol.reported = true, time.Now()
			problems = a.problemsLocked()
		}
	}
	close(a.fol.moved)
	a.fol.moved = make(chan struct{})
	a.fol.mu.Unlock()
	if report {
		a.report(rev, gen, problems)
	}
}

// report writes this node's registry entry: the revision and deploy
// generation it converged to and the flows it could not run. Deploy
// answers (rollout.go) read it from every node.
func (a *App) report(rev, gen int64, problems map[string]string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.st.SetApplied(ctx, rev, gen, problems); err != nil && !errors.Is(err, store.ErrClosed) {
		a.log.Warn("reporting the applied revision", "node", a.node, "err", err)
	}
}

func (a *App) problemsLocked() map[string]string {
	var out map[string]string
	for id, r := range a.fol.results {
		if r.err != nil {
			if out == nil {
				out = map[string]string{}
			}
			out[id] = fmt.Sprintf("version %d: %v", r.version, r.err)
		}
	}
	return out
}

// setGen records the deploy generation this node has converged to (a
// negative gen: none read) and wakes waiters. It is called once the
// changes of the commit are all applied (flows forgotten included).
func (a *App) setGen(gen int64) {
	a.fol.mu.Lock()
	defer a.fol.mu.Unlock()
	if gen > a.fol.gen {
		a.fol.gen = gen
		close(a.fol.moved)
		a.fol.moved = make(chan struct{})
	}
}

// gen is the deploy generation this node has converged to.
func (a *App) gen() int64 {
	a.fol.mu.Lock()
	defer a.fol.mu.Unlock()
	return a.fol.gen
}

// waitGen waits until this node converged to deploy generation gen. Deploy
// generations, unlike feed revisions, move only with deploys: a cluster
// store's revision also moves with writes the feed does not report (node
// registry, elections), which a watcher learns of only from its periodic
// progress notices.
func (a *App) waitGen(ctx context.Context, gen int64) error {
	return a.waitFor(ctx, fmt.Sprintf("deploy generation %d", gen), func() bool { return a.fol.gen >= gen })
}

// waitApplied waits until this node converged to feed revision rev.
func (a *App) waitApplied(ctx context.Context, rev int64) error {
	return a.waitFor(ctx, fmt.Sprintf("revision %d", rev), func() bool { return a.fol.applied >= rev })
}

// waitFor waits until reached (called with fol.mu held) holds, ctx ends,
// the loop stops or applyWait passes.
func (a *App) waitFor(ctx context.Context, what string, reached func() bool) error {
	t := time.NewTimer(applyWait)
	defer t.Stop()
	for {
		a.fol.mu.Lock()
		ok, moved, done := reached(), a.fol.moved, a.fol.done
		a.fol.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-moved:
		case <-done:
			return fmt.Errorf("app: node %s stopped before applying %s: %w", a.node, what, store.ErrClosed)
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return fmt.Errorf("app: node %s has not applied %s within %s: %w", a.node, what, applyWait, store.ErrUnavailable)
		}
	}
}

// reconcile makes the runtime run the desired state: flows no longer
// deployed stop first (freeing their routes), then every flow whose
// version differs is built and swapped in. A version that failed here is
// tried again on the next pass (the next deploy anywhere, or a re-list):
// a route freed meanwhile may let it start. full marks the first pass
// after a (re-)list, which always reports to the node registry.
func (a *App) reconcile(ctx context.Context, full bool) (gen int64) {
	ds, err := a.st.DesiredState(ctx)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Error("reading the desired state", "node", a.node, "err", err)
		}
		return -1
	}
	want := make(map[string]int, len(ds.Flows))
	for _, d := range ds.Flows {
		want[d.Flow] = d.Version
	}
	a.fol.mu.Lock()
	running := maps.Clone(a.fol.running)
	a.fol.mu.Unlock()
	for _, id := range slices.Sorted(maps.Keys(running)) {
		if _, ok := want[id]; ok {
			continue
		}
		if err := a.rt.Undeploy(ctx, id); err != nil && !errors.Is(err, engine.ErrNotDeployed) {
			a.log.Error("undeploying a flow", "node", a.node, "flow", id, "err", err)
		}
		a.setResult(id, 0, nil, false)
	}
	for _, d := range ds.Flows {
		if n, ok := a.rt.Deployed(d.Flow); ok && n == d.Version {
			a.setResult(d.Flow, d.Version, nil, true)
			continue
		}
		err := a.apply(ctx, d)
		if err != nil {
			a.log.Error("flow did not start", "node", a.node, "flow", d.Flow, "version", d.Version, "err", err)
		}
		a.setResult(d.Flow, d.Version, err, err == nil)
	}
	a.fol.mu.Lock()
	rev, problems := a.fol.applied, a.problemsLocked()
	a.fol.reported = time.Now()
	a.fol.mu.Unlock()
	if rev > 0 || full {
		// Reported before the generation is recorded here, so a deploy
		// waiting on this node (waitGen) finds its entry current.
		a.report(rev, max(ds.Gen, a.gen()), problems)
	}
	return ds.Gen
}

func (a *App) apply(ctx context.Context, d store.Deployment) error {
	v, err := a.st.GetVersion(ctx, d.Flow, d.Version)
	if err != nil {
		return fmt.Errorf("deployed version missing: %w", err)
	}
	f, err := engine.DecodeFlow(v.Doc)
	if err != nil {
		return err
	}
	return a.rt.Deploy(ctx, f, v.N)
}

func (a *App) setResult(id string, version int, err error, running bool) {
	a.fol.mu.Lock()
	defer a.fol.mu.Unlock()
	if version == 0 {
		delete(a.fol.results, id)
		delete(a.fol.running, id)
		return
	}
	a.fol.results[id] = applyResult{version: version, err: err}
	if running {
		a.fol.running[id] = version
	} else if n, ok := a.rt.Deployed(id); ok {
		a.fol.running[id] = n // the previous version keeps running
	}
}

// result is this node's last apply of a flow.
func (a *App) result(id string) (applyResult, bool) {
	a.fol.mu.Lock()
	defer a.fol.mu.Unlock()
	r, ok := a.fol.results[id]
	return r, ok
}

// commitDeploy writes the desired state of one flow, validated against
// generation gen by the caller, waits until this node applied it and
// returns its error if this node could not run it; the desired state then
// goes back to prev (the version deployed before), as a failed deploy
// always left the store. It returns the deployed version and the deploy
// generation that carries it.
func (a *App) commitDeploy(ctx context.Context, r store.DeployRequest, prev int) (int, int64, error) {
	n, gen, err := a.st.Deploy(ctx, r)
	if err != nil {
		return 0, 0, err
	}
	if err := a.waitGen(ctx, gen); err != nil {
		return n, gen, err
	}
	if n == 0 {
		return 0, gen, nil
	}
	res, ok := a.result(r.Flow)
	if !ok || res.version != n || res.err == nil {
		return n, gen, nil
	}
	if _, gen2, err := a.st.Deploy(ctx, store.DeployRequest{Flow: r.Flow, Version: prev, IfGen: gen}); err != nil {
		a.log.Error("restoring deployment state", "flow", r.Flow, "err", err)
	} else if err := a.waitGen(ctx, gen2); err != nil {
		a.log.Warn("waiting for the restored deployment", "flow", r.Flow, "err", err)
	}
	return n, gen, res.err
}

// blocksHash names this binary's block types, so a deploy can tell nodes
// that lack one (rolling upgrades).
func (a *App) blocksHash() string {
	specs := a.reg.Specs()
	types := make([]string, 0, len(specs))
	for _, s := range specs {
		types = append(types, s.Type)
	}
	slices.Sort(types)
	b, _ := json.Marshal(types)
	return sum(b)[:16]
}

// Readiness is what /readyz reports, one word per check.
type Readiness struct {
	Store string // "ok" or "unavailable"
	Feed  string // "ok", "stale" or "stopped"
	Flows string // "ok" or "failing": every deployed flow runs its version here
}

// Ready reports whether the store answers, this node follows its feed
// (within stale), and every deployed flow runs here.
func (a *App) Ready(ctx context.Context, stale time.Duration) Readiness {
	r := Readiness{Store: "ok", Feed: "ok", Flows: "ok"}
	rev, err := a.st.Rev(ctx)
	if err != nil {
		r.Store = "unavailable"
	}
	a.fol.mu.Lock()
	started, watching, applied, seen := a.fol.started, a.fol.watching, a.fol.applied, a.fol.lastSeen
	a.fol.mu.Unlock()
	switch {
	case !started || !watching:
		r.Feed = "stopped"
	case err == nil && applied < rev && time.Since(seen) > quietFeed:
		// Behind, and nothing from the feed for a while: give the loop a
		// moment before calling it stale. (A cluster store's revision also
		// moves with writes the feed does not report; its progress notices
		// bring the watcher up to it, and keep lastSeen fresh.)
		wctx, cancel := context.WithTimeout(ctx, stale)
		if a.waitApplied(wctx, rev) != nil {
			r.Feed = "stale"
		}
		cancel()
	}
	ds, err := a.st.DesiredState(ctx)
	if err != nil {
		r.Store = "unavailable"
		r.Flows = "failing"
		return r
	}
	for _, d := range ds.Flows {
		if n, ok := a.rt.Deployed(d.Flow); !ok || n != d.Version {
			r.Flows = "failing"
			break
		}
	}
	return r
}
