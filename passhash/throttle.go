package passhash

import (
	"context"
	"net"
	"strings"
	"sync"
	"time"
)

// Throttle counts failed attempts per key in memory and makes a key that
// keeps failing wait, with exponential backoff:
//
//	failures < Free:   no wait
//	failures >= Free:  next attempt not before last + Base * 2^(failures-Free), at most Max
//
// A key is forgotten after Window without attempts. The table holds at
// most Size keys: when it is full, expired keys go first, then the key
// with the fewest failures among a few sampled, so a flood of fresh keys
// (random client ids) evicts other one-off keys, not the throttled key
// of an account under attack.
//
// With Shared set (a cluster), the counts are cluster-wide: every failure,
// release and reset is also written to Shared, and the table follows
// what other nodes write through Observe (flowd calls it from the store's
// change feed). Checks (Wait, Failures) still read only the table, so a
// throttled request costs no store round trip; a success resets the store
// only when the table knows of failures. If Shared fails, the node keeps
// counting on its own.
type Throttle struct {
	o   ThrottleOptions
	now func() time.Time

	mu   sync.Mutex
	keys map[string]*throttleEntry
}

type throttleEntry struct {
	failures int
	last     time.Time
}

// ThrottleOptions configure a Throttle. Zero values take the defaults
// (Free 10, Base 1s, Max 5m, Window 1h, Size 10000).
type ThrottleOptions struct {
	Free      int
	Base, Max time.Duration
	Window    time.Duration
	Size      int
	Now       func() time.Time
	// OnRefuse, if set, is called (outside the lock) each time Wait or
	// Reserve makes a key wait: a metric of throttle trips.
	OnRefuse func()
	// Shared, if set, makes the counts cluster-wide (see Throttle).
	Shared Shared
	// SharedTimeout bounds each call to Shared (default 2 s): the
	// methods of Throttle take no context.
	SharedTimeout time.Duration
	// OnSharedError, if set, hears Shared's errors (to log them).
	OnSharedError func(error)
}

// Shared stores a Throttle's counts where every node sees them. A record
// is a count of failures and the time of the last one.
type Shared interface {
	// Add adds delta (1 or -1) to key's count at now and returns nothing
	// until it is stored. A record whose last failure is older than
	// window counts from 0; a count that drops to 0 removes the record,
	// and the store may drop it after now + window.
	Add(ctx context.Context, key string, delta int, now time.Time, window time.Duration) error
	// Reset removes key's record.
	Reset(ctx context.Context, key string) error
}

// evictSample is how many entries a full table looks at to pick one to evict.
const evictSample = 8

// NewThrottle returns a Throttle.
func NewThrottle(o ThrottleOptions) *Throttle {
	if o.Free <= 0 {
		o.Free = 10
	}
	if o.Base <= 0 {
		o.Base = time.Second
	}
	if o.Max < o.Base {
		o.Max = max(o.Base, 5*time.Minute)
	}
	if o.Window <= 0 {
		o.Window = time.Hour
	}
	if o.Size <= 0 {
		o.Size = 10000
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	if o.SharedTimeout <= 0 {
		o.SharedTimeout = 2 * time.Second
	}
	return &Throttle{o: o, now: now, keys: map[string]*throttleEntry{}}
}

// share runs fn on Shared, if there is one, with the timeout.
func (t *Throttle) share(fn func(ctx context.Context, s Shared) error) {
	if t.o.Shared == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), t.o.SharedTimeout)
	defer cancel()
	if err := fn(ctx, t.o.Shared); err != nil && t.o.OnSharedError != nil {
		t.o.OnSharedError(err)
	}
}

// Observe sets key's count to what the shared store holds (failures 0:
// no record), as written by any node. Entries past the window are
// dropped on the next check, as local ones are.
func (t *Throttle) Observe(key string, failures int, last time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if failures <= 0 {
		delete(t.keys, key)
		return
	}
	e := t.keys[key]
	if e == nil {
		if len(t.keys) >= t.o.Size {
			t.evictLocked(t.now())
		}
		e = &throttleEntry{}
		t.keys[key] = e
	}
	e.failures, e.last = failures, last
}

func (t *Throttle) delay(failures int) time.Duration {
	if failures < t.o.Free {
		return 0
	}
	d := t.o.Base
	for i := t.o.Free; i < failures && d < t.o.Max; i++ {
		d *= 2
	}
	return min(d, t.o.Max)
}

// Wait reports how long key must wait before its next attempt (0: now).
func (t *Throttle) Wait(key string) time.Duration {
	t.mu.Lock()
	wait := t.waitLocked(key, t.now())
	t.mu.Unlock()
	t.refused(wait)
	return wait
}

func (t *Throttle) refused(wait time.Duration) {
	if wait > 0 && t.o.OnRefuse != nil {
		t.o.OnRefuse()
	}
}

func (t *Throttle) waitLocked(key string, now time.Time) time.Duration {
	e := t.keys[key]
	if e == nil {
		return 0
	}
	if now.Sub(e.last) > t.o.Window {
		delete(t.keys, key)
		return 0
	}
	if next := e.last.Add(t.delay(e.failures)); e.failures >= t.o.Free && now.Before(next) {
		return next.Sub(now)
	}
	return 0
}

// Failures is key's count of recent failures.
func (t *Throttle) Failures(key string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.keys[key]; e != nil && t.now().Sub(e.last) <= t.o.Window {
		return e.failures
	}
	return 0
}

// Reserve counts an attempt for key before it is checked, so parallel
// guesses cannot all slip in under the limit; or, if key must wait,
// counts nothing and returns the wait. Give the attempt back with
// Release when it succeeded or was never made.
func (t *Throttle) Reserve(key string) (wait time.Duration) {
	defer func() { t.refused(wait) }()
	var now time.Time
	now, wait = t.reserve(key)
	if wait == 0 {
		t.share(func(ctx context.Context, s Shared) error { return s.Add(ctx, key, 1, now, t.o.Window) })
	}
	return wait
}

func (t *Throttle) reserve(key string) (time.Time, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if wait := t.waitLocked(key, now); wait > 0 {
		return now, wait
	}
	t.countLocked(key, now)
	return now, 0
}

// Fail counts a failure for key whatever its wait (for callers that
// check first with Wait and count after the attempt).
func (t *Throttle) Fail(key string) {
	now := t.fail(key)
	t.share(func(ctx context.Context, s Shared) error { return s.Add(ctx, key, 1, now, t.o.Window) })
}

func (t *Throttle) fail(key string) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.waitLocked(key, now) // drops an expired entry
	t.countLocked(key, now)
	return now
}

// countLocked counts one failure for key at now, making room in a full
// table first.
func (t *Throttle) countLocked(key string, now time.Time) {
	e := t.keys[key]
	if e == nil {
		if len(t.keys) >= t.o.Size {
			t.evictLocked(now)
		}
		e = &throttleEntry{}
		t.keys[key] = e
	}
	e.failures++
	e.last = now
}

// Release gives back one attempt counted by Reserve.
func (t *Throttle) Release(key string) {
	t.mu.Lock()
	e := t.keys[key]
	if e != nil {
		e.failures--
		if e.failures <= 0 {
			delete(t.keys, key)
		}
	}
	t.mu.Unlock()
	if e != nil {
		t.share(func(ctx context.Context, s Shared) error { return s.Add(ctx, key, -1, t.now(), t.o.Window) })
	}
}

// Reset forgets key (an account after its right password). The shared
// record is removed only when the table knows of one, so the common
// case (a success without earlier failures) costs no store write.
func (t *Throttle) Reset(key string) {
	t.mu.Lock()
	_, known := t.keys[key]
	delete(t.keys, key)
	t.mu.Unlock()
	if known {
		t.share(func(ctx context.Context, s Shared) error { return s.Reset(ctx, key) })
	}
}

// Len is the number of keys held.
func (t *Throttle) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.keys)
}

// evictLocked makes room for one key: an expired one among a sample if
// any, else the sampled one with the fewest failures (the oldest of
// those). Go's map iteration starts at a random place, so the sample is
// spread over the table; the cost is constant, not a scan.
func (t *Throttle) evictLocked(now time.Time) {
	var victim string
	var ve *throttleEntry
	n := 0
	for k, e := range t.keys {
		if now.Sub(e.last) > t.o.Window {
			victim = k
			break
		}
		if ve == nil || e.failures < ve.failures || (e.failures == ve.failures && e.last.Before(ve.last)) {
			victim, ve = k, e
		}
		if n++; n >= evictSample {
			break
		}
	}
	delete(t.keys, victim)
}

// AddressKey is the throttling key of a remote address ("host:port" or a
// bare host): the IPv4 address, or the /64 of an IPv6 address, which one
// machine usually holds whole.
func AddressKey(remote string) string {
	host := remote
	if h, _, err := net.SplitHostPort(remote); err == nil {
		host = h
	}
	ip := net.ParseIP(strings.TrimSpace(host))
	switch {
	case ip == nil:
		return "unknown"
	case ip.To4() != nil:
		return ip.To4().String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}
