package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/store"
)

// Errors the edge maps to status codes.
var (
	ErrNotFound = store.ErrNotFound
	ErrConflict = store.ErrConflict
	ErrInvalid  = engine.ErrInvalidFlow
	// ErrIDMismatch: the document's id differs from the id it is stored under.
	ErrIDMismatch = errors.New("document id does not match the flow id")
)

// Config wires an App.
type Config struct {
	Store store.Store
	// Runs keeps the persisted run traces of this node. nil: Store, which
	// must then implement store.Runs (bbolt does).
	Runs     store.Runs
	Registry *engine.Registry
	Logger   *slog.Logger
	Limits   engine.Limits
	// Env is the allow-list of environment variables expressions see.
	Env map[string]string
	// Examples holds flow documents (*.json) installed and deployed on the
	// first start of an empty store, and upgraded on later starts where the
	// store still holds an earlier shipped version (see examples.go).
	Examples fs.FS
	Now      func() time.Time
	// Sleep is the runtime's wait (engine.Options.Sleep; nil: real timers).
	Sleep func(ctx context.Context, d time.Duration) error
	// RunsPerFlow is the store's ring size for traces (0: the store default).
	RunsPerFlow int
	// SnapshotsPerSecond: see engine.Options (0: the engine's default).
	SnapshotsPerSecond int
	// Observer: see engine.Options (nil: nothing observed).
	Observer engine.Observer
	// Services are what block factories look up at deploy (see
	// engine.Services; nil: none).
	Services *engine.Services
	// Tracer: see engine.Options (nil: runs are not traced).
	Tracer engine.Tracer
	// Audit, if set, hears of every flow change: saved, deployed,
	// undeployed, restored, deleted (see audit.go).
	Audit func(ctx context.Context, typ, subject, why string)
	// NodeID names this node in the store's node registry (default: a
	// random "node-<hex>").
	NodeID string
	// NodeAddr (where the admin API listens) and Version (the flowd
	// version) are published in the node registry.
	NodeAddr string
	Version  string
	// CheckDeploy, if set, refuses a flow before it is deployed (names
	// the node and field), on top of the registry's validation.
	CheckDeploy func(f *engine.Flow) error
	// CheckCluster, if set, refuses a flow that cannot run beside the
	// other flows deployed in the store (flowd: an http.in route that
	// matches the same requests as another flow's). A deploy checks it
	// against the desired state it then commits on (DeployRequest.IfGen),
	// so of two such deploys racing on two nodes exactly one commits and
	// the other, reading again, is refused.
	CheckCluster func(f *engine.Flow, deployed []*engine.Flow) error
	// PeerClient makes the calls to other nodes (runs views, peer.go);
	// nil: a client without proxy and a 3 s timeout. Set it when nodes
	// serve https with a certificate the system does not trust.
	PeerClient *http.Client
}

// App is flowd's flow service.
type App struct {
	st     store.Store
	runs   store.Runs
	rt     *engine.Runtime
	reg    *engine.Registry
	log    *slog.Logger
	cfg    Config
	traces *traceWriter
	mu     sync.Mutex // serializes deploy-like changes per App
	node   string
	hooks  []Hook
	fol    follower
	// deployed caches the decoded deployed versions CheckCluster sees
	// (versions never change); under depMu (the feed also drops entries).
	// A map stored here is never changed in place, only replaced.
	// forgot counts forgetDeployed calls, so a pass of deployedFlows
	// that a delete overtook does not put the deleted flow's entries back.
	depMu    sync.Mutex
	deployed map[versionKey]*engine.Flow
	forgot   uint64
	peers    peers     // node-to-node calls (peer.go)
	pub      publisher // node records (nodedata.go)
}

// New builds an App and its runtime. Call Start to deploy stored flows.
func New(cfg Config) (*App, error) {
	if cfg.Store == nil || cfg.Registry == nil {
		return nil, errors.New("app: Store and Registry are required")
	}
	if cfg.Runs == nil {
		r, ok := cfg.Store.(store.Runs)
		if !ok {
			return nil, errors.New("app: the store keeps no runs (it does not implement store.Runs): set Runs")
		}
		cfg.Runs = r
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	// The engine gets no clock when none was given: it then reads the
	// wall clock at most once a second (engine.Options.Now), where
	// time.Now would read it on every run.
	engineNow := cfg.Now
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NodeID == "" {
		cfg.NodeID = newNodeID()
	}
	if err := store.CheckName("node id", cfg.NodeID, store.MaxNameLen); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	a := &App{st: cfg.Store, runs: cfg.Runs, reg: cfg.Registry, log: cfg.Logger, cfg: cfg, node: cfg.NodeID}
	a.traces = newTraceWriter(cfg.Runs, cfg.Logger, cfg.RunsPerFlow)
	rt, err := engine.New(engine.Options{
		Registry: cfg.Registry, Logger: cfg.Logger, Limits: cfg.Limits, Env: cfg.Env,
		Vars: kvVars{cfg.Store}, Traces: a.traces, Now: engineNow, Sleep: cfg.Sleep, SnapshotsPerSecond: cfg.SnapshotsPerSecond,
		Observer: cfg.Observer, Services: cfg.Services, Tracer: cfg.Tracer,
	})
	if err != nil {
		return nil, err
	}
	a.rt = rt
	return a, nil
}

// Registry returns the block registry.
func (a *App) Registry() *engine.Registry { return a.reg }

var (
	nsSystem       = "system"
	deployNoteUser = "deploy"
)

// lockExamples is the cluster lock prebuilt-flow installation runs under.
const lockExamples = "examples"

// Start starts the reconcile loop (node.go), which deploys every flow the
// store says is deployed and keeps following the store; then, under the
// cluster lock, it brings the prebuilt flows up to date (installs them on
// the first start, see examples.go). A flow that fails to deploy is logged
// (and listed in the node registry) and left undeployed in the runtime;
// the others still start.
func (a *App) Start(ctx context.Context) error {
	if err := a.startFollowing(ctx); err != nil {
		return err
	}
	if a.cfg.Examples == nil {
		return nil
	}
	unlock, err := a.st.Lock(ctx, lockExamples)
	if err != nil {
		return fmt.Errorf("app: take the examples lock: %w", err)
	}
	defer func() {
		if err := unlock(context.WithoutCancel(ctx)); err != nil {
			a.log.Warn("releasing the examples lock", "err", err)
		}
	}()
	return a.syncExamples(ctx)
}

// Close stops the reconcile loop and every flow, waits for runs in flight
// (until ctx ends) and flushes traces. It does not close the store.
func (a *App) Close(ctx context.Context) error {
	a.stopPublishing()
	a.stopFollowing()
	err := a.rt.Close(ctx)
	a.traces.close()
	return err
}

// Status of a flow as the flows list shows it.
const (
	StatusDeployed   = "deployed"   // the draft is what runs
	StatusChanged    = "changed"    // deployed, but the draft has undeployed changes
	StatusUndeployed = "undeployed" // valid, not running
	StatusInvalid    = "invalid"    // the draft does not validate
)

// FlowInfo summarises a flow for lists.
type FlowInfo struct {
	ID       string       `json:"id"`
	Name     string       `json:"name"`
	Rev      int64        `json:"rev"`
	Updated  time.Time    `json:"updated"`
	Deployed int          `json:"deployed_version"`
	Latest   int          `json:"latest_version"`
	Status   string       `json:"status"`
	Problem  string       `json:"problem,omitempty"`
	LastRun  *RunSummary  `json:"last_run,omitempty"`
	Nodes    int          `json:"nodes"`
	Triggers []string     `json:"triggers"`
	Flow     *engine.Flow `json:"-"`
}

// RunSummary is the head of a trace.
type RunSummary struct {
	ID       string    `json:"id"`
	Started  time.Time `json:"started"`
	Status   string    `json:"status"`
	Duration int64     `json:"duration_ns"`
}

// ListFlows returns every flow with its status.
func (a *App) ListFlows(ctx context.Context) ([]FlowInfo, error) {
	recs, err := a.st.ListFlows(ctx)
	if err != nil {
		return nil, fmt.Errorf("list flows: %w", err)
	}
	out := make([]FlowInfo, 0, len(recs))
	for _, rec := range recs {
		out = append(out, a.info(ctx, rec))
	}
	return out, nil
}

// Info returns one flow's summary.
func (a *App) Info(ctx context.Context, id string) (FlowInfo, error) {
	rec, err := a.st.GetFlow(ctx, id)
	if err != nil {
		return FlowInfo{}, fmt.Errorf("flow %q: %w", id, err)
	}
	return a.info(ctx, rec), nil
}

func (a *App) info(ctx context.Context, rec store.FlowRecord) FlowInfo {
	fi := FlowInfo{ID: rec.ID, Rev: rec.Rev, Updated: rec.Updated, Deployed: rec.Deployed, Latest: rec.Latest, Triggers: []string{}}
	f, err := engine.DecodeFlow(rec.Doc)
	if err == nil {
		fi.Flow = f
		fi.Name = f.Name
		fi.Nodes = len(f.Nodes)
		for _, n := range f.Nodes {
			if s, ok := a.reg.Spec(n.Type); ok && s.Trigger {
				fi.Triggers = append(fi.Triggers, n.Type)
			}
		}
		err = a.reg.Validate(f)
	}
	switch {
	case err != nil:
		fi.Status, fi.Problem = StatusInvalid, err.Error()
	case rec.Deployed == 0:
		fi.Status = StatusUndeployed
	default:
		fi.Status = StatusDeployed
		if v, verr := a.st.GetVersion(ctx, rec.ID, rec.Deployed); verr != nil || !bytes.Equal(v.Doc, rec.Doc) {
			fi.Status = StatusChanged
		}
	}
	if runs := a.rt.Traces(rec.ID); len(runs) > 0 {
		t := runs[0]
		fi.LastRun = &RunSummary{ID: t.ID, Started: t.Started, Status: t.Status, Duration: t.Duration}
	} else if rr, err := a.runs.ListRuns(ctx, rec.ID, 1); err == nil && len(rr) == 1 {
		if t, err := engine.DecodeTrace(rr[0].Data); err == nil {
			fi.LastRun = &RunSummary{ID: t.ID, Started: t.Started, Status: t.Status, Duration: t.Duration}
		}
	}
	return fi
}

// Export returns the canonical document of a flow's draft and its revision.
func (a *App) Export(ctx context.Context, id string) ([]byte, int64, error) {
	rec, err := a.st.GetFlow(ctx, id)
	if err != nil {
		return nil, 0, fmt.Errorf("flow %q: %w", id, err)
	}
	return rec.Doc, rec.Rev, nil
}

// decode parses a document strictly and returns it with its canonical bytes.
// Secrets never enter a flow document: fields of kind secret hold the name
// of a stored secret, so canonical export is safe to share.
func (a *App) decode(doc []byte) (*engine.Flow, []byte, error) {
	f, err := engine.DecodeFlow(doc)
	if err != nil {
		return nil, nil, err
	}
	canon, err := engine.EncodeFlow(f)
	if err != nil {
		return nil, nil, err
	}
	return f, canon, nil
}

// PutFlow saves a draft. The document must decode strictly and carry the
// same id; it may still fail block validation (the editor saves work in
// progress), which its status then shows. ifRev: store.AnyRev,
// store.MustCreate, or the revision last read.
func (a *App) PutFlow(ctx context.Context, id string, doc []byte, ifRev int64) (store.FlowRecord, error) {
	f, canon, err := a.decode(doc)
	if err != nil {
		return store.FlowRecord{}, err
	}
	if f.ID != id {
		return store.FlowRecord{}, fmt.Errorf("%w: document says %q, stored as %q", ErrIDMismatch, f.ID, id)
	}
	rec, err := a.st.PutFlow(ctx, id, canon, ifRev)
	if err != nil {
		return store.FlowRecord{}, fmt.Errorf("save flow %q: %w", id, err)
	}
	a.audit(ctx, auditFlowSaved, id, fmt.Sprintf("revision %d", rec.Rev))
	return rec, nil
}

// Import stores a document under its own id (replacing any draft) and
// optionally deploys it.
func (a *App) Import(ctx context.Context, doc []byte, deploy bool) (FlowInfo, error) {
	wait := time.Duration(-1)
	if deploy {
		wait = 0
	}
	fi, _, err := a.ImportWait(ctx, doc, wait)
	return fi, err
}

// ImportWait stores a document under its own id (replacing any draft)
// and, unless wait is negative, deploys it as DeployWait does, answering
// where it runs (nil when not deployed). A document that does not
// validate is not stored when it is to be deployed.
func (a *App) ImportWait(ctx context.Context, doc []byte, wait time.Duration) (FlowInfo, *Rollout, error) {
	f, canon, err := a.decode(doc)
	if err != nil {
		return FlowInfo{}, nil, err
	}
	deploy := wait >= 0
	if deploy {
		if err := a.validate(ctx, f); err != nil {
			return FlowInfo{}, nil, err
		}
	}
	rec, err := a.st.PutFlow(ctx, f.ID, canon, store.AnyRev)
	if err != nil {
		return FlowInfo{}, nil, fmt.Errorf("import flow %q: %w", f.ID, err)
	}
	a.audit(ctx, auditFlowSaved, f.ID, fmt.Sprintf("imported, revision %d", rec.Rev))
	var ro *Rollout
	if deploy {
		r, err := a.DeployWait(ctx, f.ID, wait)
		if err != nil {
			return FlowInfo{}, nil, err
		}
		ro = &r
	}
	fi, err := a.Info(ctx, f.ID)
	return fi, ro, err
}

// DeleteFlow undeploys and deletes a flow with its versions and runs.
func (a *App) DeleteFlow(ctx context.Context, id string, ifRev int64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := a.st.GetFlow(ctx, id); err != nil {
		return fmt.Errorf("flow %q: %w", id, err)
	}
	if err := a.st.DeleteFlow(ctx, id, ifRev); err != nil {
		return fmt.Errorf("delete flow %q: %w", id, err)
	}
	// A separate run store (a cluster's per-node traces) is not reached by
	// the shared store's delete.
	if err := a.runs.DeleteRuns(ctx, id); err != nil {
		a.log.Warn("delete flow: its run traces stay", "flow", id, "err", err)
	}
	a.audit(ctx, auditFlowDeleted, id, "")
	a.forgetDeployed(id)
	if a.following() {
		return a.settle(ctx)
	}
	if err := a.rt.Undeploy(ctx, id); err != nil && !errors.Is(err, engine.ErrNotDeployed) {
		return err
	}
	a.rt.Forget(id)
	return nil
}

// Deploy validates the draft and stores it as a new version, the desired
// state every node runs; it returns once this node runs it. If this node's
// runtime refuses it (say a route another flow holds), the stored
// deployment state goes back to what it was and the error is returned.
func (a *App) Deploy(ctx context.Context, id string) (store.Version, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	v, _, err := a.deploy(ctx, id, deployNoteUser)
	return v, err
}

// deploy is Deploy with a.mu held; note is the new version's note. It
// also returns the deploy generation that carries the version (0 when
// the reconcile loop does not run).
func (a *App) deploy(ctx context.Context, id, note string) (store.Version, int64, error) {
	rec, err := a.st.GetFlow(ctx, id)
	if err != nil {
		return store.Version{}, 0, fmt.Errorf("flow %q: %w", id, err)
	}
	f, err := engine.DecodeFlow(rec.Doc)
	if err != nil {
		return store.Version{}, 0, err
	}
	if err := a.validate(ctx, f); err != nil {
		return store.Version{}, 0, err
	}
	if a.following() {
		v, gen, err := a.deployDesired(ctx, rec, f, note)
		if err == nil {
			a.audit(ctx, auditFlowDeployed, id, fmt.Sprintf("version %d (%s)", v.N, note))
		}
		return v, gen, err
	}
	// One process on a store no server holds (the CLI): nothing races it.
	if ds, err := a.st.DesiredState(ctx); err != nil {
		return store.Version{}, 0, fmt.Errorf("deploy %q: desired state: %w", id, err)
	} else if err := a.checkCluster(ctx, f, ds); err != nil {
		return store.Version{}, 0, err
	}
	v, err := a.st.AddVersion(ctx, id, rec.Doc, note)
	if err != nil {
		return store.Version{}, 0, fmt.Errorf("store version of %q: %w", id, err)
	}
	if err := a.rt.Deploy(ctx, f, v.N); err != nil {
		if serr := a.st.SetDeployed(ctx, id, rec.Deployed); serr != nil {
			a.log.Error("restoring deployment state", "flow", id, "err", serr)
		}
		return store.Version{}, 0, err
	}
	a.audit(ctx, auditFlowDeployed, id, fmt.Sprintf("version %d (%s)", v.N, note))
	return v, 0, nil
}

// Undeploy stops a flow and records it as not deployed.
func (a *App) Undeploy(ctx context.Context, id string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := a.st.GetFlow(ctx, id); err != nil {
		return fmt.Errorf("flow %q: %w", id, err)
	}
	if err := a.st.SetDeployed(ctx, id, 0); err != nil {
		return fmt.Errorf("undeploy %q: %w", id, err)
	}
	a.audit(ctx, auditFlowUndeployed, id, "")
	if a.following() {
		return a.settle(ctx)
	}
	if err := a.rt.Undeploy(ctx, id); err != nil && !errors.Is(err, engine.ErrNotDeployed) {
		return err
	}
	return nil
}

// Versions lists a flow's versions, newest first.
func (a *App) Versions(ctx context.Context, id string) ([]store.Version, error) {
	if _, err := a.st.GetFlow(ctx, id); err != nil {
		return nil, fmt.Errorf("flow %q: %w", id, err)
	}
	vs, err := a.st.ListVersions(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("versions of %q: %w", id, err)
	}
	return vs, nil
}

// Version returns one version.
func (a *App) Version(ctx context.Context, id string, n int) (store.Version, error) {
	v, err := a.st.GetVersion(ctx, id, n)
	if err != nil {
		return store.Version{}, fmt.Errorf("flow %q version %d: %w", id, n, err)
	}
	return v, nil
}

// Restore makes version n the draft again and, if the flow is deployed,
// deploys it (which stores it as the newest version: history only grows)
// as DeployWait does, waiting up to wait for the other nodes; the rollout
// is nil when the flow was not deployed.
func (a *App) Restore(ctx context.Context, id string, n int, wait time.Duration) (store.FlowRecord, *Rollout, error) {
	v, err := a.Version(ctx, id, n)
	if err != nil {
		return store.FlowRecord{}, nil, err
	}
	rec, err := a.st.PutFlow(ctx, id, v.Doc, store.AnyRev)
	if err != nil {
		return store.FlowRecord{}, nil, fmt.Errorf("restore %q v%d: %w", id, n, err)
	}
	a.audit(ctx, auditFlowRestored, id, fmt.Sprintf("from version %d", n))
	if rec.Deployed == 0 {
		return rec, nil, nil
	}
	ro, err := a.DeployWait(ctx, id, wait)
	if err != nil {
		return rec, nil, err
	}
	rec, err = a.st.GetFlow(ctx, id)
	return rec, &ro, err
}

// Run runs a deployed flow once from a trigger node (manual run).
func (a *App) Run(ctx context.Context, id, node string, input engine.Msg) (*engine.Trace, error) {
	return a.rt.Run(ctx, id, node, input)
}

// defaultRuns and maxRuns are Runs' limit when none or too many is asked.
const (
	defaultRuns = 100
	maxRuns     = 1000
)

// Runs returns a flow's recent traces, newest first: the persisted ring,
// plus any not yet flushed from memory.
func (a *App) Runs(ctx context.Context, id string, limit int) ([]*engine.Trace, error) {
	if _, err := a.st.GetFlow(ctx, id); err != nil {
		return nil, fmt.Errorf("flow %q: %w", id, err)
	}
	if limit <= 0 || limit > maxRuns {
		limit = defaultRuns
	}
	mem := a.rt.Traces(id)
	recs, err := a.runs.ListRuns(ctx, id, limit)
	if err != nil {
		return nil, fmt.Errorf("runs of %q: %w", id, err)
	}
	seen := map[string]bool{}
	out := make([]*engine.Trace, 0, len(mem)+len(recs))
	for _, t := range mem {
		seen[t.ID] = true
		out = append(out, t)
	}
	for _, r := range recs {
		if seen[r.ID] {
			continue
		}
		t, err := engine.DecodeTrace(r.Data)
		if err != nil {
			continue
		}
		out = append(out, t)
	}
	slices.SortFunc(out, func(x, y *engine.Trace) int {
		if c := y.Started.Compare(x.Started); c != 0 {
			return c
		}
		return strings.Compare(y.ID, x.ID)
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Validate checks a document exactly as a deploy would, without storing it.
func (a *App) Validate(ctx context.Context, doc []byte) (*engine.Flow, error) {
	f, err := engine.DecodeFlow(doc)
	if err != nil {
		return nil, err
	}
	return f, a.validate(ctx, f)
}

// validate checks a flow as a deploy does: the registry's rules, then the
// embedder's (Config.CheckDeploy).
func (a *App) validate(ctx context.Context, f *engine.Flow) error {
	if err := a.rt.Validate(ctx, f); err != nil {
		return err
	}
	if a.cfg.CheckDeploy != nil {
		return a.cfg.CheckDeploy(f)
	}
	return nil
}

// deployDesired stores rec's draft (decoded: f) as the next version and
// the desired state, conditioned on the deploy generation it was checked
// against (CheckCluster), so a deploy committed meanwhile by another node
// makes it read and check again. a.mu is held.
func (a *App) deployDesired(ctx context.Context, rec store.FlowRecord, f *engine.Flow, note string) (store.Version, int64, error) {
	for attempt := 0; ; attempt++ {
		ds, err := a.st.DesiredState(ctx)
		if err != nil {
			return store.Version{}, 0, fmt.Errorf("deploy %q: desired state: %w", rec.ID, err)
		}
		if err := a.checkCluster(ctx, f, ds); err != nil {
			return store.Version{}, 0, err
		}
		n, gen, err := a.commitDeploy(ctx, store.DeployRequest{Flow: rec.ID, Doc: rec.Doc, Note: note, IfGen: ds.Gen}, rec.Deployed)
		if errors.Is(err, store.ErrConflict) && attempt < 5 {
			continue
		}
		if err != nil {
			if n == 0 {
				err = fmt.Errorf("store version of %q: %w", rec.ID, err)
			}
			return store.Version{}, 0, err
		}
		v, err := a.st.GetVersion(ctx, rec.ID, n)
		return v, gen, err
	}
}

// versionKey names one stored version of a flow.
type versionKey struct {
	flow string
	n    int
}

// checkCluster runs Config.CheckCluster on f against the other flows of
// the desired state ds. Their decoded versions are cached (a version
// never changes) and entries no longer deployed are dropped; a flow
// deleted and created again under its id restarts its version numbers, so
// the feed drops a deleted flow's entries (forgetDeployed), and a refusal
// found with cached entries is checked again on fresh reads.
func (a *App) checkCluster(ctx context.Context, f *engine.Flow, ds store.DesiredState) error {
	if a.cfg.CheckCluster == nil {
		return nil
	}
	others, cached, err := a.deployedFlows(ctx, f, ds, true)
	if err != nil {
		return err
	}
	err = a.cfg.CheckCluster(f, others)
	if err == nil || !cached {
		return err
	}
	if others, _, err = a.deployedFlows(ctx, f, ds, false); err != nil {
		return err
	}
	return a.cfg.CheckCluster(f, others)
}

// deployedFlows decodes the flows of ds other than f, from the cache when
// useCache; cached reports whether any came from it.
func (a *App) deployedFlows(ctx context.Context, f *engine.Flow, ds store.DesiredState, useCache bool) (others []*engine.Flow, cached bool, err error) {
	a.depMu.Lock()
	old, forgot := a.deployed, a.forgot
	a.depMu.Unlock()
	keep := make(map[versionKey]*engine.Flow, len(ds.Flows))
	others = make([]*engine.Flow, 0, len(ds.Flows))
	for _, d := range ds.Flows {
		k := versionKey{d.Flow, d.Version}
		df := old[k]
		if df != nil && useCache {
			cached = cached || d.Flow != f.ID
		} else {
			v, err := a.st.GetVersion(ctx, d.Flow, d.Version)
			if err != nil {
				return nil, false, fmt.Errorf("deploy %q: read deployed flow %q version %d: %w", f.ID, d.Flow, d.Version, err)
			}
			if df, err = engine.DecodeFlow(v.Doc); err != nil {
				// Stored by an older or newer flowd: it cannot be
				// compared, and this node does not run it either.
				a.log.Warn("deployed flow does not decode: left out of the cluster check", "flow", d.Flow, "version", d.Version, "err", err)
				continue
			}
		}
		keep[k] = df
		if d.Flow != f.ID {
			others = append(others, df)
		}
	}
	a.depMu.Lock()
	if a.forgot == forgot {
		// Else a flow was deleted meanwhile: keep may hold its entries
		// (read from the cache or the store before the delete), which a
		// flow created again under its id would hit, its version numbers
		// restarting. The next pass fills the cache again.
		a.deployed = keep
	}
	a.depMu.Unlock()
	return others, cached, nil
}

// forgetDeployed drops the cached versions of a deleted flow. The cache
// map is never changed in place: deployedFlows reads the map it took
// under depMu after letting go of the lock, so this installs a copy.
func (a *App) forgetDeployed(id string) {
	a.depMu.Lock()
	defer a.depMu.Unlock()
	keep := make(map[versionKey]*engine.Flow, len(a.deployed))
	for k, f := range a.deployed {
		if k.flow != id {
			keep[k] = f
		}
	}
	a.deployed = keep
	a.forgot++
}

// settle waits until this node runs the desired state as committed so
// far (after an undeploy or a delete).
func (a *App) settle(ctx context.Context) error {
	ds, err := a.st.DesiredState(ctx)
	if err != nil {
		return fmt.Errorf("app: desired state: %w", err)
	}
	return a.waitGen(ctx, ds.Gen)
}
