// Package store owns flowd's persistence: the narrow interfaces the rest of
// flowd depends on (flows and their versions, run traces, key/value
// records, encrypted secret records), the embedded bbolt implementation, and
// encryption at rest for secrets.
//
// Every backend must pass the conformance suite in store/storetest. The
// embedded backend is Bolt (OpenBolt); its bucket tree is drawn at the top of
// bolt.go. LoadMasterKey finds or creates the key that seals secrets.
//
// Records are opaque bytes to the store: the flow document, a run trace or a
// keyset are encoded by their owners. The store only guarantees ordering,
// atomicity, revisions and confidentiality at rest.
package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Backends wrap them with context; callers test with errors.Is.
var (
	// ErrNotFound: the flow, version, run, key or secret does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a conditional write saw a different revision (If-Match failed),
	// or a create found the record already there.
	ErrConflict = errors.New("revision conflict")
	// ErrTooNew: the database was written by a newer flowd (schema version ahead).
	ErrTooNew = errors.New("database was written by a newer flowd")
	// ErrLocked: another process holds the database file.
	ErrLocked = errors.New("database is locked by another process")
	// ErrMasterKey: the master key does not open this database's secrets.
	ErrMasterKey = errors.New("master key does not match this database")
	// ErrInvalid: a record or argument failed validation before it was written.
	ErrInvalid = errors.New("invalid record")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store is closed")
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
	// DeleteFlow removes the flow with its versions and runs.
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
}

// KV is plain (unencrypted) key/value records in namespaces: flow
// variables, schedule state, settings, OAuth clients (hashed secrets).
type KV interface {
	GetKV(ctx context.Context, ns, key string) ([]byte, error)
	SetKV(ctx context.Context, ns, key string, val []byte) error
	DeleteKV(ctx context.Context, ns, key string) error
	// ListKV returns the keys of a namespace in byte order.
	ListKV(ctx context.Context, ns string) ([]string, error)
	// UpdateKV reads, changes and writes a record in one transaction. fn gets
	// nil when the record does not exist; returning nil deletes it.
	UpdateKV(ctx context.Context, ns, key string, fn func(old []byte) ([]byte, error)) error
}

// Secrets is key/value records encrypted at rest with the master key
// (AES-256-GCM, the record's kind and name bound as additional data).
type Secrets interface {
	GetSecret(ctx context.Context, kind, name string) ([]byte, error)
	// UpdateSecret reads, changes and writes a secret in one transaction.
	// fn gets nil when the record does not exist; returning nil deletes it.
	// An error from fn aborts the transaction and is returned as is.
	UpdateSecret(ctx context.Context, kind, name string, fn func(old []byte) ([]byte, error)) error
	DeleteSecret(ctx context.Context, kind, name string) error
	// ListSecrets returns the names of a kind in byte order.
	ListSecrets(ctx context.Context, kind string) ([]string, error)
}

// Store is everything flowd persists.
type Store interface {
	Flows
	Runs
	KV
	Secrets
	Close() error
}
