package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// CoordHub is the Coordinator state of backends whose nodes live in one
// process: bbolt (one handle, so it always leads) and memstore (several
// handles standing in for a cluster). Join makes a handle.
type CoordHub struct {
	mu    sync.Mutex
	now   func() time.Time
	roles map[string]*leadership
	locks map[string]*heldLock
	nodes map[*LocalCoordinator]NodeInfo
	data  map[*LocalCoordinator]map[string][]byte // SetNodeData records
}

// NewCoordHub returns an empty hub; now stamps NodeInfo.Updated (nil:
// time.Now).
func NewCoordHub(now func() time.Time) *CoordHub {
	if now == nil {
		now = time.Now
	}
	return &CoordHub{
		now:   now,
		roles: map[string]*leadership{},
		locks: map[string]*heldLock{},
		nodes: map[*LocalCoordinator]NodeInfo{},
		data:  map[*LocalCoordinator]map[string][]byte{},
	}
}

type heldLock struct {
	owner *LocalCoordinator
	freed chan struct{}
}

// LocalCoordinator is one handle's Coordinator on a CoordHub. Its backend
// calls HoldFence around every write and Close when the handle closes.
type LocalCoordinator struct {
	hub    *CoordHub
	closed bool          // under hub.mu
	done   chan struct{} // closed by Close: wakes this handle's waiters
}

// Join returns a new handle (a node) on the hub.
func (h *CoordHub) Join() *LocalCoordinator {
	return &LocalCoordinator{hub: h, done: make(chan struct{})}
}

var _ Coordinator = (*LocalCoordinator)(nil)

// leadership is a held role. fence is held shared by fenced writes in
// flight and exclusively by the loss, so a write either commits before the
// loss or fails after it.
type leadership struct {
	c     *LocalCoordinator
	role  string
	done  chan struct{}
	fence sync.RWMutex
	lost  bool // under fence
	once  sync.Once
}

func (l *leadership) Role() string                               { return l.role }
func (l *leadership) Done() <-chan struct{}                      { return l.done }
func (l *leadership) Lost() <-chan struct{}                      { return l.done }
func (l *leadership) Fenced(ctx context.Context) context.Context { return WithFence(ctx, l) }

func (l *leadership) Resign(context.Context) error {
	l.end()
	return nil
}

// end loses the leadership: waits for fenced writes in flight, then frees
// the role.
func (l *leadership) end() {
	l.once.Do(func() {
		l.fence.Lock()
		l.lost = true
		l.fence.Unlock()
		h := l.c.hub
		h.mu.Lock()
		if h.roles[l.role] == l {
			delete(h.roles, l.role)
		}
		h.mu.Unlock()
		close(l.done)
	})
}

func (c *LocalCoordinator) live() error {
	if c.closed {
		return ErrClosed
	}
	return nil
}

// locked holds the hub's lock for a call on this handle until unlock; a
// closed handle is ErrClosed.
func (c *LocalCoordinator) locked() (h *CoordHub, unlock func(), err error) {
	h = c.hub
	h.mu.Lock()
	if err := c.live(); err != nil {
		h.mu.Unlock()
		return nil, nil, err
	}
	return h, h.mu.Unlock, nil
}

// holder is what take puts in a hub map: a leadership or a held lock.
type holder interface {
	*leadership | *heldLock
	released() <-chan struct{}
}

func (l *leadership) released() <-chan struct{} { return l.done }
func (l *heldLock) released() <-chan struct{}   { return l.freed }

// take waits until name is free in held (one of the hub's maps), then puts
// fresh() there. A waiter wakes when the holder lets go, when this handle
// closes (then fails with ErrClosed) or when ctx ends. With wait false a
// held name fails at once with ErrLockHeld.
func take[H holder](ctx context.Context, c *LocalCoordinator, held map[string]H, name string, wait bool, fresh func() H) (H, error) {
	h := c.hub
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h.mu.Lock()
		if err := c.live(); err != nil {
			h.mu.Unlock()
			return nil, err
		}
		cur, ok := held[name]
		if !ok {
			l := fresh()
			held[name] = l
			h.mu.Unlock()
			return l, nil
		}
		h.mu.Unlock()
		if !wait {
			return nil, ErrLockHeld
		}
		select {
		case <-cur.released():
		case <-c.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Campaign waits until role is free, then takes it.
func (c *LocalCoordinator) Campaign(ctx context.Context, role string) (Leadership, error) {
	if err := CheckName("role", role, MaxNameLen); err != nil {
		return nil, fmt.Errorf("store: campaign: %w", err)
	}
	l, err := take(ctx, c, c.hub.roles, role, true, func() *leadership {
		return &leadership{c: c, role: role, done: make(chan struct{})}
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// Lock waits for the named lock.
func (c *LocalCoordinator) Lock(ctx context.Context, name string) (func(context.Context) error, error) {
	return c.lock(ctx, name, true)
}

// TryLock takes the named lock or fails with ErrLockHeld.
func (c *LocalCoordinator) TryLock(ctx context.Context, name string) (func(context.Context) error, error) {
	return c.lock(ctx, name, false)
}

func (c *LocalCoordinator) lock(ctx context.Context, name string, wait bool) (func(context.Context) error, error) {
	if err := CheckName("lock name", name, MaxNameLen); err != nil {
		return nil, fmt.Errorf("store: lock: %w", err)
	}
	l, err := take(ctx, c, c.hub.locks, name, wait, func() *heldLock {
		return &heldLock{owner: c, freed: make(chan struct{})}
	})
	if errors.Is(err, ErrLockHeld) {
		return nil, fmt.Errorf("store: lock %s: %w", Quote(name), err)
	}
	if err != nil {
		return nil, err
	}
	var once sync.Once
	return func(context.Context) error {
		once.Do(func() { c.hub.unlock(name, l) })
		return nil
	}, nil
}

func (h *CoordHub) unlock(name string, l *heldLock) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.locks[name] == l {
		delete(h.locks, name)
		close(l.freed)
	}
}

// Register records this handle's node.
func (c *LocalCoordinator) Register(ctx context.Context, n NodeInfo) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := CheckName("node id", n.ID, MaxNameLen); err != nil {
		return fmt.Errorf("store: register node: %w", err)
	}
	h, unlock, err := c.locked()
	if err != nil {
		return err
	}
	defer unlock()
	for other, info := range h.nodes {
		if other != c && info.ID == n.ID {
			return fmt.Errorf("store: register node %s: another live node has this id: %w", Quote(n.ID), ErrConflict)
		}
	}
	if old, ok := h.nodes[c]; ok {
		n.Applied, n.Gen, n.Problems = old.Applied, old.Gen, old.Problems
	} else {
		n.Applied, n.Gen, n.Problems = 0, 0, nil
	}
	n.Updated = h.now().UTC()
	h.nodes[c] = n
	return nil
}

// Nodes lists the registered nodes of live handles, sorted by ID.
func (c *LocalCoordinator) Nodes(ctx context.Context) ([]NodeInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h, unlock, err := c.locked()
	if err != nil {
		return nil, err
	}
	defer unlock()
	out := make([]NodeInfo, 0, len(h.nodes))
	for _, n := range h.nodes {
		n.Problems = cloneProblems(n.Problems)
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b NodeInfo) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// SetApplied records what this handle's node applied.
func (c *LocalCoordinator) SetApplied(ctx context.Context, rev, gen int64, problems map[string]string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	h, unlock, err := c.locked()
	if err != nil {
		return err
	}
	defer unlock()
	n, ok := h.nodes[c]
	if !ok {
		return fmt.Errorf("store: set applied: node not registered: %w", ErrNotFound)
	}
	n.Applied, n.Gen, n.Problems, n.Updated = rev, gen, cloneProblems(problems), h.now().UTC()
	h.nodes[c] = n
	return nil
}

// SetNodeData records one named record of this handle's node.
func (c *LocalCoordinator) SetNodeData(ctx context.Context, name string, val []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkNodeData(name, val); err != nil {
		return err
	}
	h, unlock, err := c.locked()
	if err != nil {
		return err
	}
	defer unlock()
	if _, ok := h.nodes[c]; !ok {
		return fmt.Errorf("store: node data %s: node not registered: %w", Quote(name), ErrNotFound)
	}
	recs := h.data[c]
	if recs == nil {
		recs = map[string][]byte{}
		h.data[c] = recs
	}
	recs[name] = slices.Clone(val)
	return nil
}

// NodeData returns name's record of every live registered node.
func (c *LocalCoordinator) NodeData(ctx context.Context, name string) (map[string][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := CheckName("node data name", name, MaxNameLen); err != nil {
		return nil, fmt.Errorf("store: node data: %w", err)
	}
	h, unlock, err := c.locked()
	if err != nil {
		return nil, err
	}
	defer unlock()
	out := map[string][]byte{}
	for node, recs := range h.data {
		info, ok := h.nodes[node]
		if v, has := recs[name]; ok && has {
			out[info.ID] = slices.Clone(v)
		}
	}
	return out, nil
}

// checkNodeData checks a SetNodeData call's name and size.
func checkNodeData(name string, val []byte) error {
	if err := CheckName("node data name", name, MaxNameLen); err != nil {
		return fmt.Errorf("store: node data: %w", err)
	}
	if len(val) > MaxNodeDataBytes {
		return fmt.Errorf("store: node data %s is %d bytes, more than %d: %w", Quote(name), len(val), MaxNodeDataBytes, ErrInvalid)
	}
	return nil
}

// CheckNodeData is checkNodeData for backends outside this package.
func CheckNodeData(name string, val []byte) error { return checkNodeData(name, val) }

func cloneProblems(p map[string]string) map[string]string {
	if len(p) == 0 {
		return nil
	}
	out := make(map[string]string, len(p))
	for k, v := range p {
		out[k] = v
	}
	return out
}

// HoldFence checks the fence ctx carries, if any, and keeps the leadership
// from being lost until release is called: the backend calls it before its
// write and releases after the commit. A fence this hub did not issue, or
// a lost leadership, is ErrFenced.
func (c *LocalCoordinator) HoldFence(ctx context.Context) (release func(), err error) {
	f, ok := FenceFrom(ctx)
	if !ok {
		return func() {}, nil
	}
	l, ok := f.(*leadership)
	if !ok || l.c.hub != c.hub {
		return nil, fmt.Errorf("fence of role %s was not issued by this store: %w", Quote(f.Role()), ErrFenced)
	}
	l.fence.RLock()
	if l.lost {
		l.fence.RUnlock()
		return nil, fmt.Errorf("leadership of role %s: %w", Quote(l.role), ErrFenced)
	}
	return l.fence.RUnlock, nil
}

// Close ends the handle's leaderships, releases its locks and removes its
// node. Later calls fail with ErrClosed.
func (c *LocalCoordinator) Close() {
	h := c.hub
	h.mu.Lock()
	if c.closed {
		h.mu.Unlock()
		return
	}
	c.closed = true
	close(c.done)
	var lost []*leadership
	for _, l := range h.roles {
		if l.c == c {
			lost = append(lost, l)
		}
	}
	for name, l := range h.locks {
		if l.owner == c {
			delete(h.locks, name)
			close(l.freed)
		}
	}
	delete(h.nodes, c)
	delete(h.data, c)
	h.mu.Unlock()
	for _, l := range lost {
		l.end()
	}
}
