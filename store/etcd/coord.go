package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/flowd/flowd/store"
)

// The coordinator is etcd's concurrency package on one session per store
// handle: a lease kept alive while the handle lives. Elections, locks and
// the node entry hang off that lease, so a node that dies without
// resigning loses them when the lease expires (Options.SessionTTL).
//
//	<p>/v1/election/<role>/<lease id>   concurrency.Election (lowest create revision leads)
//	<p>/v1/locks/<name>/<lease id>      concurrency.Mutex
//	<p>/v1/nodes/<node id>              JSON NodeInfo, under the session lease
//
// Fencing: a leadership's fenced context makes every write of the store
// also compare the leader key's CreateRevision in the same transaction, so
// a write made after the key is gone (resigned, or the lease expired while
// this node was paused or cut off) fails with store.ErrFenced.
type coordinator struct {
	mu     sync.Mutex
	sess   *concurrency.Session
	ctx    context.Context // ends with the store; the session lives in it
	cancel context.CancelFunc
	locals map[string]chan struct{} // per lock name: one holder per handle
	node   *store.NodeInfo          // registered entry
	leads  map[*leadership]struct{}
}

func (c *coordinator) init() {
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.locals = map[string]chan struct{}{}
	c.leads = map[*leadership]struct{}{}
}

// session returns the live session, starting a new one when the last
// expired. The lease is granted with a deadline, so a node cut off from
// etcd fails fast here too.
func (s *Store) session(ctx context.Context) (*concurrency.Session, error) {
	c := &s.coord
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess != nil {
		select {
		case <-c.sess.Done():
			c.sess = nil
		default:
			return c.sess, nil
		}
	}
	var lease *clientv3.LeaseGrantResponse
	err := s.call(ctx, func(ctx context.Context) (err error) {
		lease, err = s.cli.Grant(ctx, int64(s.ttl.Seconds()))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("start session: %w", err)
	}
	sess, err := concurrency.NewSession(s.cli, concurrency.WithLease(lease.ID), concurrency.WithContext(c.ctx))
	if err != nil {
		return nil, fmt.Errorf("start session: %w", s.mapErr(ctx, err))
	}
	c.sess = sess
	if c.node != nil {
		// The registry entry went with the old lease: put it back.
		b, _ := json.Marshal(c.node)
		err := s.call(ctx, func(ctx context.Context) error {
			_, err := s.cli.Put(ctx, s.key("nodes", c.node.ID), string(b), clientv3.WithLease(sess.Lease()))
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("register node again on a new session: %w", err)
		}
	}
	return sess, nil
}

// waitCtx is ctx, also cancelled when the store closes: Campaign and Lock
// wait without a deadline and must not outlive the handle.
func (s *Store) waitCtx(ctx context.Context) (context.Context, func()) {
	wctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.coord.ctx, cancel)
	return wctx, func() { stop(); cancel() }
}

// waitErr maps the error of a wait that the store's Close may have ended.
func (s *Store) waitErr(ctx context.Context, err error) error {
	if ctx.Err() == nil && s.coord.ctx.Err() != nil {
		return store.ErrClosed
	}
	return s.mapErr(ctx, err)
}

// closeCoord ends every leadership and the session (revoking its lease:
// the registry entry and locks go at once).
func (s *Store) closeCoord() {
	c := &s.coord
	c.mu.Lock()
	sess := c.sess
	c.sess = nil
	leads := make([]*leadership, 0, len(c.leads))
	for l := range c.leads {
		leads = append(leads, l)
	}
	c.mu.Unlock()
	for _, l := range leads {
		l.lose()
	}
	if sess != nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		_, _ = s.cli.Revoke(clientv3.WithRequireLeader(ctx), sess.Lease())
		cancel()
	}
	c.cancel()
}

// alive refuses calls on a closed store without holding the store's lock
// (Campaign and Lock block for long).
func (s *Store) alive(ctx context.Context) error {
	release, err := s.enter(ctx)
	if err != nil {
		return err
	}
	release()
	return nil
}

// leadership is a won election.
type leadership struct {
	s    *Store
	role string
	e    *concurrency.Election
	f    *fence
	once sync.Once
}

// fence is what a fenced context carries: the leader key and its create
// revision, compared inside every write.
type fence struct {
	s    *Store
	role string
	key  string
	rev  int64
	lost chan struct{}
}

func (f *fence) Role() string          { return f.role }
func (f *fence) Lost() <-chan struct{} { return f.lost }

func (l *leadership) Role() string          { return l.role }
func (l *leadership) Done() <-chan struct{} { return l.f.lost }
func (l *leadership) Fenced(ctx context.Context) context.Context {
	return store.WithFence(ctx, l.f)
}

// Resign deletes the leader key (another candidate takes over at once)
// and closes Done. Safe to call more than once.
func (l *leadership) Resign(ctx context.Context) error {
	select {
	case <-l.f.lost:
		return nil
	default:
	}
	err := l.s.call(ctx, func(ctx context.Context) error { return l.e.Resign(ctx) })
	l.lose()
	if err != nil && !errors.Is(err, store.ErrClosed) {
		return fmt.Errorf("store: resign %s: %w", q(l.role), err)
	}
	return nil
}

func (l *leadership) lose() {
	l.once.Do(func() {
		close(l.f.lost)
		c := &l.s.coord
		c.mu.Lock()
		delete(c.leads, l)
		c.mu.Unlock()
	})
}

// Campaign blocks until this handle leads role or ctx ends.
func (s *Store) Campaign(ctx context.Context, role string) (store.Leadership, error) {
	if err := store.CheckName("role", role, store.MaxNameLen); err != nil {
		return nil, fmt.Errorf("store: campaign: %w", err)
	}
	if err := s.alive(ctx); err != nil {
		return nil, fmt.Errorf("store: campaign %s: %w", q(role), err)
	}
	sess, err := s.session(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: campaign %s: %w", q(role), err)
	}
	e := concurrency.NewElection(sess, s.prefix("election", role))
	// No per-call deadline: waiting for the role is the point. The
	// require-leader context still fails the wait when etcd has no leader.
	wctx, done := s.waitCtx(ctx)
	err = e.Campaign(clientv3.WithRequireLeader(wctx), s.nodeID())
	done()
	if err != nil {
		return nil, fmt.Errorf("store: campaign %s: %w", q(role), s.waitErr(ctx, err))
	}
	l := &leadership{s: s, role: role, e: e, f: &fence{s: s, role: role, key: e.Key(), rev: e.Rev(), lost: make(chan struct{})}}
	c := &s.coord
	c.mu.Lock()
	c.leads[l] = struct{}{}
	c.mu.Unlock()
	go func() {
		select {
		case <-sess.Done():
			l.lose()
		case <-l.f.lost:
		}
	}()
	return l, nil
}

func (s *Store) nodeID() string {
	c := &s.coord
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.node != nil {
		return c.node.ID
	}
	return "unregistered"
}

// local takes the handle's own hold on a lock name: etcd's mutex is keyed
// by the session's lease, so two Locks through one session would both
// "hold" it. wait false: ErrLockHeld instead of waiting.
func (s *Store) local(ctx context.Context, name string, wait bool) (release func(), err error) {
	c := &s.coord
	c.mu.Lock()
	ch, ok := c.locals[name]
	if !ok {
		ch = make(chan struct{}, 1)
		c.locals[name] = ch
	}
	c.mu.Unlock()
	if !wait {
		select {
		case ch <- struct{}{}:
		default:
			return nil, store.ErrLockHeld
		}
	} else {
		select {
		case ch <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return func() { <-ch }, nil
}

// Lock takes a cluster-wide mutex, waiting until ctx ends.
func (s *Store) Lock(ctx context.Context, name string) (func(context.Context) error, error) {
	return s.lock(ctx, name, true)
}

// TryLock is Lock without waiting: ErrLockHeld when someone holds it.
func (s *Store) TryLock(ctx context.Context, name string) (func(context.Context) error, error) {
	return s.lock(ctx, name, false)
}

func (s *Store) lock(ctx context.Context, name string, wait bool) (func(context.Context) error, error) {
	if err := store.CheckName("lock name", name, store.MaxNameLen); err != nil {
		return nil, fmt.Errorf("store: lock: %w", err)
	}
	fail := func(err error) (func(context.Context) error, error) {
		return nil, fmt.Errorf("store: lock %s: %w", q(name), err)
	}
	if err := s.alive(ctx); err != nil {
		return fail(err)
	}
	release, err := s.local(ctx, name, wait)
	if err != nil {
		return fail(err)
	}
	sess, err := s.session(ctx)
	if err != nil {
		release()
		return fail(err)
	}
	m := concurrency.NewMutex(sess, s.prefix("locks", name))
	if wait {
		wctx, done := s.waitCtx(ctx)
		err = m.Lock(clientv3.WithRequireLeader(wctx))
		done()
		if err != nil {
			err = s.waitErr(ctx, err)
		}
	} else {
		err = s.call(ctx, func(ctx context.Context) error { return m.TryLock(ctx) })
		if errors.Is(err, concurrency.ErrLocked) {
			err = store.ErrLockHeld
		}
	}
	if err != nil {
		release()
		return fail(err)
	}
	var once sync.Once
	unlock := func(ctx context.Context) error {
		var err error
		once.Do(func() {
			defer release()
			err = s.call(ctx, func(ctx context.Context) error { return m.Unlock(ctx) })
			if errors.Is(err, store.ErrClosed) {
				err = nil // Close revoked the session, which freed the lock
			}
		})
		if err != nil {
			return fmt.Errorf("store: unlock %s: %w", q(name), err)
		}
		return nil
	}
	return unlock, nil
}

// Register publishes this handle's node under the session lease.
func (s *Store) Register(ctx context.Context, n store.NodeInfo) error {
	if err := store.CheckName("node id", n.ID, store.MaxNameLen); err != nil {
		return fmt.Errorf("store: register node: %w", err)
	}
	if err := s.alive(ctx); err != nil {
		return fmt.Errorf("store: register node: %w", err)
	}
	c := &s.coord
	c.mu.Lock()
	if c.node != nil {
		n.Applied, n.Gen, n.Problems = c.node.Applied, c.node.Gen, c.node.Problems
	}
	c.mu.Unlock()
	if err := s.putNode(ctx, n); err != nil {
		return fmt.Errorf("store: register node %s: %w", q(n.ID), err)
	}
	return nil
}

// putNode writes n under the session lease, removing an earlier entry of
// this handle under another id.
func (s *Store) putNode(ctx context.Context, n store.NodeInfo) error {
	sess, err := s.session(ctx)
	if err != nil {
		return err
	}
	n.Updated = normTime(s.now())
	n.Problems = maps(n.Problems)
	b, err := json.Marshal(n)
	if err != nil {
		return err
	}
	if len(b) > MaxValueBytes {
		return fmt.Errorf("node entry is %d bytes, more than %d: %w", len(b), MaxValueBytes, store.ErrInvalid)
	}
	c := &s.coord
	c.mu.Lock()
	prev := c.node
	c.mu.Unlock()
	k := s.key("nodes", n.ID)
	ops := []clientv3.Op{clientv3.OpPut(k, string(b), clientv3.WithLease(sess.Lease()))}
	if prev != nil && prev.ID != n.ID {
		ops = append(ops, clientv3.OpDelete(s.key("nodes", prev.ID)))
	}
	// The id is free, or the entry is this handle's own (its lease).
	var resp *clientv3.TxnResponse
	err = s.call(ctx, func(ctx context.Context) (err error) {
		resp, err = s.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).Then(ops...).Else(clientv3.OpGet(k)).Commit()
		if err != nil || resp.Succeeded {
			return err
		}
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) > 0 && clientv3.LeaseID(kvs[0].Lease) != sess.Lease() {
			return nil
		}
		resp, err = s.cli.Txn(ctx).If(clientv3.Compare(clientv3.LeaseValue(k), "=", sess.Lease())).Then(ops...).Commit()
		return err
	})
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		return fmt.Errorf("node id %s is registered by another live node: %w", q(n.ID), store.ErrConflict)
	}
	c.mu.Lock()
	c.node = &n
	c.mu.Unlock()
	return nil
}

func maps(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Nodes lists the live nodes sorted by ID.
func (s *Store) Nodes(ctx context.Context) ([]store.NodeInfo, error) {
	var resp *clientv3.GetResponse
	err := s.call(ctx, func(ctx context.Context) (err error) {
		resp, err = s.cli.Get(ctx, s.root+"nodes/", clientv3.WithPrefix())
		return err
	})
	out := []store.NodeInfo{}
	if err == nil {
		for _, kv := range resp.Kvs {
			var n store.NodeInfo
			if jerr := json.Unmarshal(kv.Value, &n); jerr != nil {
				err = fmt.Errorf("node entry %q: %w", kv.Key, errCorrupt)
				break
			}
			n.Updated = normTime(n.Updated)
			out = append(out, n)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("store: list nodes: %w", err)
	}
	slices.SortFunc(out, func(a, b store.NodeInfo) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// SetApplied records what this handle's node has applied.
func (s *Store) SetApplied(ctx context.Context, rev, gen int64, problems map[string]string) error {
	if err := s.alive(ctx); err != nil {
		return fmt.Errorf("store: set applied: %w", err)
	}
	c := &s.coord
	c.mu.Lock()
	var n store.NodeInfo
	registered := c.node != nil
	if registered {
		n = *c.node
	}
	c.mu.Unlock()
	if !registered {
		return fmt.Errorf("store: set applied: node not registered: %w", store.ErrNotFound)
	}
	n.Applied, n.Gen, n.Problems = rev, gen, problems
	if err := s.putNode(ctx, n); err != nil {
		return fmt.Errorf("store: set applied of node %s: %w", q(n.ID), err)
	}
	return nil
}

// SetNodeData writes one record of this handle's node under its session
// lease: when the node closes or its lease expires, etcd drops it.
func (s *Store) SetNodeData(ctx context.Context, name string, val []byte) error {
	if err := store.CheckNodeData(name, val); err != nil {
		return err
	}
	if err := s.alive(ctx); err != nil {
		return fmt.Errorf("store: node data: %w", err)
	}
	c := &s.coord
	c.mu.Lock()
	var id string
	if c.node != nil {
		id = c.node.ID
	}
	c.mu.Unlock()
	if id == "" {
		return fmt.Errorf("store: node data %s: node not registered: %w", q(name), store.ErrNotFound)
	}
	sess, err := s.session(ctx)
	if err != nil {
		return fmt.Errorf("store: node data %s: %w", q(name), err)
	}
	k := s.key("nodedata", name, id)
	err = s.call(ctx, func(ctx context.Context) error {
		_, err := s.cli.Put(ctx, k, string(val), clientv3.WithLease(sess.Lease()))
		return err
	})
	if err != nil {
		return fmt.Errorf("store: node data %s of node %s: %w", q(name), q(id), err)
	}
	return nil
}

// NodeData returns name's record of every live node, by node id.
func (s *Store) NodeData(ctx context.Context, name string) (map[string][]byte, error) {
	if err := store.CheckName("node data name", name, store.MaxNameLen); err != nil {
		return nil, fmt.Errorf("store: node data: %w", err)
	}
	p := s.prefix("nodedata", name)
	var resp *clientv3.GetResponse
	err := s.call(ctx, func(ctx context.Context) (err error) {
		resp, err = s.cli.Get(ctx, p, clientv3.WithPrefix())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: node data %s: %w", q(name), err)
	}
	out := make(map[string][]byte, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		id, err := unesc(strings.TrimPrefix(string(kv.Key), p))
		if err != nil {
			return nil, fmt.Errorf("store: node data key %q: %w", kv.Key, errCorrupt)
		}
		out[id] = kv.Value
	}
	return out, nil
}
