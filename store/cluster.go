package store

import (
	"context"
	"time"
)

// Kind says what a Change is about.
type Kind uint8

// The kinds of change a Feed reports.
const (
	// KindFlow: a flow's draft was written or the flow deleted (Group is
	// the flow id). Any write of the flow record reports it, AddVersion
	// and SetDeployed included.
	KindFlow Kind = iota + 1
	// KindDeploy: the deployed version of a flow may have changed (Group is
	// the flow id): AddVersion, SetDeployed, Deploy, and DeleteFlow of a
	// deployed flow (Deleted set). Reconcilers watch only this kind.
	KindDeploy
	// KindKV: a KV record was written or deleted (Group is the namespace,
	// Name the key).
	KindKV
	// KindSecret: a secret was written or deleted (Group is the kind, Name
	// the secret's name). The value never crosses the feed.
	KindSecret
)

func (k Kind) String() string {
	switch k {
	case KindFlow:
		return "flow"
	case KindDeploy:
		return "deploy"
	case KindKV:
		return "kv"
	case KindSecret:
		return "secret"
	}
	return "unknown"
}

// Change is one committed change. It carries names, never values: a
// consumer reads the current value through the usual getters, so nothing
// sealed crosses the feed and a consumer that re-reads is always current.
type Change struct {
	Rev     int64 // the revision of the commit; grows across the whole store
	Kind    Kind
	Group   string // flow id, KV namespace or secret kind
	Name    string // "" for flows, else the key or secret name
	Deleted bool   // the record (or, for KindDeploy, the flow) is gone
}

// Filter selects the changes a watch delivers. The zero Filter selects
// everything.
type Filter struct {
	Kinds []Kind // empty: every kind
	// Group, when not empty, selects changes whose Group equals it, or
	// starts with it when it ends in "/" (KV namespaces "vars/<flow>" are
	// selected by "vars/").
	Group string
}

// Match reports whether c passes f.
func (f Filter) Match(c Change) bool {
	if len(f.Kinds) > 0 {
		ok := false
		for _, k := range f.Kinds {
			if k == c.Kind {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if f.Group == "" {
		return true
	}
	if f.Group[len(f.Group)-1] == '/' {
		return len(c.Group) >= len(f.Group) && c.Group[:len(f.Group)] == f.Group
	}
	return c.Group == f.Group
}

// FeedEvent is one delivery of a watch.
type FeedEvent struct {
	// Rev is the revision the event brings the watcher to: the commit's
	// revision for Changes, or for a progress notice (no Changes, no Err)
	// the revision up to which nothing matching the filter was committed.
	Rev int64
	// Changes are the matching changes of one commit, in the order the
	// commit made them (all with Rev). A commit with no matching change
	// sends nothing, or a progress notice.
	Changes []Change
	// Err, on the last event before the channel closes, says why the watch
	// ended: ErrCompacted (the subscriber fell further behind than the
	// backend buffers: re-list at Rev() and watch again), ErrClosed, or
	// ErrUnavailable. A watch ended by its ctx closes without an event.
	Err error
}

// Feed reports every committed change of flows, deployments, KV records and
// secrets, in commit order, each commit once, with a revision. Runs are
// not reported. Revisions grow strictly from commit to commit and survive
// a restart of the store; they are not dense (a backend may skip numbers).
//
// A consumer that keeps a cache in step with the store does:
//
//	rev, _ := st.Rev(ctx)          // 1. the revision to resume from
//	... list and load everything ... // 2. state at least as new as rev
//	ch, _ := st.Watch(ctx, rev, f)  // 3. every change after rev
//
// Changes between 1 and 2 are delivered again by 3; re-reading a record is
// harmless because changes carry names, not values.
type Feed interface {
	// Rev returns the revision of the newest committed change (0 for a
	// store that never changed). It is linearizable: a write that returned
	// before Rev was called has a revision <= the answer.
	Rev(ctx context.Context) (int64, error)
	// Watch sends every change with a revision above fromRev that matches f,
	// in order, one event per commit, until ctx ends or the watch fails (see
	// FeedEvent.Err). fromRev older than the history the backend keeps is
	// ErrCompacted at once; fromRev above Rev() is ErrInvalid. Watch never
	// slows down commits: a subscriber that does not keep up is ended with
	// ErrCompacted once the backend's buffer is exceeded.
	Watch(ctx context.Context, fromRev int64, f Filter) (<-chan FeedEvent, error)
}

// NodeInfo is one node's entry in the registry.
type NodeInfo struct {
	ID      string // unique per node; CheckName rules
	Addr    string // where its admin API listens (for fan-out), may be ""
	Version string // flowd binary version
	Blocks  string // hash of its block types (deploys need them on every node)
	// Applied is the feed revision this node's runtime has converged to,
	// Gen the deploy generation (DesiredState.Gen) it has converged to,
	// and Problems what it could not apply (flow id -> reason), as last
	// set by SetApplied.
	Applied  int64
	Gen      int64 `json:",omitempty"`
	Problems map[string]string
	Updated  time.Time // when the backend last wrote the entry
}

// MaxNodeDataBytes bounds one SetNodeData record on every backend: node
// records are rewritten every few seconds and read by every node, so they
// stay small (a cluster store also writes them through its consensus log).
const MaxNodeDataBytes = 64 << 10

// Leadership is a won Campaign.
type Leadership interface {
	// Role is the role campaigned for.
	Role() string
	// Done is closed when the leadership is lost: resigned, the handle
	// closed, or (cluster stores) the session expired.
	Done() <-chan struct{}
	// Fenced returns a context derived from ctx under which every write
	// of the store (Flows, Deployments, KV, Secrets; not Runs) also
	// requires that this leadership still holds, checked atomically with
	// the write: after the loss such a write fails with ErrFenced and
	// changes nothing. Reads are not affected. The context is not
	// cancelled by the loss; callers that want that select on Done.
	Fenced(ctx context.Context) context.Context
	// Resign gives the role up; Done closes. Safe to call more than once.
	Resign(ctx context.Context) error
}

// Coordinator coordinates the nodes sharing a store. Each Store handle is
// one node: campaigns, locks and the registration belong to that handle
// and end with its Close. On a single-node backend (bbolt) Campaign wins
// at once, Lock is a process mutex and the registry holds this node.
type Coordinator interface {
	// Campaign blocks until this handle holds role (at most one holder per
	// role across the cluster) or ctx ends. role follows CheckName rules.
	Campaign(ctx context.Context, role string) (Leadership, error)
	// Lock takes a cluster-wide mutex, waiting until ctx ends. unlock
	// releases it (safe to call more than once). Locks are not reentrant:
	// a second Lock of the same name by the same handle waits too.
	Lock(ctx context.Context, name string) (unlock func(context.Context) error, err error)
	// TryLock is Lock without waiting: ErrLockHeld when someone holds it.
	TryLock(ctx context.Context, name string) (unlock func(context.Context) error, err error)
	// Register publishes this handle's node (replacing an earlier
	// Register of the same handle; Applied and Problems are kept). The
	// entry lives as long as the handle (cluster stores: under a lease).
	Register(ctx context.Context, n NodeInfo) error
	// Nodes lists the live nodes sorted by ID.
	Nodes(ctx context.Context) ([]NodeInfo, error)
	// SetApplied records what this handle's node has applied: the feed
	// revision, the deploy generation, and the flows it could not run;
	// ErrNotFound before Register. problems may be nil.
	SetApplied(ctx context.Context, rev, gen int64, problems map[string]string) error
	// SetNodeData publishes a small record of this handle's node under
	// name (a CheckName name), replacing the last one: per-node figures
	// other nodes add up (key use counts). It lives as long as the
	// registration: a node that closes or dies (cluster stores: its
	// lease expires) takes its records with it. ErrNotFound before
	// Register; a value above MaxNodeDataBytes is ErrInvalid.
	SetNodeData(ctx context.Context, name string, val []byte) error
	// NodeData returns the records published under name by live nodes,
	// by node id (nodes that published none are absent).
	NodeData(ctx context.Context, name string) (map[string][]byte, error)
}

// KVExpiry is implemented by backends that can drop records on their own
// (etcd leases). until is for garbage collection only: a record may
// outlive it (lease TTLs are a minimum), so callers keep checking their
// record's own expiry. Backends without it keep records until deleted;
// callers type-assert and fall back to UpdateKV/CreateKV plus their own
// clean-up.
type KVExpiry interface {
	// UpdateKVUntil is UpdateKV, the written record to be dropped after
	// until (the update contract holds).
	UpdateKVUntil(ctx context.Context, ns, key string, until time.Time, fn func(old []byte) ([]byte, error)) error
	// CreateKVUntil is CreateKV, the record to be dropped after until.
	CreateKVUntil(ctx context.Context, ns, key string, val []byte, until time.Time) error
}

// Limits are a backend's size limits; 0 means no limit of that kind.
type Limits struct {
	MaxValueBytes int // largest value (flow document, KV value, sealed secret) accepted
	MaxTxnOps     int // largest number of records one transaction may write
}

// Limited is implemented by backends with limits callers must respect
// (etcd: 1.5 MiB per request, 128 operations per transaction). A value
// above MaxValueBytes is refused with ErrInvalid.
type Limited interface {
	Limits() Limits
}

type fenceKey struct{}

// Fence is what a fenced context carries. Backends issue their own
// implementation from Leadership.Fenced and check it inside every write:
// a write under a Fence the backend did not issue, or whose leadership is
// lost, fails with ErrFenced.
type Fence interface {
	// Role is the role of the leadership.
	Role() string
	// Lost is closed when the leadership is lost.
	Lost() <-chan struct{}
}

// WithFence returns ctx carrying f. Backends call it from
// Leadership.Fenced.
func WithFence(ctx context.Context, f Fence) context.Context {
	return context.WithValue(ctx, fenceKey{}, f)
}

// FenceFrom returns the fence ctx carries, if any.
func FenceFrom(ctx context.Context) (Fence, bool) {
	f, ok := ctx.Value(fenceKey{}).(Fence)
	return f, ok && f != nil
}
