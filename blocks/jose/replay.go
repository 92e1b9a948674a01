package jose

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrReplayCacheFull: the in-memory replay cache holds its maximum of
// unexpired entries; new single-use values are refused until some expire
// (failing closed: forgetting one would let it be replayed).
var ErrReplayCacheFull = errors.New("replay cache full")

// ReplayKV is the slice of the store's KV a KVReplayCache needs.
type ReplayKV interface {
	UpdateKV(ctx context.Context, ns, key string, fn func(old []byte) ([]byte, error)) error
	ListKV(ctx context.Context, ns string) ([]string, error)
	DeleteKV(ctx context.Context, ns, key string) error
}

// KVReplayCache keeps single-use values in the store's KV, so every node
// of a cluster sees every claim (a proof replayed against another node is
// refused too) and a restart forgets nothing. Memory use is nil: each
// claim is one write transaction. A record's key starts with its expiry
// (zero-padded Unix seconds), so expired records sort first; they are
// deleted at most once per purge interval by the node that notices.
//
//	<ns>/<expiry, 12 digits>.<key>  ->  "1"
//
// The key of a claim is a function of the claimed value and its expiry,
// which both come from the signed proof or assertion: a replay finds the
// same record.
type KVReplayCache struct {
	kv         ReplayKV
	ns         string
	now        func() time.Time
	purgeEvery time.Duration
	lastPurge  atomic.Int64
	purging    atomic.Bool
}

// NewKVReplayCache returns a replay cache in namespace ns of kv.
func NewKVReplayCache(kv ReplayKV, ns string, now func() time.Time) *KVReplayCache {
	if now == nil {
		now = time.Now
	}
	return &KVReplayCache{kv: kv, ns: ns, now: now, purgeEvery: 30 * time.Second}
}

// Claim implements ReplayCache.
func (c *KVReplayCache) Claim(ctx context.Context, key string, exp time.Time) (bool, error) {
	if c.now().After(exp) {
		return false, nil // the caller's window already refuses it
	}
	k := fmt.Sprintf("%012d.%s", exp.Unix(), key)
	var fresh bool
	err := c.kv.UpdateKV(ctx, c.ns, k, func(old []byte) ([]byte, error) {
		fresh = old == nil // set on every call: the function may run again
		if old != nil {
			return old, nil
		}
		return []byte("1"), nil
	})
	if err != nil {
		return false, fmt.Errorf("claim: %w", err)
	}
	c.maybePurge(ctx)
	return fresh, nil
}

// maybePurge deletes expired records, at most once per interval and by
// one goroutine at a time; a failure is retried next interval.
func (c *KVReplayCache) maybePurge(ctx context.Context) {
	now := c.now()
	if now.Unix()-c.lastPurge.Load() < int64(c.purgeEvery/time.Second) || !c.purging.CompareAndSwap(false, true) {
		return
	}
	defer c.purging.Store(false)
	c.lastPurge.Store(now.Unix())
	_, _ = c.Purge(ctx)
}

// Purge deletes the expired records now and says how many.
func (c *KVReplayCache) Purge(ctx context.Context) (int, error) {
	keys, err := c.kv.ListKV(ctx, c.ns)
	if err != nil {
		return 0, fmt.Errorf("purge: %w", err)
	}
	now := c.now().Unix()
	n := 0
	for _, k := range keys {
		head, _, ok := strings.Cut(k, ".")
		exp, err := strconv.ParseInt(head, 10, 64)
		if ok && err == nil && exp >= now {
			break // sorted: the rest expire later
		}
		if err := c.kv.DeleteKV(ctx, c.ns, k); err != nil {
			return n, fmt.Errorf("purge: %w", err)
		}
		n++
	}
	return n, nil
}

// MemoryReplayCache keeps single-use values in memory, for one process
// (tests, an embedder without a shared store). It holds at most max
// unexpired entries and refuses new ones beyond (ErrReplayCacheFull).
type MemoryReplayCache struct {
	mu        sync.Mutex
	seen      map[string]time.Time
	max       int
	now       func() time.Time
	lastSweep time.Time
}

// NewMemoryReplayCache returns an in-memory cache of at most max entries.
func NewMemoryReplayCache(max int, now func() time.Time) *MemoryReplayCache {
	if now == nil {
		now = time.Now
	}
	return &MemoryReplayCache{seen: map[string]time.Time{}, max: max, now: now}
}

// Claim implements ReplayCache.
func (c *MemoryReplayCache) Claim(_ context.Context, key string, exp time.Time) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if old, ok := c.seen[key]; ok && !now.After(old) {
		return false, nil
	}
	if len(c.seen) >= c.max && now.Sub(c.lastSweep) >= time.Second {
		// A full sweep at most once a second: a flood cannot make every
		// claim walk the whole map.
		c.lastSweep = now
		for k, e := range c.seen {
			if now.After(e) {
				delete(c.seen, k)
			}
		}
	}
	if len(c.seen) >= c.max {
		return false, ErrReplayCacheFull
	}
	c.seen[key] = exp
	return true, nil
}

// Len is the number of entries held (tests).
func (c *MemoryReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// NonceSource issues and checks server nonces (RFC 9449 §8): a nonce is
// the current time window and an HMAC-SHA256 of it under a key kept in
// the secret store (sealed at rest, the same on every node), so nonces
// need no per-nonce state. A nonce is good for the window it was issued in
// and the next one: between one and two lifetimes.
type NonceSource struct {
	store    SecretStore // nil: a key of this process only
	lifetime time.Duration
	now      func() time.Time
	key      atomic.Pointer[[]byte]
	mu       sync.Mutex
}

// DefaultNonceLifetime is the window of a DPoP server nonce.
const DefaultNonceLifetime = 5 * time.Minute

const (
	nonceKind   = "dpop"
	nonceName   = "nonce-key"
	nonceKeyLen = 32
	nonceMACLen = 16
)

// NewNonceSource returns a nonce source whose key lives in store.
func NewNonceSource(store SecretStore, lifetime time.Duration, now func() time.Time) *NonceSource {
	if now == nil {
		now = time.Now
	}
	if lifetime < time.Second {
		lifetime = DefaultNonceLifetime
	}
	return &NonceSource{store: store, lifetime: lifetime, now: now}
}

func (n *NonceSource) loadKey(ctx context.Context) ([]byte, error) {
	if k := n.key.Load(); k != nil {
		return *k, nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if k := n.key.Load(); k != nil {
		return *k, nil
	}
	var key []byte
	if n.store == nil {
		key = make([]byte, nonceKeyLen)
		rand.Read(key)
	} else {
		err := n.store.UpdateSecret(ctx, nonceKind, nonceName, func(old []byte) ([]byte, error) {
			if len(old) == nonceKeyLen {
				key = old
				return old, nil
			}
			key = make([]byte, nonceKeyLen)
			rand.Read(key)
			return key, nil
		})
		if err != nil {
			return nil, fmt.Errorf("nonce key: %w", err)
		}
	}
	n.key.Store(&key)
	return key, nil
}

func (n *NonceSource) window() uint64 { return uint64(n.now().Unix() / int64(n.lifetime/time.Second)) }

func nonceMAC(key []byte, w uint64) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("flowd dpop nonce\x00"))
	m.Write(binary.BigEndian.AppendUint64(nil, w))
	return m.Sum(nil)[:nonceMACLen]
}

// Nonce returns the current nonce.
func (n *NonceSource) Nonce(ctx context.Context) (string, error) {
	key, err := n.loadKey(ctx)
	if err != nil {
		return "", err
	}
	w := n.window()
	return base64.RawURLEncoding.EncodeToString(append(binary.BigEndian.AppendUint64(nil, w), nonceMAC(key, w)...)), nil
}

// Check reports whether nonce was issued in this window or the last.
func (n *NonceSource) Check(ctx context.Context, nonce string) (bool, error) {
	if nonce == "" || len(nonce) > 64 {
		return false, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(raw) != 8+nonceMACLen {
		return false, nil
	}
	key, err := n.loadKey(ctx)
	if err != nil {
		return false, err
	}
	w, cur := binary.BigEndian.Uint64(raw[:8]), n.window()
	if w != cur && w+1 != cur {
		return false, nil
	}
	return hmac.Equal(raw[8:], nonceMAC(key, w)), nil
}
