package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/store/etcd"
	"github.com/flowd/flowd/store/etcd/etcdtest"
)

// next returns the next event that carries changes or an error, skipping
// progress notices.
func next(t *testing.T, ch <-chan store.FeedEvent) store.FeedEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("feed closed")
			}
			if len(ev.Changes) > 0 || ev.Err != nil {
				return ev
			}
		case <-ctx.Done():
			t.Fatal("no feed event within 20s")
		}
	}
}

func changeString(cs []store.Change) string {
	var out []string
	for _, c := range cs {
		s := c.Kind.String() + " " + c.Group
		if c.Name != "" {
			s += "/" + c.Name
		}
		if c.Deleted {
			s += " deleted"
		}
		out = append(out, s)
	}
	return fmt.Sprint(out)
}

func TestFeed(t *testing.T) {
	cli := newClient(t, etcdtest.Endpoint(t))
	s := open(t, cli, randomPrefix(), randomKey())
	defer s.Close()
	ctx := t.Context()
	rev0, err := s.Rev(ctx)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		do   func() error
		want string
	}{
		{"put flow", func() error { _, err := s.PutFlow(ctx, "f/1", []byte("{}"), store.AnyRev); return err }, "[flow f/1]"},
		{"deploy", func() error { _, err := s.AddVersion(ctx, "f/1", []byte("{}"), ""); return err }, "[flow f/1 deploy f/1]"},
		{"kv", func() error { return s.SetKV(ctx, "vars/f", "a/b", []byte("1")) }, "[kv vars/f/a/b]"},
		{"secret", func() error {
			return s.UpdateSecret(ctx, "keyset", "main", func([]byte) ([]byte, error) { return []byte("k"), nil })
		}, "[secret keyset/main]"},
		{"kv delete", func() error { return s.DeleteKV(ctx, "vars/f", "a/b") }, "[kv vars/f/a/b deleted]"},
		{"delete deployed flow", func() error { return s.DeleteFlow(ctx, "f/1", store.AnyRev) }, "[flow f/1 deleted deploy f/1 deleted]"},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
	}

	ch, err := s.Watch(ctx, rev0, store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	last := rev0
	for _, st := range steps {
		ev := next(t, ch)
		if got := changeString(ev.Changes); got != st.want || ev.Err != nil || ev.Rev <= last {
			t.Errorf("%s: event rev %d (after %d) %s, err %v; want %s", st.name, ev.Rev, last, got, ev.Err, st.want)
		}
		last = ev.Rev
	}

	// A filter on deploys sees only them; resuming from a revision skips
	// what came before it.
	deploys, err := s.Watch(ctx, rev0, store.Filter{Kinds: []store.Kind{store.KindDeploy}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"[deploy f/1]", "[deploy f/1 deleted]"} {
		if got := changeString(next(t, deploys).Changes); got != want {
			t.Errorf("deploy filter: %s, want %s", got, want)
		}
	}

	// Quiet store: progress notices keep coming (the health signal).
	quiet, err := s.Watch(ctx, last, store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-quiet:
		if len(ev.Changes) != 0 || ev.Err != nil || ev.Rev < last {
			t.Errorf("first event on a quiet feed = %+v, want a progress notice at >= %d", ev, last)
		}
	case <-time.After(20 * time.Second):
		t.Error("no progress notice on a quiet feed within 20s")
	}

	cur, _ := s.Rev(ctx)
	if _, err := s.Watch(ctx, cur+1000, store.Filter{}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("Watch from a future revision: %v, want ErrInvalid", err)
	}

	// Close ends every watch with ErrClosed.
	_ = s.Close()
	for {
		ev, ok := <-quiet
		if !ok {
			t.Fatal("watch closed without saying why")
		}
		if ev.Err != nil {
			if !errors.Is(ev.Err, store.ErrClosed) {
				t.Errorf("watch ended with %v, want ErrClosed", ev.Err)
			}
			break
		}
	}
}

func TestCoordinator(t *testing.T) {
	endpoint := etcdtest.Endpoint(t)
	cli := newClient(t, endpoint)
	prefix := randomPrefix()
	key := randomKey()
	a := open(t, cli, prefix, key)
	defer a.Close()
	b := open(t, cli, prefix, key)
	defer b.Close()
	ctx := t.Context()

	t.Run("election and fencing", func(t *testing.T) {
		la, err := a.Campaign(ctx, "scheduler")
		if err != nil {
			t.Fatal(err)
		}
		won := make(chan store.Leadership, 1)
		go func() {
			lb, err := b.Campaign(ctx, "scheduler")
			if err != nil {
				t.Errorf("b.Campaign: %v", err)
			}
			won <- lb
		}()
		if err := a.SetKV(la.Fenced(ctx), "sched", "tick", []byte("a")); err != nil {
			t.Fatalf("fenced write of the leader: %v", err)
		}
		select {
		case <-won:
			t.Fatal("b won while a leads")
		default:
		}
		if err := la.Resign(ctx); err != nil {
			t.Fatal(err)
		}
		var lb store.Leadership
		select {
		case lb = <-won:
		case <-time.After(20 * time.Second):
			t.Fatal("b did not win after a resigned")
		}
		select {
		case <-la.Done():
		default:
			t.Error("a's Done is open after Resign")
		}
		err = a.SetKV(la.Fenced(ctx), "sched", "tick", []byte("stale a"))
		if !errors.Is(err, store.ErrFenced) {
			t.Errorf("fenced write after resign: %v, want ErrFenced", err)
		}
		err = a.UpdateKV(la.Fenced(ctx), "sched", "tick", func([]byte) ([]byte, error) { return []byte("stale a"), nil })
		if !errors.Is(err, store.ErrFenced) {
			t.Errorf("fenced update after resign: %v, want ErrFenced", err)
		}
		if err := b.SetKV(lb.Fenced(ctx), "sched", "tick", []byte("b")); err != nil {
			t.Errorf("fenced write of the new leader: %v", err)
		}
		// A's fence on B's handle is not B's to honour.
		if err := b.SetKV(la.Fenced(ctx), "sched", "tick", []byte("x")); !errors.Is(err, store.ErrFenced) {
			t.Errorf("write under another handle's fence: %v, want ErrFenced", err)
		}
		if v, err := a.GetKV(ctx, "sched", "tick"); err != nil || string(v) != "b" {
			t.Errorf("tick = %q, %v; want b (stale writes changed nothing)", v, err)
		}
		_ = lb.Resign(ctx)
	})

	t.Run("leader dies without resigning", func(t *testing.T) {
		deadCli := newClient(t, endpoint)
		dead := open(t, deadCli, prefix, key)
		ld, err := dead.Campaign(ctx, "cron")
		if err != nil {
			t.Fatal(err)
		}
		won := make(chan error, 1)
		go func() {
			lb, err := b.Campaign(ctx, "cron")
			if err == nil {
				defer lb.Resign(context.Background())
				err = b.SetKV(lb.Fenced(ctx), "cron", "owner", []byte("b"))
			}
			won <- err
		}()
		// The node vanishes: its client closes, nobody revokes its lease.
		start := time.Now()
		_ = deadCli.Close()
		defer func() { t.Logf("took over %s after the leader died", time.Since(start).Round(time.Millisecond)) }()
		doneWithin(t, won, 30*time.Second, "b taking over after the leader died (session TTL 2s)")
		select {
		case <-ld.Done():
		case <-time.After(10 * time.Second):
			t.Error("the dead leader's Done stayed open")
		}
	})

	t.Run("locks", func(t *testing.T) {
		unlock, err := a.Lock(ctx, "examples")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.TryLock(ctx, "examples"); !errors.Is(err, store.ErrLockHeld) {
			t.Errorf("b.TryLock of a held lock: %v, want ErrLockHeld", err)
		}
		if _, err := a.TryLock(ctx, "examples"); !errors.Is(err, store.ErrLockHeld) {
			t.Errorf("a.TryLock of its own held lock: %v, want ErrLockHeld (not reentrant)", err)
		}
		got := make(chan error, 1)
		go func() {
			u, err := b.Lock(ctx, "examples")
			if err == nil {
				err = u(ctx)
			}
			got <- err
		}()
		if err := unlock(ctx); err != nil {
			t.Fatal(err)
		}
		if err := unlock(ctx); err != nil {
			t.Errorf("second unlock: %v", err)
		}
		doneWithin(t, got, 20*time.Second, "b.Lock after a unlocked")
	})

	t.Run("registry", func(t *testing.T) {
		c := open(t, cli, prefix, key)
		if err := c.SetApplied(ctx, 1, 1, nil); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("SetApplied before Register: %v, want ErrNotFound", err)
		}
		for _, n := range []struct {
			s  *etcd.Store
			id string
		}{{a, "node-a"}, {b, "node-b"}, {c, "node-c"}} {
			if err := n.s.Register(ctx, store.NodeInfo{ID: n.id, Addr: "127.0.0.1:1", Version: "test"}); err != nil {
				t.Fatal(err)
			}
		}
		if err := a.SetApplied(ctx, 42, 9, map[string]string{"f": "route taken"}); err != nil {
			t.Fatal(err)
		}
		nodes, err := b.Nodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, n := range nodes {
			ids = append(ids, n.ID)
			if n.ID == "node-a" && (n.Applied != 42 || n.Gen != 9 || n.Problems["f"] != "route taken" || n.Updated.IsZero()) {
				t.Errorf("node-a = %+v, want applied 42 with its problem", n)
			}
		}
		if want := []string{"node-a", "node-b", "node-c"}; !slices.Equal(ids, want) {
			t.Errorf("Nodes = %q, want %q", ids, want)
		}
		_ = c.Close()
		nodes, _ = b.Nodes(ctx)
		if len(nodes) != 2 {
			t.Errorf("after node-c closed: %d nodes, want 2", len(nodes))
		}
	})
}

func TestExpiry(t *testing.T) {
	cli := newClient(t, etcdtest.Endpoint(t))
	s := open(t, cli, randomPrefix(), randomKey())
	defer s.Close()
	etcd.SetMinExpiry(s, 2*time.Second)
	ctx := t.Context()
	past := time.Now().Add(-time.Hour)
	later := time.Now().Add(time.Hour)
	if err := s.CreateKVUntil(ctx, "oidc_codes", "due", []byte("x"), past); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateKVUntil(ctx, "oidc_codes", "due", []byte("y"), past); !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateKVUntil of an existing key: %v, want ErrConflict", err)
	}
	if err := s.UpdateKVUntil(ctx, "oidc_codes", "kept", later, func([]byte) ([]byte, error) { return []byte("1"), nil }); err != nil {
		t.Fatal(err)
	}
	// A plain update keeps the record's expiry.
	if err := s.UpdateKV(ctx, "oidc_codes", "due", func(old []byte) ([]byte, error) { return append(old, '!'), nil }); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := s.GetKV(ctx, "oidc_codes", "due")
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("record due an hour ago still there after 30s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if v, err := s.GetKV(ctx, "oidc_codes", "kept"); err != nil || string(v) != "1" {
		t.Errorf("record due in an hour = %q, %v", v, err)
	}
	if err := s.CreateKVUntil(ctx, "ns", "k", nil, time.Time{}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("zero expiry: %v, want ErrInvalid", err)
	}
}

// TestUnavailable freezes the etcd process (SIGSTOP), as if this node were
// cut off: calls fail with ErrUnavailable at their own deadline, not the
// caller's, and work again once it resumes (SIGCONT), with no reopen.
func TestUnavailable(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := newClient(t, srv.Endpoint)
	s := open(t, cli, randomPrefix(), randomKey(), func(o *etcd.Options) {
		o.CallTimeout = 300 * time.Millisecond
		o.FeedStaleAfter = time.Second
	})
	defer s.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := s.SetKV(ctx, "ns", "k", []byte("0")); err != nil {
		t.Fatal(err)
	}
	rev, _ := s.Rev(ctx)
	feed, err := s.Watch(ctx, rev, store.Filter{})
	if err != nil {
		t.Fatal(err)
	}

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	defer srv.Continue()
	calls := []struct {
		name string
		fn   func() error
	}{
		{"GetKV", func() error { _, err := s.GetKV(ctx, "ns", "k"); return err }},
		{"SetKV", func() error { return s.SetKV(ctx, "ns", "k", []byte("x")) }},
		{"UpdateKV", func() error {
			return s.UpdateKV(ctx, "ns", "k", func([]byte) ([]byte, error) { return []byte("x"), nil })
		}},
		{"GetFlow", func() error { _, err := s.GetFlow(ctx, "f"); return err }},
		{"Rev", func() error { _, err := s.Rev(ctx); return err }},
		{"TryLock", func() error { _, err := s.TryLock(ctx, "l"); return err }},
	}
	for _, c := range calls {
		start := time.Now()
		err := c.fn()
		t.Logf("%s with etcd stopped: %v after %s", c.name, err, time.Since(start).Round(time.Millisecond))
		if !errors.Is(err, store.ErrUnavailable) || ctx.Err() != nil {
			t.Errorf("%s with etcd stopped: %v, want ErrUnavailable from the call's own deadline", c.name, err)
		}
	}
	// The feed notices the silence and ends.
	ev := next(t, feed)
	if !errors.Is(ev.Err, store.ErrUnavailable) {
		t.Errorf("feed with etcd stopped: %+v, want ErrUnavailable", ev)
	}

	if err := srv.Continue(); err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	writesAgain(ctx, t, s, "SIGCONT")
}

// writesAgain checks that s, whose etcd was out of reach until now, takes
// a write again within 10 s (the client reconnects on its own) and reads
// it back.
func writesAgain(ctx context.Context, t *testing.T, s *etcd.Store, after string) {
	t.Helper()
	var err error
	for range 100 {
		if err = s.UpdateKV(ctx, "ns", "k", func([]byte) ([]byte, error) { return []byte("after"), nil }); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("UpdateKV after %s: %v", after, err)
	}
	if v, err := s.GetKV(ctx, "ns", "k"); err != nil || string(v) != "after" {
		t.Errorf("GetKV after %s = %q, %v; want after", after, v, err)
	}
}

// TestCompacted: a watch from a revision etcd compacted away fails at once
// with ErrCompacted, so the consumer re-lists.
func TestCompacted(t *testing.T) {
	srv := etcdtest.Start(t) // compaction is cluster-wide: not on a shared server
	cli := newClient(t, srv.Endpoint)
	s := open(t, cli, randomPrefix(), randomKey())
	defer s.Close()
	ctx := t.Context()
	rev0, _ := s.Rev(ctx)
	for i := range 3 {
		if err := s.SetKV(ctx, "ns", fmt.Sprint(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	cur, _ := s.Rev(ctx)
	if _, err := cli.Compact(ctx, cur); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Watch(ctx, rev0, store.Filter{}); !errors.Is(err, store.ErrCompacted) {
		t.Errorf("Watch from a compacted revision: %v, want ErrCompacted", err)
	}
	if _, err := s.Watch(ctx, cur, store.Filter{}); err != nil {
		t.Errorf("Watch from the compaction revision: %v", err)
	}
}

// TestLeaseRevoked: the shared leases a store caches (markers, expiry
// buckets) may be revoked behind its back; the next write grants new ones.
func TestLeaseRevoked(t *testing.T) {
	srv := etcdtest.Start(t) // revokes every lease: not on a shared server
	cli := newClient(t, srv.Endpoint)
	s := open(t, cli, randomPrefix(), randomKey())
	defer s.Close()
	ctx := t.Context()
	until := time.Now().Add(time.Hour)
	if err := s.SetKV(ctx, "ns", "k", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateKVUntil(ctx, "ns", "e1", nil, until); err != nil {
		t.Fatal(err)
	}
	leases, err := cli.Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leases.Leases {
		if _, err := cli.Revoke(ctx, l.ID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.GetKV(ctx, "ns", "e1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("record of a revoked lease: %v, want ErrNotFound", err)
	}
	if err := s.SetKV(ctx, "ns", "k", []byte("2")); err != nil {
		t.Errorf("SetKV after its marker lease was revoked: %v", err)
	}
	if err := s.CreateKVUntil(ctx, "ns", "e2", nil, until); err != nil {
		t.Errorf("CreateKVUntil after its expiry lease was revoked: %v", err)
	}
}

// doneWithin waits up to d for the result of what on ch: an error, or no
// result in time, fails the test.
func doneWithin(t *testing.T, ch <-chan error, d time.Duration, what string) {
	t.Helper()
	select {
	case err := <-ch:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(d):
		t.Fatalf("%s: not done within %s", what, d)
	}
}
