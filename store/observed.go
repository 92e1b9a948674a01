package store

import (
	"context"
	"time"
)

// OpObserver receives how long store calls took, by operation (package
// metrics implements it with a Prometheus histogram).
type OpObserver interface {
	// Op returns the recorder of one operation's durations. Observed asks
	// once per operation when it wraps a store, so a call records into a
	// function it already holds and allocates nothing. Recorders must be
	// safe for concurrent use and must not block.
	Op(op string) func(time.Duration)
}

// The operations Observed times, as OpObserver.Op names them. Watch,
// Campaign and Lock are not timed: they wait for events, leaders or
// holders by design, so their duration says nothing about the store.
var Ops = [...]string{
	opFlowGet: "flow_get", opFlowList: "flow_list", opFlowPut: "flow_put", opFlowDelete: "flow_delete",
	opVersionAdd: "version_add", opDeployedSet: "deployed_set", opVersionList: "version_list", opVersionGet: "version_get",
	opDesiredState: "desired_state", opDeploy: "deploy",
	opKVGet: "kv_get", opKVSet: "kv_set", opKVCreate: "kv_create", opKVDelete: "kv_delete", opKVList: "kv_list", opKVUpdate: "kv_update", opKVUpdateMany: "kv_update_many",
	opSecretGet: "secret_get", opSecretUpdate: "secret_update", opSecretDelete: "secret_delete", opSecretList: "secret_list",
	opFeedRev: "feed_rev",
	opTryLock: "trylock", opRegister: "node_register", opNodes: "node_list", opSetApplied: "node_set_applied", opSetNodeData: "node_set_data", opNodeData: "node_data",
	opRunsAppend: "runs_append", opRunsList: "runs_list", opRunGet: "run_get", opRunsDelete: "runs_delete",
}

const (
	opFlowGet = iota
	opFlowList
	opFlowPut
	opFlowDelete
	opVersionAdd
	opDeployedSet
	opVersionList
	opVersionGet
	opDesiredState
	opDeploy
	opKVGet
	opKVSet
	opKVCreate
	opKVDelete
	opKVList
	opKVUpdate
	opKVUpdateMany
	opSecretGet
	opSecretUpdate
	opSecretDelete
	opSecretList
	opFeedRev
	opTryLock
	opRegister
	opNodes
	opSetApplied
	opSetNodeData
	opNodeData
	opRunsAppend
	opRunsList
	opRunGet
	opRunsDelete
	numOps
)

// Observed returns s with the duration of every call (but Watch, Campaign
// and Lock) reported to o, errors included. The result implements every
// optional interface s implements (Runs, KVExpiry, Limited) and no other,
// so callers that type-assert for them see the same store; the expiry
// variants report as kv_update and kv_create. A nil o returns s as it is.
func Observed(s Store, o OpObserver) Store {
	if o == nil {
		return s
	}
	w := &observed{st: s}
	for i := range w.rec {
		w.rec[i] = o.Op(Ops[i])
	}
	r, hasRuns := s.(Runs)
	e, hasExpiry := s.(KVExpiry)
	l, hasLimits := s.(Limited)
	rp, ep := observedRuns{w, r}, observedExpiry{w, e}
	switch {
	case hasRuns && hasExpiry && hasLimits:
		return &struct {
			*observed
			observedRuns
			observedExpiry
			Limited
		}{w, rp, ep, l}
	case hasRuns && hasExpiry:
		return &struct {
			*observed
			observedRuns
			observedExpiry
		}{w, rp, ep}
	case hasRuns && hasLimits:
		return &struct {
			*observed
			observedRuns
			Limited
		}{w, rp, l}
	case hasExpiry && hasLimits:
		return &struct {
			*observed
			observedExpiry
			Limited
		}{w, ep, l}
	case hasRuns:
		return &struct {
			*observed
			observedRuns
		}{w, rp}
	case hasExpiry:
		return &struct {
			*observed
			observedExpiry
		}{w, ep}
	case hasLimits:
		return &struct {
			*observed
			Limited
		}{w, l}
	}
	return w
}

// ObservedRuns is Observed for a store.Runs of its own (a cluster node's
// local traces).
func ObservedRuns(r Runs, o OpObserver) Runs {
	if o == nil {
		return r
	}
	w := &observed{}
	for i := range w.rec {
		w.rec[i] = o.Op(Ops[i])
	}
	return observedRuns{w, r}
}

type observed struct {
	st  Store
	rec [numOps]func(time.Duration)
}

// since records the time since t0 as op; deferred with t0 = time.Now().
func (o *observed) since(op int, t0 time.Time) { o.rec[op](time.Since(t0)) }

func (o *observed) GetFlow(ctx context.Context, id string) (FlowRecord, error) {
	defer o.since(opFlowGet, time.Now())
	return o.st.GetFlow(ctx, id)
}

func (o *observed) ListFlows(ctx context.Context) ([]FlowRecord, error) {
	defer o.since(opFlowList, time.Now())
	return o.st.ListFlows(ctx)
}

func (o *observed) PutFlow(ctx context.Context, id string, doc []byte, ifRev int64) (FlowRecord, error) {
	defer o.since(opFlowPut, time.Now())
	return o.st.PutFlow(ctx, id, doc, ifRev)
}

func (o *observed) DeleteFlow(ctx context.Context, id string, ifRev int64) error {
	defer o.since(opFlowDelete, time.Now())
	return o.st.DeleteFlow(ctx, id, ifRev)
}

func (o *observed) AddVersion(ctx context.Context, id string, doc []byte, note string) (Version, error) {
	defer o.since(opVersionAdd, time.Now())
	return o.st.AddVersion(ctx, id, doc, note)
}

func (o *observed) SetDeployed(ctx context.Context, id string, n int) error {
	defer o.since(opDeployedSet, time.Now())
	return o.st.SetDeployed(ctx, id, n)
}

func (o *observed) ListVersions(ctx context.Context, id string) ([]Version, error) {
	defer o.since(opVersionList, time.Now())
	return o.st.ListVersions(ctx, id)
}

func (o *observed) GetVersion(ctx context.Context, id string, n int) (Version, error) {
	defer o.since(opVersionGet, time.Now())
	return o.st.GetVersion(ctx, id, n)
}

func (o *observed) DesiredState(ctx context.Context) (DesiredState, error) {
	defer o.since(opDesiredState, time.Now())
	return o.st.DesiredState(ctx)
}

func (o *observed) Deploy(ctx context.Context, r DeployRequest) (int, int64, error) {
	defer o.since(opDeploy, time.Now())
	return o.st.Deploy(ctx, r)
}

func (o *observed) GetKV(ctx context.Context, ns, key string) ([]byte, error) {
	defer o.since(opKVGet, time.Now())
	return o.st.GetKV(ctx, ns, key)
}

func (o *observed) SetKV(ctx context.Context, ns, key string, val []byte) error {
	defer o.since(opKVSet, time.Now())
	return o.st.SetKV(ctx, ns, key, val)
}

func (o *observed) CreateKV(ctx context.Context, ns, key string, val []byte) error {
	defer o.since(opKVCreate, time.Now())
	return o.st.CreateKV(ctx, ns, key, val)
}

func (o *observed) DeleteKV(ctx context.Context, ns, key string) error {
	defer o.since(opKVDelete, time.Now())
	return o.st.DeleteKV(ctx, ns, key)
}

func (o *observed) ListKV(ctx context.Context, ns string) ([]string, error) {
	defer o.since(opKVList, time.Now())
	return o.st.ListKV(ctx, ns)
}

func (o *observed) UpdateKV(ctx context.Context, ns, key string, fn func(old []byte) ([]byte, error)) error {
	defer o.since(opKVUpdate, time.Now())
	return o.st.UpdateKV(ctx, ns, key, fn)
}

func (o *observed) UpdateKVs(ctx context.Context, refs []KVRef, fn func(old [][]byte) ([][]byte, error)) error {
	defer o.since(opKVUpdateMany, time.Now())
	return o.st.UpdateKVs(ctx, refs, fn)
}

func (o *observed) GetSecret(ctx context.Context, kind, name string) ([]byte, error) {
	defer o.since(opSecretGet, time.Now())
	return o.st.GetSecret(ctx, kind, name)
}

func (o *observed) UpdateSecret(ctx context.Context, kind, name string, fn func(old []byte) ([]byte, error)) error {
	defer o.since(opSecretUpdate, time.Now())
	return o.st.UpdateSecret(ctx, kind, name, fn)
}

func (o *observed) DeleteSecret(ctx context.Context, kind, name string) error {
	defer o.since(opSecretDelete, time.Now())
	return o.st.DeleteSecret(ctx, kind, name)
}

func (o *observed) ListSecrets(ctx context.Context, kind string) ([]string, error) {
	defer o.since(opSecretList, time.Now())
	return o.st.ListSecrets(ctx, kind)
}

func (o *observed) Rev(ctx context.Context) (int64, error) {
	defer o.since(opFeedRev, time.Now())
	return o.st.Rev(ctx)
}

func (o *observed) Watch(ctx context.Context, fromRev int64, f Filter) (<-chan FeedEvent, error) {
	return o.st.Watch(ctx, fromRev, f)
}

func (o *observed) Campaign(ctx context.Context, role string) (Leadership, error) {
	return o.st.Campaign(ctx, role)
}

func (o *observed) Lock(ctx context.Context, name string) (func(context.Context) error, error) {
	return o.st.Lock(ctx, name)
}

func (o *observed) TryLock(ctx context.Context, name string) (func(context.Context) error, error) {
	defer o.since(opTryLock, time.Now())
	return o.st.TryLock(ctx, name)
}

func (o *observed) Register(ctx context.Context, n NodeInfo) error {
	defer o.since(opRegister, time.Now())
	return o.st.Register(ctx, n)
}

func (o *observed) Nodes(ctx context.Context) ([]NodeInfo, error) {
	defer o.since(opNodes, time.Now())
	return o.st.Nodes(ctx)
}

func (o *observed) SetApplied(ctx context.Context, rev, gen int64, problems map[string]string) error {
	defer o.since(opSetApplied, time.Now())
	return o.st.SetApplied(ctx, rev, gen, problems)
}

func (o *observed) SetNodeData(ctx context.Context, name string, val []byte) error {
	defer o.since(opSetNodeData, time.Now())
	return o.st.SetNodeData(ctx, name, val)
}

func (o *observed) NodeData(ctx context.Context, name string) (map[string][]byte, error) {
	defer o.since(opNodeData, time.Now())
	return o.st.NodeData(ctx, name)
}

func (o *observed) Close() error { return o.st.Close() }

type observedRuns struct {
	o *observed
	r Runs
}

func (w observedRuns) AppendRuns(ctx context.Context, runs []RunRecord) error {
	defer w.o.since(opRunsAppend, time.Now())
	return w.r.AppendRuns(ctx, runs)
}

func (w observedRuns) ListRuns(ctx context.Context, flow string, limit int) ([]RunRecord, error) {
	defer w.o.since(opRunsList, time.Now())
	return w.r.ListRuns(ctx, flow, limit)
}

func (w observedRuns) GetRun(ctx context.Context, flow, id string) (RunRecord, error) {
	defer w.o.since(opRunGet, time.Now())
	return w.r.GetRun(ctx, flow, id)
}

func (w observedRuns) DeleteRuns(ctx context.Context, flow string) error {
	defer w.o.since(opRunsDelete, time.Now())
	return w.r.DeleteRuns(ctx, flow)
}

type observedExpiry struct {
	o *observed
	e KVExpiry
}

func (w observedExpiry) UpdateKVUntil(ctx context.Context, ns, key string, until time.Time, fn func(old []byte) ([]byte, error)) error {
	defer w.o.since(opKVUpdate, time.Now())
	return w.e.UpdateKVUntil(ctx, ns, key, until, fn)
}

func (w observedExpiry) CreateKVUntil(ctx context.Context, ns, key string, val []byte, until time.Time) error {
	defer w.o.since(opKVCreate, time.Now())
	return w.e.CreateKVUntil(ctx, ns, key, val, until)
}
