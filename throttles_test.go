package flowd

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/flowd/flowd/passhash"
	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/store/memstore"
)

// followThrottles runs what the app's feed hook does for one node: every
// throttle record change reaches s.changed, in order.
func followThrottles(t *testing.T, s *sharedThrottles) {
	t.Helper()
	rev, err := s.st.Rev(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	h := s.hook()
	ch, err := s.st.Watch(t.Context(), rev, h.Match)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for ev := range ch {
			if ev.Err != nil {
				return
			}
			for _, c := range ev.Changes {
				h.Changed(context.Background(), c)
			}
		}
	}()
}

// TestSharedThrottlesAddUp: three nodes (handles of one in-memory store
// standing in for the cluster) each count one failure of the same key;
// every node then holds all three and makes the key wait; a success on one
// node forgets the key everywhere. Keys the store could not name (NUL)
// work too.
func TestSharedThrottlesAddUp(t *testing.T) {
	for _, key := range []string{"203.0.113.7", "\x00malformed", "client/with/slashes"} {
		t.Run(key, func(t *testing.T) {
			st := memstore.MustNew(t, memstore.Options{})
			opts := passhash.ThrottleOptions{Free: 3, Base: time.Minute, Max: time.Hour}
			var nodes []*passhash.Throttle
			for range 3 {
				s := &sharedThrottles{st: st.Node(), log: slog.New(slog.DiscardHandler), byName: map[string]*passhash.Throttle{}}
				followThrottles(t, s)
				nodes = append(nodes, s.throttle("test", opts))
			}
			for i, n := range nodes {
				if w := n.Wait(key); w != 0 {
					t.Fatalf("node %d waits %v before failure %d", i, w, i+1)
				}
				n.Fail(key)
			}
			for i, n := range nodes {
				waitUntil(t, func() bool { return n.Failures(key) == 3 })
				if w := n.Wait(key); w <= 0 || w > time.Minute {
					t.Errorf("node %d: wait %v after 3 failures spread over 3 nodes (Free 3), want up to 1m", i, w)
				}
			}
			nodes[1].Reset(key)
			for i, n := range nodes {
				waitUntil(t, func() bool { return n.Failures(key) == 0 })
				if w := n.Wait(key); w != 0 {
					t.Errorf("node %d: wait %v after a success on node 1", i, w)
				}
			}
		})
	}
}

// TestSharedThrottlesStoreDown: when the store refuses, a node keeps
// counting on its own (and says so), so a throttle never fails open
// for the node that saw the failures.
func TestSharedThrottlesStoreDown(t *testing.T) {
	st := memstore.MustNew(t, memstore.Options{})
	var errs []error
	t1 := passhash.NewThrottle(passhash.ThrottleOptions{Free: 2, Base: time.Minute,
		Shared: throttleRecords{st: st, name: "test"}, OnSharedError: func(err error) { errs = append(errs, err) }})
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	t1.Fail("k")
	t1.Fail("k")
	if w := t1.Wait("k"); w <= 0 {
		t.Errorf("wait %v after 2 local failures with the store closed", w)
	}
	if len(errs) != 2 {
		t.Errorf("%d shared errors reported, want 2: %v", len(errs), errs)
	}
}

// TestSharedThrottlesOnlyOnClusterStores: a store that keeps records until
// deleted gets in-memory throttles (no record per failure left behind).
func TestSharedThrottlesOnlyOnClusterStores(t *testing.T) {
	var st store.Store = memstore.MustNew(t, memstore.Options{})
	if s := newSharedThrottles(st, slog.Default()); s != nil {
		t.Fatal("shared throttles on a store without expiry")
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met after 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
