package oidc

import (
	"context"
	"time"

	"github.com/flowd/flowd/passhash"
)

// throttle slows down password guessing with exponential backoff, per
// username and per client address. Every attempt is counted before the
// password is checked, in one transaction, so a burst of parallel guesses
// cannot all slip in under the limit; a success gives the count back.
//
//	failures < free:     no wait
//	failures >= free:    next attempt not before last + base * 2^(failures-free), at most max
//
// Counters reset after an hour without attempts. Whether a username
// exists plays no part: an unknown name is throttled like a real one, so
// the answers say nothing about which accounts exist.
type throttle struct {
	free, ipFree int
	base, max    time.Duration
}

const throttleWindow = time.Hour

func (t throttle) delay(failures, free int) time.Duration {
	if failures < free {
		return 0
	}
	d := t.base
	for i := free; i < failures && d < t.max; i++ {
		d *= 2
	}
	return min(d, t.max)
}

// reserve counts an attempt under key, or refuses it with the time to wait.
func (t throttle) reserve(ctx context.Context, kv KV, key string, free int, now time.Time) (time.Duration, error) {
	var wait time.Duration
	err := updateRec(ctx, kv, nsThrottle, key, func(cur *throttleRecord) (*throttleRecord, error) {
		wait = 0 // the function may run again: a refusal seen by a first call may be gone
		if cur == nil || now.UnixMilli()-cur.Last > throttleWindow.Milliseconds() {
			cur = &throttleRecord{}
		}
		next := time.UnixMilli(cur.Last).Add(t.delay(cur.Failures, free))
		if cur.Failures >= free && now.Before(next) {
			wait = next.Sub(now)
			return cur, nil
		}
		cur.Failures++
		cur.Last = now.UnixMilli()
		cur.Purge = now.Add(throttleWindow).Unix()
		return cur, nil
	})
	return wait, err
}

// release gives back the attempt a success does not count; reset forgets
// the key altogether (a username after its password was right).
func (t throttle) release(ctx context.Context, kv KV, key string) error {
	return updateRec(ctx, kv, nsThrottle, key, func(cur *throttleRecord) (*throttleRecord, error) {
		if cur == nil {
			return nil, nil
		}
		if cur.Failures > 0 {
			cur.Failures--
		}
		return cur, nil
	})
}

func (t throttle) reset(ctx context.Context, kv KV, key string) error {
	return deleteRec(ctx, kv, nsThrottle, key)
}

func userThrottleKey(username string) string { return "u:" + hashKey(NormalizeUsername(username)) }

// ipThrottleKey is the address part of a remote address; an IPv6 address
// counts by its /64, which one machine usually holds whole.
func ipThrottleKey(remote string) string { return "ip:" + passhash.AddressKey(remote) }
