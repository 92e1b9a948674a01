// Package store owns flowd's persistence: the narrow interfaces the rest of
// flowd depends on (flows and their versions, the deployed state, key/value
// records, encrypted secret records, a change feed, a coordinator for
// several nodes, and run traces kept per node), the embedded bbolt
// implementation, and encryption at rest for secrets.
//
// Every backend must pass the conformance suite in store/storetest. The
// embedded backend is Bolt (OpenBolt); its bucket tree is drawn at the top of
// bolt.go. store/memstore is an in-memory backend (tests, and a stand-in for
// a cluster store: several handles share one state). LoadMasterKey finds or
// creates the key that seals secrets.
//
// Rules every backend shares live in backend-neutral files: name checks and
// limits (CheckName and friends, names.go), sealing of secrets (Sealer,
// seal.go), the schema version check (CheckSchema, schema.go), and, for
// backends whose commits happen in this process, the feed (FeedHub,
// feedhub.go) and the coordinator (CoordHub, coordhub.go). docs/
// architecture.md draws how the pieces fit.
//
// Records are opaque bytes to the store: the flow document, a run trace or a
// keyset are encoded by their owners. The store only guarantees ordering,
// atomicity, revisions and confidentiality at rest.
package store

import (
	"context"
	"time"

	"github.com/flowd/flowd/store/storeerr"
)

// Sentinel errors (declared in storeerr, documented there). Backends wrap
// them with context; callers test with errors.Is.
var (
	ErrNotFound    = storeerr.ErrNotFound
	ErrConflict    = storeerr.ErrConflict
	ErrTooNew      = storeerr.ErrTooNew
	ErrLocked      = storeerr.ErrLocked
	ErrMasterKey   = storeerr.ErrMasterKey
	ErrInvalid     = storeerr.ErrInvalid
	ErrClosed      = storeerr.ErrClosed
	ErrUnavailable = storeerr.ErrUnavailable
	ErrFenced      = storeerr.ErrFenced
	ErrCompacted   = storeerr.ErrCompacted
	ErrLockHeld    = storeerr.ErrLockHeld
)

// Conditions for PutFlow / DeleteFlow's ifRev argument.
const (
	AnyRev     int64 = -1 // write whatever the current revision is
	MustCreate int64 = 0  // fail with ErrConflict if the flow exists
)

// FlowRecord is a flow's current draft and its deployment state.
type FlowRecord struct {
	ID       string
	Doc      []byte    // the draft flow document (canonical JSON, owned by engine)
	Rev      int64     // starts at 1, +1 on every PutFlow; used as the ETag
	Updated  time.Time // time of the last PutFlow
	Deployed int       // version number currently deployed; 0 = not deployed
	Latest   int       // highest version number stored; 0 = never deployed
}

// Version is an immutable snapshot of a flow taken at deploy.
type Version struct {
	Flow    string
	N       int // 1, 2, 3, ... per flow
	Doc     []byte
	Created time.Time
	Note    string // e.g. "deploy", "restore of v3"
}

// Flows stores flow drafts, their versions and their deployment state.
type Flows interface {
	GetFlow(ctx context.Context, id string) (FlowRecord, error)
	// ListFlows returns every flow sorted by id.
	ListFlows(ctx context.Context) ([]FlowRecord, error)
	// PutFlow writes the draft. ifRev is AnyRev, MustCreate, or the revision
	// the caller last read (ErrConflict otherwise). Returns the new record.
	PutFlow(ctx context.Context, id string, doc []byte, ifRev int64) (FlowRecord, error)
	// DeleteFlow removes the flow with its versions (and its runs, on a
	// backend that also implements Runs).
	DeleteFlow(ctx context.Context, id string, ifRev int64) error
	// AddVersion stores doc as the next version and marks it deployed, in one
	// transaction. The flow must exist.
	AddVersion(ctx context.Context, id string, doc []byte, note string) (Version, error)
	// SetDeployed records which version runs; 0 means undeployed.
	SetDeployed(ctx context.Context, id string, n int) error
	// ListVersions returns the versions of a flow, newest first.
	ListVersions(ctx context.Context, id string) ([]Version, error)
	GetVersion(ctx context.Context, id string, n int) (Version, error)
}

// RunRecord is one persisted run trace (JSON encoded by the engine).
type RunRecord struct {
	Flow    string
	ID      string // unique, sortable by time (the engine makes them)
	Started time.Time
	Data    []byte
}

// Runs keeps a bounded ring of recent run traces per flow.
type Runs interface {
	// AppendRuns writes a batch in one transaction and trims each flow's
	// ring to the store's RunsPerFlow, dropping the oldest.
	AppendRuns(ctx context.Context, runs []RunRecord) error
	// ListRuns returns up to limit runs of a flow, newest first.
	ListRuns(ctx context.Context, flow string, limit int) ([]RunRecord, error)
	GetRun(ctx context.Context, flow, id string) (RunRecord, error)
	// DeleteRuns removes every run of a flow (a deleted flow's traces);
	// nil when there are none.
	DeleteRuns(ctx context.Context, flow string) error
}

// KV is plain (unencrypted) key/value records in namespaces: flow
// variables, schedule state, settings, OAuth clients (hashed secrets).
//
// Namespaces and keys are independent strings: namespace "a" key "b/c" and
// namespace "a/b" key "c" are two different records on every backend.
type KV interface {
	GetKV(ctx context.Context, ns, key string) ([]byte, error)
	// SetKV writes ns/key whatever was there (last writer wins). A nil val
	// is stored as an empty value.
	SetKV(ctx context.Context, ns, key string, val []byte) error
	// CreateKV writes ns/key only if it does not exist: ErrConflict (and
	// nothing written) when it does. It is the one-round-trip write for
	// fresh random records (codes, refresh tokens, sessions): a collision
	// is refused instead of overwriting someone else's record. A nil val is
	// stored as an empty value.
	CreateKV(ctx context.Context, ns, key string, val []byte) error
	DeleteKV(ctx context.Context, ns, key string) error
	// ListKV returns the keys of a namespace in byte order.
	ListKV(ctx context.Context, ns string) ([]string, error)
	// UpdateKV reads, changes and writes a record atomically: no other
	// write of ns/key lands between the read that fn sees and the write of
	// its result. fn gets nil when the record does not exist; returning nil
	// deletes it (or leaves it absent). An error from fn aborts, writes
	// nothing and is returned as is (not wrapped).
	//
	// The update contract (every caller must keep it): fn MAY BE CALLED
	// MORE THAN ONCE. Optimistic backends (etcd, SQL with retries) call it
	// again when a concurrent write changed the record between their read
	// and their write; a test decorator (storetest.TwiceUpdates) calls it
	// twice on purpose. Therefore fn must compute its result from old
	// alone, must not depend on anything an earlier call left behind, and
	// must have no side effects besides setting variables of its caller
	// that it resets at its start on every call. Only the last call's
	// result is written; the verdicts a caller reads after UpdateKV
	// returns are those of that last call. Anything else (sending a
	// message, counting, logging, spending a token) happens after UpdateKV
	// returned nil. old is the caller's to keep and modify.
	UpdateKV(ctx context.Context, ns, key string, fn func(old []byte) ([]byte, error)) error
}

// Secrets is key/value records encrypted at rest with the master key
// (AES-256-GCM, the record's kind and name bound as additional data; see
// Sealer: every backend seals the same way, so a record means the same on
// all of them). Kinds and names are independent strings, as in KV.
type Secrets interface {
	GetSecret(ctx context.Context, kind, name string) ([]byte, error)
	// UpdateSecret reads, changes and writes a secret atomically, with
	// UpdateKV's rules and the same update contract: fn may be called more
	// than once, computes its result from old alone, and has no side
	// effects besides variables it resets on every call.
	// fn gets nil when the record does not exist; returning nil deletes it.
	// An error from fn aborts and is returned as is.
	UpdateSecret(ctx context.Context, kind, name string, fn func(old []byte) ([]byte, error)) error
	DeleteSecret(ctx context.Context, kind, name string) error
	// ListSecrets returns the names of a kind in byte order.
	ListSecrets(ctx context.Context, kind string) ([]string, error)
}

// Deployment is the desired state of one flow: the stored version every
// node must run. It is the FlowRecord's Deployed field seen on its own.
type Deployment struct {
	Flow    string
	Version int // >= 1; flows with nothing deployed are not listed
}

// DesiredState is every deployment at one deploy generation.
type DesiredState struct {
	// Gen is the deploy generation: it grows by at least one with every
	// commit that changes which version of any flow is deployed
	// (AddVersion, SetDeployed, Deploy, DeleteFlow of a deployed flow).
	// Draft saves (PutFlow) do not move it.
	Gen   int64
	Flows []Deployment // sorted by flow id
}

// DeployRequest changes the desired state of one flow.
type DeployRequest struct {
	Flow string
	// Doc, when not nil, is stored as the next version (Latest+1) and that
	// version is deployed, as AddVersion does. When nil, Version is deployed
	// (a stored version; 0 undeploys), as SetDeployed does.
	Doc     []byte
	Note    string // with Doc: the new version's note
	Version int
	// IfGen is AnyRev or the DesiredState.Gen the caller validated the
	// deploy against (routes, block types); ErrConflict if another deploy
	// committed since. It serializes deploys across nodes.
	IfGen int64
}

// Deployments is the desired state every node reconciles its runtime to.
// The flow's record stays the source of truth (FlowRecord.Deployed); this
// view lists it in one read and conditions deploys on the generation.
type Deployments interface {
	// DesiredState returns every flow with a deployed version, and the
	// generation it was read at, in one consistent read.
	DesiredState(ctx context.Context) (DesiredState, error)
	// Deploy applies r in one transaction and returns the deployed version
	// (0 after an undeploy) and the new generation. The flow must exist
	// (ErrNotFound); a Version above Latest is ErrNotFound.
	Deploy(ctx context.Context, r DeployRequest) (version int, gen int64, err error)
}

// Store is everything flowd shares between its nodes: one handle per node
// (a process). Runs are not part of it: traces stay on each node (a
// store.Runs, which the bbolt backend also implements), because shipping
// them through a cluster store would cost quota and history for no reader.
type Store interface {
	Flows
	Deployments
	KV
	Secrets
	// Feed reports every committed change of the above, in order.
	Feed
	// Coordinator elects leaders, locks and registers this handle's node.
	Coordinator
	// Close releases the handle: its leaderships end (their fenced
	// contexts start failing), its locks are released, its node
	// registration goes, and later calls fail with ErrClosed.
	Close() error
}
