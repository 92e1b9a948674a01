package jose

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"math"
	"sync"
	"time"

	"github.com/flowd/flowd/engine"
)

// The verified-token cache in one picture:
//
//	token ─► size cap ─► SHA-256 ─► hit? ──no──► full validation ─► valid, has exp? ─► insert
//	                                  │yes
//	                                  ▼
//	   deadline (exp, max age, key retire time) passed? ─► drop, full validation
//	   key list the entry was confirmed against replaced? ─► pick the key again
//	       (same rules as a full validation); gone or other material ─► drop, full validation
//	   header (alg allow-list, typ) and every claim check re-run on a copy ─► fail: drop, full validation
//	   ─► Result (claims copied)
//
// Any failed check on a hit drops the entry and runs the full validation,
// so a refused token gets exactly the Reason it would get without the
// cache, and a key source refresh happens exactly when it would.
//
// Key changes: a KeySource returns an immutable slice that is replaced,
// never modified, whenever its keys change (a local keyset's view rebuilt
// after a write, a Reload from the store's feed on another node, a
// revoke; a remote JWKS refetch that brought a new set). An entry
// remembers the slice it was last confirmed against; a hit on a node
// whose slice changed picks the key again by kid and alg and keeps the
// entry only if that key is still there, still fits and is the same key.
// This is the (keyset, kid) generation: rotation that adds a key leaves
// other kids' entries valid, a revoked, deleted or replaced kid ends them
// on the next request, on every node, whatever replaced the view.
//
// The map holds no token text: the key is the SHA-256 of the compact
// token, so a token differing in any byte (header, payload, signature) is
// a different key and is fully validated.
//
// Admission: a token is cached the second time it is validated. The first
// time only its hash goes into a "seen" set (as many hashes as the cache
// has entries, cleared when full), so traffic where every token is new
// costs a hash and a set insert, not an entry that is evicted unused.

// CacheOptions bounds a Validator's verified-token cache. Entries 0 turns
// it off.
type CacheOptions struct {
	// Entries is the most tokens kept.
	Entries int
	// Bytes bounds the estimated memory of the entries (claims, header,
	// bookkeeping); 0 means DefaultCacheBytes.
	Bytes int64
}

// Defaults and limits of the verified-token cache.
const (
	DefaultCacheEntries = 4096
	DefaultCacheBytes   = 8 << 20
	MaxCacheEntries     = 1 << 20
	MaxCacheBytes       = 1 << 30
	// cacheEntryOverhead is the estimated fixed cost of an entry: the
	// struct, its map slot and list links, the header strings.
	cacheEntryOverhead = 384
)

type tokenCache struct {
	maxEntries int
	maxBytes   int64

	mu         sync.Mutex
	m          map[[sha256.Size]byte]*cacheEntry
	head, tail *cacheEntry // most and least recently used
	bytes      int64
	seen       map[[sha256.Size]byte]struct{} // validated once, not cached yet
}

type cacheEntry struct {
	sum        [sha256.Size]byte
	claims     map[string]any // never handed out: a hit returns a copy
	header     TokenHeader
	alg        *jwsAlgInfo
	material   any     // the verification key, to compare after a key change
	tokenLimit float64 // exp, max age (with leeway), unix seconds
	size       int64
	prev, next *cacheEntry

	// Guarded by tokenCache.mu: the key list the entry was last confirmed
	// against (its first element: slices are replaced, never modified)
	// and what it said about the key.
	keysID   *VerifyKey
	keysLen  int
	key      VerifyKey
	deadline float64 // min(tokenLimit, the key's retire time)
}

func newTokenCache(o CacheOptions) *tokenCache {
	if o.Entries <= 0 {
		return nil
	}
	if o.Bytes <= 0 {
		o.Bytes = DefaultCacheBytes
	}
	// The maps start empty and grow with use: a cache sized for
	// thousands of tokens that sees a few (most validate blocks) holds
	// no preallocated slots for the garbage collector to scan on every
	// cycle (the preallocated 1024 were a quarter of flowd's live heap).
	return &tokenCache{maxEntries: o.Entries, maxBytes: o.Bytes,
		m:    map[[sha256.Size]byte]*cacheEntry{},
		seen: map[[sha256.Size]byte]struct{}{}}
}

// admit reports whether a token that just passed validation should be
// cached: yes if it was seen before (it leaves the seen set), else it is
// remembered as seen.
func (c *tokenCache) admit(sum *[sha256.Size]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.seen[*sum]; ok {
		delete(c.seen, *sum)
		return true
	}
	if len(c.seen) >= c.maxEntries {
		clear(c.seen)
	}
	c.seen[*sum] = struct{}{}
	return false
}

// Len reports how many tokens are cached and their estimated bytes.
func (c *tokenCache) stats() (n int, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m), c.bytes
}

func (c *tokenCache) unlink(e *cacheEntry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		c.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		c.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (c *tokenCache) pushFront(e *cacheEntry) {
	e.next = c.head
	if c.head != nil {
		c.head.prev = e
	}
	c.head = e
	if c.tail == nil {
		c.tail = e
	}
}

// remove drops e if it is still the entry for its hash.
func (c *tokenCache) remove(e *cacheEntry) {
	c.mu.Lock()
	if c.m[e.sum] == e {
		c.drop(e)
	}
	c.mu.Unlock()
}

func (c *tokenCache) drop(e *cacheEntry) {
	delete(c.m, e.sum)
	c.unlink(e)
	c.bytes -= e.size
}

// add inserts e (replacing an entry of the same hash) and evicts the least
// recently used entries until both bounds hold.
func (c *tokenCache) add(e *cacheEntry) {
	if e.size > c.maxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[e.sum]; old != nil {
		c.drop(old)
	}
	c.m[e.sum] = e
	c.pushFront(e)
	c.bytes += e.size
	for len(c.m) > c.maxEntries || c.bytes > c.maxBytes {
		c.drop(c.tail)
	}
}

// lookup returns the entry for sum with its confirmation state, moving it
// to the front.
func (c *tokenCache) lookup(sum *[sha256.Size]byte) (e *cacheEntry, keysID *VerifyKey, keysLen int, key VerifyKey, deadline float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e = c.m[*sum]
	if e == nil {
		return nil, nil, 0, VerifyKey{}, 0
	}
	if c.head != e {
		c.unlink(e)
		c.pushFront(e)
	}
	return e, e.keysID, e.keysLen, e.key, e.deadline
}

// confirm records that e's key is unchanged in keys.
func (c *tokenCache) confirm(e *cacheEntry, keys []VerifyKey, key VerifyKey) {
	c.mu.Lock()
	e.keysID, e.keysLen, e.key = &keys[0], len(keys), key
	e.deadline = entryDeadline(e.tokenLimit, key)
	c.mu.Unlock()
}

func entryDeadline(tokenLimit float64, key VerifyKey) float64 {
	if key.RetireAt.IsZero() {
		return tokenLimit
	}
	return math.Min(tokenLimit, unixSeconds(key.RetireAt))
}

func unixSeconds(t time.Time) float64 {
	return float64(t.Unix()) + float64(t.Nanosecond())/1e9
}

// cached answers token from the cache, or reports a miss. Every check that
// fails drops the entry: the caller then validates the token in full.
func (v *Validator) cached(ctx context.Context, sum *[sha256.Size]byte) (*Result, bool) {
	e, keysID, keysLen, key, deadline := v.cache.lookup(sum)
	if e == nil {
		return nil, false
	}
	now := v.now()
	if unixSeconds(now) > deadline {
		v.cache.remove(e)
		return nil, false
	}
	// The key: the same checks a full validation makes before verifying.
	keys, err := v.source.VerifyKeys(ctx, false)
	if err != nil || len(keys) == 0 {
		v.cache.remove(e)
		return nil, false
	}
	if &keys[0] != keysID || len(keys) != keysLen {
		k, material, outcome := pickVerifyKey(keys, e.header.Kid, e.alg, now)
		if outcome != pickOne || !sameKeyMaterial(material, e.material) {
			v.cache.remove(e)
			return nil, false
		}
		v.cache.confirm(e, keys, k)
		key = k
	} else if !key.RetireAt.IsZero() && now.After(key.RetireAt) {
		v.cache.remove(e)
		return nil, false
	}
	// The policy, explicitly: the header rules that do not need the raw
	// header, then every claim check (times, iss, aud, required claims,
	// predicate) on a copy the caller may keep and modify.
	if v.algs[e.header.Alg] != e.alg || (len(v.types) > 0 && !v.typeAccepted(e.header.Typ)) {
		v.cache.remove(e)
		return nil, false
	}
	claims := engine.CopyValue(e.claims).(map[string]any)
	if terr := v.checkClaimMap(claims, now); terr != nil {
		v.cache.remove(e)
		return nil, false
	}
	return &Result{Claims: claims, Header: e.header, Key: key}, true
}

// remember caches a token that just passed every check, from its second
// validation on. Tokens without exp are not cached: an entry must never
// outlive its token.
func (v *Validator) remember(sum *[sha256.Size]byte, payloadLen int, res *Result, keys []VerifyKey, material any) {
	exp, hasExp, _ := numericClaim(res.Claims, "exp")
	if !hasExp || len(keys) == 0 || !v.cache.admit(sum) {
		return
	}
	limit := exp + v.leeway
	if v.maxAge > 0 {
		iat, _, _ := numericClaim(res.Claims, "iat")
		limit = math.Min(limit, iat+v.maxAge+v.leeway)
	}
	e := &cacheEntry{
		sum:        *sum,
		claims:     engine.CopyValue(res.Claims).(map[string]any),
		header:     res.Header,
		alg:        v.algs[res.Header.Alg],
		material:   material,
		tokenLimit: limit,
		// The decoded claims take about twice the JSON's bytes.
		size:    cacheEntryOverhead + 2*int64(payloadLen),
		keysID:  &keys[0],
		keysLen: len(keys),
		key:     res.Key,
	}
	e.deadline = entryDeadline(limit, res.Key)
	v.cache.add(e)
}

// sameKeyMaterial reports whether two verification keys are the same key.
func sameKeyMaterial(a, b any) bool {
	switch ka := a.(type) {
	case []byte:
		kb, ok := b.([]byte)
		return ok && bytes.Equal(ka, kb)
	case interface{ Equal(crypto.PublicKey) bool }:
		return ka.Equal(b)
	}
	return false
}
