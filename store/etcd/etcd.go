// Package etcd is flowd's cluster store: store.Store on an etcd v3 cluster,
// so any number of identical flowd nodes share flows, KV records and sealed
// secrets. The embedded bbolt file (store.OpenBolt) stays the default for
// one machine.
//
// Every key lives under a prefix, so several installs can share one etcd.
// Names are escaped per segment ("%" -> "%25", "/" -> "%2F"), so KV
// namespace "a" with key "b/c" and namespace "a/b" with key "c" are two
// keys; listings sort after unescaping, in the raw names' byte order.
//
//	<p>/v1/meta/schema_version          decimal text
//	<p>/v1/meta/key_check               a fixed text sealed with the master key
//	<p>/v1/flows/<id>                   JSON: rev, updated, deployed, latest
//	<p>/v1/drafts/<id>                  the draft document
//	<p>/v1/versions/<id>/<n, 10 digits> header length, JSON header, document
//	<p>/v1/kv/<ns>/<key>                value
//	<p>/v1/secrets/<kind>/<name>        sealed exactly as bbolt seals it
//	<p>/v1/deploy-gen                   written by every deployment change; its
//	                                    ModRevision is the deploy generation
//	<p>/v1/txnmarker/<random id>        leased (a minute); proves an ambiguous commit landed
//	<p>/v1/nodes, election, locks       the coordinator (coord.go)
//	<p>/v1/nodedata/<name>/<node id>    SetNodeData records, under the node's session lease
//
// A flow's draft and its versions are separate keys so that no request
// carries a document twice (AddVersion writes the version and a small flow
// record): a document may be up to MaxValueBytes, under etcd's 1.5 MiB
// request limit.
//
// Every call runs with clientv3.WithRequireLeader and a deadline
// (Options.CallTimeout), so a node cut off from the etcd majority gets
// store.ErrUnavailable in milliseconds ("no leader") or at the deadline,
// never a hang.
//
// Updates are optimistic: read, run fn, then a transaction conditioned on
// the key's ModRevision; a conflict runs fn again on the new value. An
// error that leaves the outcome unknown (timeout, lost connection) is
// resolved with the transaction's marker key before the call answers, so a
// commit that did land is never reported as failed and never applied twice;
// if etcd stays silent meanwhile, the error says the outcome is unknown
// (and wraps store.ErrUnavailable).
//
// The change feed is an etcd watch (feed.go); records written with an
// expiry share one lease per minute of expiry (leaseCache).
//
// Run traces are not part of store.Store: they stay on each node (a local
// bbolt file), out of etcd's history and quota.
package etcd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flowd/flowd/store"
)

// etcd's defaults: --max-request-bytes is 1.5 MiB, --max-txn-ops 128.
const (
	// MaxRequestBytes is etcd's default request size limit.
	MaxRequestBytes = 1536 * 1024
	// MaxValueBytes is the largest document, KV value or secret this store
	// writes: a request carries one such value plus keys and a small
	// record, which the margin covers.
	MaxValueBytes = MaxRequestBytes - 32*1024
	// MaxTxnOps is etcd's default limit of operations in one transaction;
	// no flowd transaction comes near it (DeleteFlow, the largest, has 5).
	MaxTxnOps = 128
)

// Defaults for Options.
const (
	DefaultCallTimeout = 3 * time.Second
	DefaultPrefix      = "flowd"
	DefaultSessionTTL  = 5 * time.Second
	// DefaultFeedStaleAfter bounds how long a silent feed counts as alive.
	DefaultFeedStaleAfter = 5 * time.Second
	// maxAttempts bounds the optimistic update loop; a key this contended
	// is a design problem, reported as store.ErrConflict.
	maxAttempts = 64
	// markerTTL keeps a transaction's marker long enough to resolve an
	// ambiguous commit; markers share one lease per minute.
	markerTTL = time.Minute
)

// schemaVersion is what this flowd writes and understands under <p>/v1/.
const schemaVersion = 1

// Options configures Open.
type Options struct {
	// Client is the etcd client (see Dial). Close closes it when
	// OwnClient is set; after an Open error the caller still owns it.
	Client    *clientv3.Client
	OwnClient bool
	// Prefix separates installs sharing one etcd: segments of letters,
	// digits, '.', '_' and '-' joined by '/'. "" means DefaultPrefix.
	Prefix string
	// MasterKey is the 32-byte AES-256 key for secrets. Required: every
	// node of a cluster needs the same one, and Open refuses a key that
	// does not open the store's key check.
	MasterKey []byte
	// SessionTTL is the lease of this node's session (elections, locks,
	// registry): how long a node that died without resigning keeps its
	// roles. 0 means DefaultSessionTTL.
	SessionTTL time.Duration
	// CallTimeout bounds every etcd call; 0 means DefaultCallTimeout.
	CallTimeout time.Duration
	// FeedStaleAfter ends a feed watch with ErrUnavailable when etcd has
	// said nothing (no event, no progress) for that long; progress is
	// requested five times as often. 0 means DefaultFeedStaleAfter.
	FeedStaleAfter time.Duration
	// Now is the clock for Updated and Created; nil means time.Now.
	Now func() time.Time
}

// Store is store.Store on etcd. Safe for concurrent use.
type Store struct {
	cli       *clientv3.Client
	ownClient bool
	root      string // "/<prefix>/v1/"
	sealer    *store.Sealer
	ttl       time.Duration
	stale     time.Duration
	minExpiry time.Duration // shortest lease for a record already due
	coord     coordinator
	feeds     sync.WaitGroup // watch goroutines, ended by Close
	timeout   time.Duration
	now       func() time.Time
	leases    leaseCache

	// mu is held shared by every call and exclusively by Close.
	mu     sync.RWMutex
	closed bool
}

var _ store.Store = (*Store)(nil)

// Open checks the prefix and the master key against the store (writing the
// schema version and key check on first use) and returns the store.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Client == nil {
		return nil, fmt.Errorf("store/etcd: no client: %w", store.ErrInvalid)
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if err := CheckPrefix(opts.Prefix); err != nil {
		return nil, fmt.Errorf("store/etcd: %w", err)
	}
	if len(opts.MasterKey) == 0 {
		return nil, fmt.Errorf("store/etcd: %w", store.ErrNoMasterKey)
	}
	sl, err := store.NewSealer(opts.MasterKey)
	if err != nil {
		return nil, fmt.Errorf("store/etcd: %w", err)
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = DefaultCallTimeout
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = DefaultSessionTTL
	}
	if opts.SessionTTL < 2*time.Second {
		return nil, fmt.Errorf("store/etcd: session TTL %s is under 2s: %w", opts.SessionTTL, store.ErrInvalid)
	}
	if opts.FeedStaleAfter <= 0 {
		opts.FeedStaleAfter = DefaultFeedStaleAfter
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Store{
		cli:       opts.Client,
		ownClient: opts.OwnClient,
		root:      "/" + opts.Prefix + "/v1/",
		sealer:    sl,
		ttl:       opts.SessionTTL,
		stale:     opts.FeedStaleAfter,
		minExpiry: 10 * time.Second,
		timeout:   opts.CallTimeout,
		now:       opts.Now,
	}
	s.leases.s = s
	s.coord.init()
	if err := s.init(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// CheckPrefix reports whether p is a usable key prefix: segments of
// letters, digits, '.', '_' and '-' joined by '/'.
func CheckPrefix(p string) error {
	if err := checkPrefix(p); err != nil {
		return fmt.Errorf("%w: %w", err, store.ErrInvalid)
	}
	return nil
}

func checkPrefix(p string) error {
	if len(p) > 200 {
		return fmt.Errorf("prefix is %d bytes, more than 200", len(p))
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("prefix %q has an empty, \".\" or \"..\" segment", p)
		}
		for _, r := range seg {
			ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
			if !ok {
				return fmt.Errorf("prefix %q: %q is not allowed (letters, digits, '.', '_', '-' and '/' between segments)", p, r)
			}
		}
	}
	return nil
}

// init writes the schema version and key check on first use, or checks
// them. Both are created in one transaction, so two nodes starting on an
// empty prefix at once agree on one key check.
func (s *Store) init(ctx context.Context) error {
	verKey, checkKey := s.root+"meta/schema_version", s.root+"meta/key_check"
	sealed := s.sealer.NewKeyCheck()
	var resp *clientv3.TxnResponse
	err := s.call(ctx, func(ctx context.Context) (err error) {
		resp, err = s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(verKey), "=", 0)).
			Then(clientv3.OpPut(verKey, strconv.Itoa(schemaVersion)), clientv3.OpPut(checkKey, string(sealed))).
			Else(clientv3.OpGet(verKey), clientv3.OpGet(checkKey)).
			Commit()
		return err
	})
	if err != nil {
		return fmt.Errorf("store/etcd: open %s: %w", s.root, err)
	}
	if resp.Succeeded {
		return nil
	}
	ver, check := resp.Responses[0].GetResponseRange().Kvs, resp.Responses[1].GetResponseRange().Kvs
	if len(ver) == 0 {
		return fmt.Errorf("store/etcd: open %s: schema version vanished while opening: %w", s.root, store.ErrConflict)
	}
	have, err := strconv.Atoi(string(ver[0].Value))
	if err != nil || have < 1 {
		return fmt.Errorf("store/etcd: open %s: schema version %q: %w", s.root, ver[0].Value, errCorrupt)
	}
	if have > schemaVersion {
		return &sentinelError{
			msg: fmt.Sprintf("store/etcd: %s has schema version %d but this flowd knows up to %d: upgrade flowd", s.root, have, schemaVersion),
			err: store.ErrTooNew,
		}
	}
	if len(check) == 0 {
		return fmt.Errorf("store/etcd: open %s: key check is missing: %w", s.root, errCorrupt)
	}
	if err := s.sealer.CheckKey("etcd prefix "+s.root, check[0].Value); err != nil {
		return fmt.Errorf("%w; every node of a cluster needs the same master key", err)
	}
	return nil
}

// Close stops the store; it closes the client only if Options.OwnClient.
// The runs store belongs to the caller. Safe to call more than once.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.closeCoord() // ends leaderships, locks, the registry entry and watches
	s.feeds.Wait()
	if s.ownClient {
		if err := s.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("store/etcd: close client: %w", err)
		}
	}
	return nil
}

// Limits are the sizes this store accepts.
func (s *Store) Limits() store.Limits {
	return store.Limits{MaxValueBytes: MaxValueBytes, MaxTxnOps: MaxTxnOps}
}

var _ store.Limited = (*Store)(nil)
var _ store.KVExpiry = (*Store)(nil)

// enter starts a call: unless ctx is already done or the store is closed,
// it holds the store open (Close waits) until release.
func (s *Store) enter(ctx context.Context) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, store.ErrClosed
	}
	return s.mu.RUnlock, nil
}

// call runs fn with a per-call deadline under WithRequireLeader, unless ctx
// is already done or the store is closed, and maps etcd's errors to the
// store's sentinels.
func (s *Store) call(ctx context.Context, fn func(ctx context.Context) error) error {
	release, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer release()
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err = fn(clientv3.WithRequireLeader(cctx))
	if err != nil && ctx.Err() == nil && errors.Is(cctx.Err(), context.DeadlineExceeded) {
		// The per-call deadline passed: whatever form the error took on its
		// way back (gRPC reports a server-side deadline as code Unknown), etcd
		// did not answer in time.
		return fmt.Errorf("etcd did not answer within %s: %w", s.timeout, store.ErrUnavailable)
	}
	return s.mapErr(ctx, err)
}

// mapErr turns an etcd or gRPC error into one that wraps a store sentinel.
// A done caller context wins: the caller gave up, the store did not fail.
func (s *Store) mapErr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("etcd did not answer within %s: %w", s.timeout, store.ErrUnavailable)
	case errors.Is(err, rpctypes.ErrNoLeader), errors.Is(err, rpctypes.ErrGRPCNoLeader):
		return fmt.Errorf("etcd has no leader (the member this node reaches is cut off from the majority)%w: %w", errNotSent, store.ErrUnavailable)
	case errors.Is(err, rpctypes.ErrTimeout), errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail),
		errors.Is(err, rpctypes.ErrTimeoutDueToConnectionLost), errors.Is(err, rpctypes.ErrLeaderChanged):
		return fmt.Errorf("etcd: %v: %w", err, store.ErrUnavailable)
	case errors.Is(err, rpctypes.ErrRequestTooLarge), errors.Is(err, rpctypes.ErrTooManyOps):
		return fmt.Errorf("etcd refused the request: %v: %w", err, store.ErrInvalid)
	case errors.Is(err, rpctypes.ErrNoSpace):
		return fmt.Errorf("etcd is out of space (NOSPACE alarm: compact, defragment and disarm): %w", store.ErrUnavailable)
	}
	if st, ok := status.FromError(err); ok {
		switch st.Code() {
		case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.Aborted:
			return fmt.Errorf("etcd unavailable: %s: %w", st.Message(), store.ErrUnavailable)
		case codes.Unknown:
			// A deadline that ran out on the server side comes back as
			// code Unknown carrying the context error's text.
			if msg := st.Message(); msg == context.DeadlineExceeded.Error() || msg == context.Canceled.Error() {
				return fmt.Errorf("etcd did not answer in time (%s): %w", msg, store.ErrUnavailable)
			}
		}
	}
	return fmt.Errorf("etcd: %w", err)
}

// ambiguous reports whether err leaves the outcome of a write unknown: the
// request may have reached the leader and may still commit. "No leader"
// is not: the member refuses such a request before proposing it.
func ambiguous(err error) bool {
	return errors.Is(err, store.ErrUnavailable) && !errors.Is(err, errNotSent)
}

// errNotSent marks an error after which the request was certainly not
// proposed; its text is empty so messages read as before.
var errNotSent = emptyError{}

type emptyError struct{}

func (emptyError) Error() string { return "" }

// sentinelError carries a sentence written for the user and its sentinel.
type sentinelError struct {
	msg string
	err error
}

func (e *sentinelError) Error() string { return e.msg }
func (e *sentinelError) Unwrap() error { return e.err }

// errCorrupt marks a record that does not decode: a bug or tampering.
var errCorrupt = errors.New("corrupt record")

// Key escaping: '%' and '/' inside a name would otherwise be read as
// separators.
var (
	escaper   = strings.NewReplacer("%", "%25", "/", "%2F")
	unescaper = strings.NewReplacer("%25", "%", "%2F", "/")
)

func esc(s string) string { return escaper.Replace(s) }

func unesc(s string) (string, error) {
	out := unescaper.Replace(s)
	if esc(out) != s {
		return "", fmt.Errorf("key segment %q is not escaped as flowd escapes: %w", s, errCorrupt)
	}
	return out, nil
}

// key joins the root, an area and escaped segments.
func (s *Store) key(area string, segs ...string) string {
	var b strings.Builder
	b.WriteString(s.root)
	b.WriteString(area)
	for _, seg := range segs {
		b.WriteByte('/')
		b.WriteString(esc(seg))
	}
	return b.String()
}

// prefix is key(area, segs...) + "/": every key below it.
func (s *Store) prefix(area string, segs ...string) string {
	return s.key(area, segs...) + "/"
}

// newMarker returns a random transaction marker key.
func (s *Store) newMarker() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return s.root + "txnmarker/" + hex.EncodeToString(b[:])
}

// backoff sleeps a random 1-2^n ms (capped at 64 ms) or until ctx ends.
func backoff(ctx context.Context, attempt int) error {
	maxMs := int64(1) << min(attempt, 6)
	n, _ := rand.Int(rand.Reader, big.NewInt(maxMs))
	t := time.NewTimer(time.Duration(n.Int64()+1) * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// leaseCache hands out shared leases, so writes that expire share a lease
// instead of granting one each (a grant and an expiry are raft writes):
// markers share one lease per minute, records written with an expiry one
// lease per minute of expiry ("bucketed leases").
type leaseCache struct {
	s  *Store
	mu sync.Mutex
	m  map[leaseBucket]leaseEntry
}

type leaseBucket struct {
	marker bool
	minute int64
}

type leaseEntry struct {
	id       clientv3.LeaseID
	reusable time.Time // hand it out until then
}

// lease returns a lease that lives at least ttl from now (markers).
func (c *leaseCache) lease(ctx context.Context, ttl time.Duration) (clientv3.LeaseID, error) {
	now := c.s.now()
	minute := now.Unix() / 60
	// Reused until the minute ends, so it must outlive ttl from then.
	return c.get(ctx, leaseBucket{marker: true, minute: minute}, ttl+time.Minute, time.Unix((minute+1)*60, 0))
}

// until returns a lease that ends in the minute after until: every record
// expiring in one minute shares it. Expiry is for garbage collection only
// (etcd's TTL is a minimum; a leader change may extend it), so readers keep
// checking their records' own expiry.
func (c *leaseCache) until(ctx context.Context, until time.Time) (clientv3.LeaseID, error) {
	now := c.s.now()
	end := until.Truncate(time.Minute).Add(time.Minute)
	ttl := end.Sub(now)
	if ttl < c.s.minExpiry {
		ttl = c.s.minExpiry // already due: let it go soon, not at once
	}
	return c.get(ctx, leaseBucket{minute: end.Unix() / 60}, ttl, end.Add(-5*time.Second))
}

func (c *leaseCache) get(ctx context.Context, b leaseBucket, ttl time.Duration, reusable time.Time) (clientv3.LeaseID, error) {
	now := c.s.now()
	c.mu.Lock()
	e, ok := c.m[b]
	c.mu.Unlock()
	if ok && now.Before(e.reusable) {
		return e.id, nil
	}
	secs := int64((ttl + time.Second - 1) / time.Second)
	var resp *clientv3.LeaseGrantResponse
	err := c.s.call(ctx, func(ctx context.Context) (err error) {
		resp, err = c.s.cli.Grant(ctx, secs)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("grant lease: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[leaseBucket]leaseEntry{}
	}
	for k, old := range c.m {
		if !now.Before(old.reusable) {
			delete(c.m, k)
		}
	}
	if e, ok := c.m[b]; ok {
		return e.id, nil // another call won; its lease is as good (ours expires unused)
	}
	c.m[b] = leaseEntry{id: resp.ID, reusable: reusable}
	return resp.ID, nil
}

// forgetAll drops every cached lease after etcd said one is gone (revoked
// by an operator, or expired during a long pause), so the next writes
// grant new ones.
func (c *leaseCache) forgetAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.m)
}

// q quotes a name for an error message, cut short.
func q(s string) string { return store.Quote(s) }
