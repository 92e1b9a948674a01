package store

// The bbolt file holds one bucket tree. Keys are bytes; <n> is a big-endian
// uint64 (so byte order is numeric order) and <time> is 12 bytes: Unix
// seconds as a big-endian int64 with the sign bit flipped, then nanoseconds
// as a big-endian uint32, so byte order is time order, before 1970 too.
//
//	meta/
//	  schema_version -> <n>, the number of migrations applied
//	  key_check      -> a fixed text sealed with the master key; proves on
//	                    open that the key is the one the secrets were written with
//	  feed_rev       -> <n>, revision of the newest change the feed reported
//	                    (absent = 0); bumped in the transaction of each change
//	  deploy_gen     -> <n>, deploy generation (absent = 0); bumped in the
//	                    transaction of each change of a deployed version
//	flows/
//	  <flow id>/
//	    doc          -> draft document
//	    rev          -> <n>
//	    updated      -> <time>
//	    deployed     -> <n>, 0 = not deployed
//	    latest       -> <n>, highest version number, 0 = none
//	    versions/
//	      <n>/
//	        doc      -> document
//	        created  -> <time>
//	        note     -> text
//	runs/
//	  <flow id>/     (apart from flows/ so a run can be recorded for any flow)
//	    by_time/
//	      <time><run id> -> trace; cursor order is (Started, ID)
//	    by_id/
//	      <run id>   -> its by_time key
//	kv/
//	  <namespace>/
//	    <key>        -> value
//	secrets/
//	  <kind>/
//	    <name>       -> sealed value (see Sealer)
//
// Namespace and kind buckets are dropped when their last record goes, so
// short-lived namespaces leave nothing behind. Bucket names are the
// namespace (or kind) itself, so namespace "a" key "b/c" and namespace
// "a/b" key "c" are apart by construction.
//
// feed_rev and deploy_gen came without a migration: a file without them
// reads 0 and gains them on its first change, and an older flowd that opens
// the file ignores them (its changes then do not move them; the feed's
// history is per process anyway, see Bolt.Watch).
//
// The feed: every write of flows, KV and secrets runs in Bolt.write, which
// holds wmu from its transaction to its FeedHub.Publish, so changes reach
// the hub in commit order. Publishing copies the change list into a bounded
// ring (DefaultFeedHistory commits); it adds no fsync and never waits for a
// watcher. Runs are not reported and do not move the revision, so the
// trace writer's path is as before.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Bucket and key names. One place to look when reading a raw file.
var (
	bucketMeta     = []byte("meta")
	bucketFlows    = []byte("flows")
	bucketVersions = []byte("versions")
	bucketRuns     = []byte("runs")
	bucketByTime   = []byte("by_time")
	bucketByID     = []byte("by_id")
	bucketKV       = []byte("kv")
	bucketSecrets  = []byte("secrets")

	keySchemaVersion = []byte("schema_version")
	keyKeyCheck      = []byte("key_check")
	keyDoc           = []byte("doc")
	keyRev           = []byte("rev")
	keyUpdated       = []byte("updated")
	keyDeployed      = []byte("deployed")
	keyLatest        = []byte("latest")
	keyCreated       = []byte("created")
	keyNote          = []byte("note")
)

// DefaultRunsPerFlow is the run ring size when BoltOptions.RunsPerFlow is 0.
const DefaultRunsPerFlow = 100

// defaultLockTimeout is short because the usual cause of a held lock is a
// second flowd on the same data directory, which will not go away by waiting.
const defaultLockTimeout = 200 * time.Millisecond

// ErrNoMasterKey: a secret operation on a store opened without a master key.
var ErrNoMasterKey = errors.New("no master key configured (set FLOWD_MASTER_KEY or use a key file)")

// BoltOptions configures OpenBolt. The zero value is usable except for
// secrets, which need MasterKey.
type BoltOptions struct {
	// MasterKey is the 32-byte AES-256 key for secrets. Without it the store
	// opens, but secret operations fail with ErrNoMasterKey.
	MasterKey []byte
	// RunsPerFlow bounds the run ring of each flow; 0 means DefaultRunsPerFlow.
	RunsPerFlow int
	// LockTimeout is how long to wait for another process to release the
	// file before failing with ErrLocked; 0 means 200ms.
	LockTimeout time.Duration
	// Now is the clock for Updated and Created; nil means time.Now.
	Now func() time.Time
}

// Bolt is the embedded Store: one bbolt file, safe for concurrent use.
type Bolt struct {
	path        string
	db          *bolt.DB
	sealer      *Sealer // nil without a master key
	runsPerFlow int
	now         func() time.Time

	// mu is held shared by every transaction and exclusively by Close, so
	// Close waits for work in flight and later calls see closed.
	mu     sync.RWMutex
	closed bool

	// wmu serializes the writes the feed reports, from their transaction
	// to their Publish, so the hub receives commits in commit order (bbolt
	// runs commit handlers after releasing its own writer lock). rev and
	// gen are the feed revision and deploy generation last committed.
	wmu   sync.Mutex
	rev   int64
	gen   int64
	feed  *FeedHub
	coord *LocalCoordinator
}

var _ Store = (*Bolt)(nil)

// migration moves the schema one version up. Migrations run in order, all in
// the transaction that opens the store, so a failed upgrade changes nothing.
type migration struct {
	name string
	fn   func(tx *bolt.Tx) error
}

// migrations is append-only: version n of the schema is migrations[:n]
// applied. Never edit or reorder a released entry.
var migrations = []migration{
	{name: "create top-level buckets", fn: func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketFlows, bucketRuns, bucketKV, bucketSecrets} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	}},
}

// OpenBolt opens or creates the database file at path, upgrades its schema
// and checks the master key against it.
func OpenBolt(path string, opts BoltOptions) (*Bolt, error) {
	if opts.RunsPerFlow < 0 {
		return nil, fmt.Errorf("store: open %s: RunsPerFlow is %d: %w", path, opts.RunsPerFlow, ErrInvalid)
	}
	if opts.RunsPerFlow == 0 {
		opts.RunsPerFlow = DefaultRunsPerFlow
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = defaultLockTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Bolt{path: path, runsPerFlow: opts.RunsPerFlow, now: opts.Now}
	if len(opts.MasterKey) > 0 {
		sealer, err := NewSealer(opts.MasterKey)
		if err != nil {
			return nil, fmt.Errorf("store: open %s: %w", path, err)
		}
		s.sealer = sealer
	}

	// 0600: the file holds hashed client secrets and sealed keys; nobody but
	// flowd's user has a reason to read it.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, &sentinelError{
			msg: fmt.Sprintf("store: %s is locked by another process (is another flowd running on this data directory?)", path),
			err: ErrLocked,
		}
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s.db = db
	s.feed = NewFeedHub(0, 0)
	s.coord = NewCoordHub(opts.Now).Join()
	if err := db.Update(func(tx *bolt.Tx) error {
		if err := s.migrate(tx); err != nil {
			return err
		}
		if err := s.loadCounters(tx); err != nil {
			return err
		}
		return s.checkMasterKey(tx)
	}); err != nil {
		_ = db.Close()
		var se *sentinelError
		if errors.As(err, &se) {
			return nil, err
		}
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s.feed = NewFeedHub(s.rev, 0)
	return s, nil
}

func (s *Bolt) migrate(tx *bolt.Tx) error {
	var have uint64
	if meta := tx.Bucket(bucketMeta); meta != nil {
		v, err := getUint(meta, keySchemaVersion, true)
		if err != nil {
			return fmt.Errorf("meta: %w", err)
		}
		have = v
	}
	know := uint64(len(migrations))
	if due, err := CheckSchema(s.path, have, know); err != nil || !due {
		return err
	}
	for i, m := range migrations[have:] {
		if err := m.fn(tx); err != nil {
			return fmt.Errorf("migration %d (%s): %w", int(have)+i+1, m.name, err)
		}
	}
	// Migration 1 creates meta, so it exists from here on.
	return putUint(tx.Bucket(bucketMeta), keySchemaVersion, know)
}

func (s *Bolt) checkMasterKey(tx *bolt.Tx) error {
	if s.sealer == nil {
		return nil
	}
	meta := tx.Bucket(bucketMeta)
	sealed := meta.Get(keyKeyCheck)
	if sealed == nil {
		return meta.Put(keyKeyCheck, s.sealer.NewKeyCheck())
	}
	return s.sealer.CheckKey(s.path, sealed)
}

// Close closes the file. It waits for transactions in flight, and is safe to
// call more than once.
func (s *Bolt) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.coord.Close()
	s.feed.Close()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close %s: %w", s.path, err)
	}
	return nil
}

// view runs fn in a read transaction unless ctx is already done or the store
// is closed. bbolt transactions cannot be interrupted, so ctx is only
// honoured before the work starts.
func (s *Bolt) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	release, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer release()
	return s.db.View(fn)
}

// enter is how every transaction starts: unless ctx is already done or
// the store is closed, it holds the store open (Close waits) until
// release.
func (s *Bolt) enter(ctx context.Context) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, ErrClosed
	}
	return s.mu.RUnlock, nil
}

// update runs fn in a write transaction; an error from fn rolls it back.
func (s *Bolt) update(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	release, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer release()
	return s.db.Update(func(tx *bolt.Tx) error {
		// Writers queue on bbolt's lock; a caller that gave up while
		// waiting should not have its write land afterwards.
		if err := ctx.Err(); err != nil {
			return err
		}
		return fn(tx)
	})
}

// errCorrupt marks a record that does not decode: a bug or a damaged file,
// never bad input, so callers have nothing to branch on.
var errCorrupt = errors.New("corrupt record")

// top returns a top-level bucket. The migrations create them all, so a
// missing one means a damaged file, reported instead of a nil-bucket panic.
func top(tx *bolt.Tx, name []byte) (*bolt.Bucket, error) {
	b := tx.Bucket(name)
	if b == nil {
		return nil, fmt.Errorf("bucket %s is missing: %w", name, errCorrupt)
	}
	return b, nil
}

// clone copies a value out of bbolt's memory map, which is only valid for
// the transaction. The result is never nil.
func clone(b []byte) []byte { return Clone(b) }

func encUint(v uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, v)
}

func putUint(b *bolt.Bucket, key []byte, v uint64) error {
	return b.Put(key, encUint(v))
}

// getUint reads an 8-byte number; missing is 0 when optional, else corrupt.
func getUint(b *bolt.Bucket, key []byte, optional bool) (uint64, error) {
	v := b.Get(key)
	if v == nil && optional {
		return 0, nil
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("%s: %d bytes, want 8: %w", key, len(v), errCorrupt)
	}
	return binary.BigEndian.Uint64(v), nil
}

const timeLen = 12

func encTime(t time.Time) []byte {
	b := make([]byte, 0, timeLen)
	b = binary.BigEndian.AppendUint64(b, uint64(t.Unix())^(1<<63))
	return binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
}

func decTime(b []byte) (time.Time, error) {
	if len(b) != timeLen {
		return time.Time{}, fmt.Errorf("time: %d bytes, want %d: %w", len(b), timeLen, errCorrupt)
	}
	sec := int64(binary.BigEndian.Uint64(b) ^ (1 << 63))
	nsec := binary.BigEndian.Uint32(b[8:])
	if nsec >= 1e9 {
		return time.Time{}, fmt.Errorf("time: %d nanoseconds: %w", nsec, errCorrupt)
	}
	return time.Unix(sec, int64(nsec)).UTC(), nil
}

// normTime is what a time reads back as, so a returned record equals the
// stored one: UTC, no monotonic reading.
func normTime(t time.Time) time.Time {
	return time.Unix(t.Unix(), int64(t.Nanosecond())).UTC()
}

// fields reads the fields of one record bucket; the first error sticks so
// the decoder reads as a list.
type fields struct {
	b   *bolt.Bucket
	err error
}

func (f *fields) fail(key []byte, err error) {
	if f.err == nil {
		f.err = fmt.Errorf("%s: %w", key, err)
	}
}

func (f *fields) bytes(key []byte) []byte {
	v := f.b.Get(key)
	if v == nil {
		f.fail(key, fmt.Errorf("missing: %w", errCorrupt))
		return nil
	}
	return clone(v)
}

func (f *fields) int(key []byte) int64 {
	v, err := getUint(f.b, key, false)
	if err != nil {
		if f.err == nil {
			f.err = err // already names the key
		}
		return 0
	}
	if v > math.MaxInt32 {
		// Revisions and version numbers never get near this; more means damage.
		f.fail(key, fmt.Errorf("%d out of range: %w", v, errCorrupt))
		return 0
	}
	return int64(v)
}

func (f *fields) time(key []byte) time.Time {
	t, err := decTime(f.b.Get(key))
	if err != nil {
		f.fail(key, err)
	}
	return t
}
