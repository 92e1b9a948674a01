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
//	    <name>       -> sealed value (see Bolt.seal)
//
// Namespace and kind buckets are dropped when their last record goes, so
// short-lived namespaces leave nothing behind.

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

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
	aead        cipher.AEAD // nil without a master key
	runsPerFlow int
	now         func() time.Time

	// mu is held shared by every transaction and exclusively by Close, so
	// Close waits for work in flight and later calls see closed.
	mu     sync.RWMutex
	closed bool
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
		aead, err := newAEAD(opts.MasterKey)
		if err != nil {
			return nil, fmt.Errorf("store: open %s: %w", path, err)
		}
		s.aead = aead
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
	if err := db.Update(func(tx *bolt.Tx) error {
		if err := s.migrate(tx); err != nil {
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
	if have > know {
		return &sentinelError{
			msg: fmt.Sprintf("store: %s has schema version %d but this flowd knows up to %d: upgrade flowd", s.path, have, know),
			err: ErrTooNew,
		}
	}
	if have == know {
		return nil
	}
	for i, m := range migrations[have:] {
		if err := m.fn(tx); err != nil {
			return fmt.Errorf("migration %d (%s): %w", int(have)+i+1, m.name, err)
		}
	}
	// Migration 1 creates meta, so it exists from here on.
	return putUint(tx.Bucket(bucketMeta), keySchemaVersion, know)
}

// keyCheckText is sealed into meta/key_check. Its content does not matter;
// only that it opens with the key.
var keyCheckText = []byte("flowd master key check v1")

func (s *Bolt) checkMasterKey(tx *bolt.Tx) error {
	if s.aead == nil {
		return nil
	}
	meta := tx.Bucket(bucketMeta)
	sealed := meta.Get(keyKeyCheck)
	if sealed == nil {
		return meta.Put(keyKeyCheck, s.seal(keyCheckText, bucketMeta, keyKeyCheck))
	}
	if _, err := s.open(sealed, bucketMeta, keyKeyCheck); err != nil {
		return &sentinelError{
			msg: fmt.Sprintf("store: %s: the master key is not the one its secrets were written with (check FLOWD_MASTER_KEY or the key file)", s.path),
			err: ErrMasterKey,
		}
	}
	return nil
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
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close %s: %w", s.path, err)
	}
	return nil
}

// view runs fn in a read transaction unless ctx is already done or the store
// is closed. bbolt transactions cannot be interrupted, so ctx is only
// honoured before the work starts.
func (s *Bolt) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return s.db.View(fn)
}

// update runs fn in a write transaction; an error from fn rolls it back.
func (s *Bolt) update(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		// Writers queue on bbolt's lock; a caller that gave up while
		// waiting should not have its write land afterwards.
		if err := ctx.Err(); err != nil {
			return err
		}
		return fn(tx)
	})
}

// sentinelError carries a sentence written for the user and the sentinel it
// stands for, when "message: sentinel text" would say the same thing twice.
type sentinelError struct {
	msg string
	err error
}

func (e *sentinelError) Error() string { return e.msg }
func (e *sentinelError) Unwrap() error { return e.err }

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

// Limits on names. They keep keys well under bbolt's 32 KiB and error
// messages readable; NUL is refused because it separates kind and name in
// the secrets' additional data.
const (
	maxNameLen = 200
	maxKeyLen  = 1024 // KV keys may be hashes or URLs
	maxNoteLen = 1024
)

func checkName(what, s string, max int) error {
	switch {
	case s == "":
		return fmt.Errorf("%s is empty: %w", what, ErrInvalid)
	case len(s) > max:
		return fmt.Errorf("%s is %d bytes, more than %d: %w", what, len(s), max, ErrInvalid)
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("%s contains a NUL byte: %w", what, ErrInvalid)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s is not valid UTF-8: %w", what, ErrInvalid)
	}
	return nil
}

// q quotes a name for an error message, cut short so that a hostile
// 100 KiB id does not become a 100 KiB log line.
func q(s string) string {
	const max = 64
	if len(s) <= max {
		return fmt.Sprintf("%q", s)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q...", s[:cut])
}

// clone copies a value out of bbolt's memory map, which is only valid for
// the transaction. The result is never nil, so an empty record stays
// distinguishable from a missing one.
func clone(b []byte) []byte {
	return append(make([]byte, 0, len(b)), b...)
}

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

// newAEAD builds the secret cipher. NewGCMWithRandomNonce draws a fresh
// 12-byte nonce per Seal and prepends it, so two writes of one value never
// share a nonce and callers cannot get nonce handling wrong.
func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("master key is %d bytes, want 32: %w", len(key), ErrInvalid)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	return aead, nil
}

// sealedV1 prefixes every sealed value so a later key-rotation scheme can
// tell formats apart.
const sealedV1 = 1

// additionalData binds a sealed value to where it is stored: a value copied
// under another kind or name fails authentication instead of decrypting.
func additionalData(kind, name []byte) []byte {
	ad := make([]byte, 0, len(kind)+1+len(name))
	ad = append(ad, kind...)
	ad = append(ad, 0)
	return append(ad, name...)
}

func (s *Bolt) seal(plain, kind, name []byte) []byte {
	out := []byte{sealedV1}
	return s.aead.Seal(out, nil, plain, additionalData(kind, name))
}

func (s *Bolt) open(sealed, kind, name []byte) ([]byte, error) {
	if len(sealed) < 1 || sealed[0] != sealedV1 {
		return nil, fmt.Errorf("unknown sealed format: %w", errCorrupt)
	}
	plain, err := s.aead.Open(nil, nil, sealed[1:], additionalData(kind, name))
	if err != nil {
		return nil, err
	}
	if plain == nil {
		plain = []byte{}
	}
	return plain, nil
}
