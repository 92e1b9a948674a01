// Package passhash owns how flowd stores and checks passwords and secrets:
// OAuth client secrets, people's passwords and the admin password. It is
// one package so that one bound covers them all:
//
//	request --> Hasher.Verify --+-- "$sha256$..." (generated secret): compare, no slot
//	                            |
//	                            +-- argon2id: singleflight (same hash + same secret
//	                                share one computation) --> slot of the pool
//	                                (Concurrency slots, wait at most Wait, else ErrBusy)
//
// argon2id costs 19 MiB and tens of milliseconds per computation; without
// a bound, N concurrent wrong passwords cost N x 19 MiB. With the pool,
// memory for hashing is at most Concurrency x 19 MiB whatever arrives,
// and a request that cannot get a slot in time gets ErrBusy (the HTTP
// edge answers 503 with Retry-After).
//
// Every failed verification costs exactly one argon2id computation in a
// slot: a wrong secret for a stored hash, a wrong generated secret (a
// dummy computation follows the fast compare) and an unknown account
// (Fail, a dummy hash per name). So the answer's timing does not say
// whether an account exists or how its secret is stored.
//
// Throttle is the in-memory failure counter (exponential backoff per key,
// bounded table) that the token endpoint uses per client id and the admin
// login per address and account.
package passhash

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ErrBusy: no hashing slot became free within the wait. Answer it with
// 503 and Retry-After (Hasher.RetryAfter); it says nothing about the
// secret.
var ErrBusy = errors.New("password hashing is busy: try again shortly")

// Defaults, sized for a small container: two argon2id computations at
// once hold about 38 MiB.
const (
	DefaultConcurrency = 2
	DefaultWait        = time.Second
)

// Options size a Hasher. Zero values take the defaults.
type Options struct {
	// Concurrency is how many argon2id computations may run at once
	// (each holds 19 MiB and one core).
	Concurrency int
	// Wait is how long a request waits for a free slot before ErrBusy.
	Wait time.Duration
	// CacheTTL is how long VerifyCached remembers a success (default 5m).
	CacheTTL time.Duration
	// Observe, if set, is called inside a slot just before each argon2id
	// computation with the number now running (this one included). Tests
	// count computations with it, and hold slots by blocking in it.
	Observe func(running int)
	// OnBusy, if set, is called each time a request is refused with
	// ErrBusy (a metric of pool rejections).
	OnBusy func()
	// Now is the clock of the cache (default time.Now).
	Now func() time.Time
}

// cacheSize bounds the cache of recent successes.
const cacheSize = 10000

// Hasher hashes and verifies secrets with a bound on concurrent argon2id
// work. It is safe for concurrent use; share one per process.
type Hasher struct {
	slots   chan struct{}
	wait    time.Duration
	observe func(int)
	onBusy  func()
	running atomic.Int32
	key     [32]byte // process-local: singleflight keys and dummy salts

	ttl time.Duration
	now func() time.Time

	mu    sync.Mutex
	calls map[[32]byte]*call
	cache map[[32]byte]time.Time // VerifyCached successes: key -> expiry
	// onJoin, if set, is called when a caller joins a computation already
	// running (tests).
	onJoin func()
}

type call struct {
	done chan struct{}
	ok   bool
	err  error
}

// New returns a Hasher.
func New(o Options) *Hasher {
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Wait <= 0 {
		o.Wait = DefaultWait
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = 5 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	h := &Hasher{slots: make(chan struct{}, o.Concurrency), wait: o.Wait, observe: o.Observe, onBusy: o.OnBusy, ttl: o.CacheTTL, now: o.Now,
		calls: map[[32]byte]*call{}, cache: map[[32]byte]time.Time{}}
	rand.Read(h.key[:])
	return h
}

// Concurrency is the pool's size.
func (h *Hasher) Concurrency() int { return cap(h.slots) }

// RetryAfter is what to tell a client refused with ErrBusy: whole
// seconds, at least one.
func (h *Hasher) RetryAfter() time.Duration {
	return max(time.Second, h.wait.Round(time.Second))
}

// Hash returns the argon2id hash (PHC string) of a password or a secret a
// person chose, with a fresh salt. It takes a slot like a verification.
func (h *Hasher) Hash(ctx context.Context, secret string) (string, error) {
	var out string
	err := h.inSlot(ctx, func() { out = hashArgon(secret) })
	if err != nil {
		return "", err
	}
	return out, nil
}

// Verify checks secret against encoded (an argon2id PHC string or a
// HashRandom string). A malformed or out-of-range hash is false, never a
// panic. Every false answer has cost one argon2id computation; the error
// is ErrBusy when no slot was free, or ctx's error.
func (h *Hasher) Verify(ctx context.Context, encoded, secret string) (bool, error) {
	return h.verify(ctx, encoded, secret, false)
}

// VerifyCached is Verify that remembers a success for CacheTTL, so a
// machine client presenting its secret on every request does not pay
// argon2id each time. The entry is an HMAC (process-local key) of the
// stored hash and the secret: a changed secret has a new hash and misses.
// Use it for machine secrets only: for people's passwords a cache would
// let a memory dump be searched at HMAC speed.
func (h *Hasher) VerifyCached(ctx context.Context, encoded, secret string) (bool, error) {
	return h.verify(ctx, encoded, secret, true)
}

// Cached reports whether VerifyCached recently accepted this secret for
// this hash. It costs one HMAC, takes no slot, and cannot fail.
func (h *Hasher) Cached(encoded, secret string) bool {
	k := h.callKey(encoded, secret)
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cachedLocked(k)
}

func (h *Hasher) cachedLocked(k [32]byte) bool {
	exp, ok := h.cache[k]
	if ok && !h.now().Before(exp) {
		delete(h.cache, k)
		return false
	}
	return ok
}

func (h *Hasher) rememberLocked(k [32]byte) {
	if len(h.cache) >= cacheSize {
		now := h.now()
		for key, exp := range h.cache {
			if !now.Before(exp) {
				delete(h.cache, key)
			}
		}
		if len(h.cache) >= cacheSize {
			clear(h.cache)
		}
	}
	h.cache[k] = h.now().Add(h.ttl)
}

func (h *Hasher) verify(ctx context.Context, encoded, secret string, cache bool) (bool, error) {
	if match, known := checkRandom(encoded, secret); known {
		if match {
			return true, nil
		}
		return h.run(ctx, "random\x00"+encoded, h.dummy(encoded), secret, true, false)
	}
	a, ok := parseArgon(encoded)
	if !ok {
		return h.run(ctx, "malformed\x00"+encoded, h.dummy(encoded), secret, true, false)
	}
	return h.run(ctx, encoded, a, secret, false, cache)
}

// Fail spends what a failed verification costs, for an account that does
// not exist (seed: its name), and is always false. Use it so an unknown
// name answers like a wrong secret.
func (h *Hasher) Fail(ctx context.Context, seed, secret string) error {
	_, err := h.run(ctx, "dummy\x00"+seed, h.dummy(seed), secret, true, false)
	return err
}

func (h *Hasher) callKey(label, secret string) [32]byte {
	m := hmac.New(sha256.New, h.key[:])
	m.Write([]byte(label))
	m.Write([]byte{0})
	m.Write([]byte(secret))
	var k [32]byte
	copy(k[:], m.Sum(nil))
	return k
}

// run verifies in a slot, once for all concurrent callers presenting the
// same label and secret. The map key is an HMAC under a process-local key:
// no secret is kept in clear, and it lives only while the call runs (or,
// with cache, as long as the remembered success). The cache is checked and
// filled under the same lock as the calls, so a caller arriving just as a
// computation ends finds one or the other, never neither.
func (h *Hasher) run(ctx context.Context, label string, a argonParams, secret string, forceFalse, cache bool) (bool, error) {
	k := h.callKey(label, secret)

	h.mu.Lock()
	if cache && h.cachedLocked(k) {
		h.mu.Unlock()
		return true, nil
	}
	if c := h.calls[k]; c != nil {
		h.mu.Unlock()
		if h.onJoin != nil {
			h.onJoin()
		}
		select {
		case <-c.done:
			return c.ok, c.err
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	c := &call{done: make(chan struct{})}
	h.calls[k] = c
	h.mu.Unlock()

	// The leader's wait is bounded by Wait alone, not by its own context:
	// the followers sharing its result must not fail because it left.
	c.err = h.inSlot(context.WithoutCancel(ctx), func() { c.ok = verifyArgon(a, secret) && !forceFalse })

	h.mu.Lock()
	delete(h.calls, k)
	if cache && c.ok && c.err == nil {
		h.rememberLocked(k)
	}
	h.mu.Unlock()
	close(c.done)
	if c.err != nil {
		return false, c.err
	}
	return c.ok, nil
}

// inSlot runs fn holding a slot, waiting at most h.wait for one.
func (h *Hasher) inSlot(ctx context.Context, fn func()) error {
	select {
	case h.slots <- struct{}{}:
	default:
		t := time.NewTimer(h.wait)
		defer t.Stop()
		select {
		case h.slots <- struct{}{}:
		case <-t.C:
			if h.onBusy != nil {
				h.onBusy()
			}
			return ErrBusy
		case <-ctx.Done():
			return fmt.Errorf("wait for a hashing slot: %w", ctx.Err())
		}
	}
	defer func() { <-h.slots }()
	n := h.running.Add(1)
	defer h.running.Add(-1)
	if h.observe != nil {
		h.observe(int(n))
	}
	fn()
	return nil
}
