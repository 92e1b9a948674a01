package passhash

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestThrottleBackoff(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	refusals := 0
	th := NewThrottle(ThrottleOptions{Free: 3, Base: time.Second, Max: 8 * time.Second, Window: time.Hour, Now: func() time.Time { return now },
		OnRefuse: func() { refusals++ }})
	for i := range 3 {
		if w := th.Reserve("k"); w != 0 {
			t.Fatalf("attempt %d waits %s within the free attempts", i+1, w)
		}
	}
	for _, tc := range []struct {
		name    string
		advance time.Duration
		want    time.Duration
	}{
		{"after the free attempts: 1s", 0, time.Second},
		{"half way", 500 * time.Millisecond, 500 * time.Millisecond},
		{"waited: counted, next wait doubles", 500 * time.Millisecond, 0},
		{"doubled", 0, 2 * time.Second},
		{"4s", 2 * time.Second, 0},
		{"then 4s", 0, 4 * time.Second},
		{"8s", 4 * time.Second, 0},
		{"capped at max", 0, 8 * time.Second},
		{"capped still", 8 * time.Second, 0},
		{"capped again", 0, 8 * time.Second},
		{"forgotten after the window", 2 * time.Hour, 0},
		{"fresh after the window", 0, 0},
	} {
		now = now.Add(tc.advance)
		if got := th.Reserve("k"); got != tc.want {
			t.Fatalf("%s: Reserve waits %s, want %s", tc.name, got, tc.want)
		}
	}
	if w := th.Reserve("other"); w != 0 {
		t.Fatalf("another key waits %s", w)
	}
	// Every Reserve above that had to wait was one trip (6 rows want a wait).
	if refusals != 6 {
		t.Errorf("OnRefuse called %d times, want 6", refusals)
	}
	th.Reset("k")
	if th.Failures("k") != 0 {
		t.Fatal("Reset kept failures")
	}
	th.Reserve("k")
	th.Release("k")
	if th.Failures("k") != 0 || th.Len() != 1 {
		t.Fatalf("Release did not give back the attempt: %d failures, %d keys", th.Failures("k"), th.Len())
	}
}

// A flood of fresh keys stays within Size and does not evict the key
// under attack.
func TestThrottleBoundedUnderFlood(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	th := NewThrottle(ThrottleOptions{Free: 5, Base: time.Minute, Max: time.Hour, Size: 100, Now: func() time.Time { return now }})
	for range 6 {
		th.Fail("victim")
	}
	for i := range 10000 {
		th.Reserve(fmt.Sprint("random-", i))
		if th.Len() > 100 {
			t.Fatalf("table grew to %d keys, bound 100", th.Len())
		}
	}
	if w := th.Wait("victim"); w <= 0 {
		t.Fatalf("the throttled key was evicted by the flood (wait %s)", w)
	}
}

func TestAddressKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"1.2.3.4:5678", "1.2.3.4"},
		{"1.2.3.4", "1.2.3.4"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:443", "2001:db8:1:2::/64"},
		{"[::ffff:1.2.3.4]:1", "1.2.3.4"},
		{"garbage", "unknown"},
		{"", "unknown"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := AddressKey(tc.in); got != tc.want {
				t.Fatalf("AddressKey(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// countingShared records the calls a Throttle makes to its Shared store.
type countingShared struct {
	mu           sync.Mutex
	adds, resets []string
}

func (c *countingShared) Add(_ context.Context, key string, delta int, _ time.Time, _ time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.adds = append(c.adds, fmt.Sprintf("%s%+d", key, delta))
	return nil
}

func (c *countingShared) Reset(_ context.Context, key string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resets = append(c.resets, key)
	return nil
}

// TestThrottleShared: every counted failure and give-back is written to
// the shared store; a success writes only when this node knows of
// failures (the common success costs no store call); Observe replaces the
// local count with the cluster's.
func TestThrottleShared(t *testing.T) {
	sh := &countingShared{}
	th := NewThrottle(ThrottleOptions{Free: 2, Base: time.Minute, Shared: sh})
	th.Reset("clean") // no failures known: no store call
	th.Fail("a")
	if w := th.Reserve("a"); w != 0 {
		t.Fatalf("reserve: wait %v", w)
	}
	th.Release("a")
	th.Reset("a")
	th.Release("never-reserved")
	if got, want := fmt.Sprint(sh.adds), "[a+1 a+1 a-1]"; got != want {
		t.Errorf("adds %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(sh.resets), "[a]"; got != want {
		t.Errorf("resets %s, want %s", got, want)
	}
	th.Observe("b", 5, time.Now())
	if th.Failures("b") != 5 || th.Wait("b") <= 0 {
		t.Errorf("after Observe(b, 5): failures %d wait %v", th.Failures("b"), th.Wait("b"))
	}
	th.Observe("b", 0, time.Time{})
	if th.Failures("b") != 0 || th.Wait("b") != 0 {
		t.Errorf("after Observe(b, 0): failures %d wait %v", th.Failures("b"), th.Wait("b"))
	}
}
