// Package memstore is an in-memory store.Store: for tests, and as a
// stand-in for a cluster store. Several handles (New, then Node) share one
// state the way flowd nodes share an etcd cluster: each handle is a node
// with its own leaderships, locks, registry entry and run traces, and every
// handle sees every other's writes at once through the getters and the feed.
//
// It keeps the same rules as every backend (store.CheckName and friends),
// seals secrets with store.Sealer exactly as bbolt does, and passes
// store/storetest. Nothing survives the process.
package memstore

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/flowd/flowd/store"
)

// Options configures New. The zero value is usable.
type Options struct {
	// MasterKey seals secrets (32 bytes). nil: a random key, so secrets
	// work out of the box; they are sealed all the same.
	MasterKey []byte
	// RunsPerFlow bounds each handle's run ring; 0 means
	// store.DefaultRunsPerFlow.
	RunsPerFlow int
	// FeedHistory bounds the commits kept for lagging watchers; 0 means
	// store.DefaultFeedHistory.
	FeedHistory int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// state is what every handle shares: the "cluster".
type state struct {
	mu      sync.Mutex
	flows   map[string]*flow
	kv      map[string]map[string][]byte
	secrets map[string]map[string][]byte // sealed
	rev     int64
	gen     int64

	sealer      *store.Sealer
	runsPerFlow int
	now         func() time.Time
	feed        *store.FeedHub
	coord       *store.CoordHub
}

type flow struct {
	rec      store.FlowRecord
	versions []store.Version // versions[i].N == i+1
}

// Store is one handle (one node) on a shared in-memory state.
type Store struct {
	st    *state
	coord *store.LocalCoordinator

	mu     sync.RWMutex // held shared by calls, exclusively by Close
	closed bool
	stop   chan struct{} // closed by Close: ends this handle's watches
	runs   map[string][]store.RunRecord
}

var (
	_ store.Store = (*Store)(nil)
	_ store.Runs  = (*Store)(nil)
)

// New returns the first handle on a new, empty state.
func New(opts Options) (*Store, error) {
	if opts.RunsPerFlow < 0 {
		return nil, fmt.Errorf("memstore: RunsPerFlow is %d: %w", opts.RunsPerFlow, store.ErrInvalid)
	}
	if opts.RunsPerFlow == 0 {
		opts.RunsPerFlow = store.DefaultRunsPerFlow
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	key := opts.MasterKey
	if key == nil {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("memstore: master key: %w", err)
		}
	}
	sealer, err := store.NewSealer(key)
	if err != nil {
		return nil, fmt.Errorf("memstore: %w", err)
	}
	st := &state{
		flows:       map[string]*flow{},
		kv:          map[string]map[string][]byte{},
		secrets:     map[string]map[string][]byte{},
		sealer:      sealer,
		runsPerFlow: opts.RunsPerFlow,
		now:         opts.Now,
		feed:        store.NewFeedHub(0, opts.FeedHistory),
		coord:       store.NewCoordHub(opts.Now),
	}
	return st.handle(), nil
}

// MustNew is New for tests: it fails t on error and closes the handle when
// the test ends.
func MustNew(t interface {
	Helper()
	Fatalf(string, ...any)
	Cleanup(func())
}, opts Options) *Store {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatalf("memstore.New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func (st *state) handle() *Store {
	return &Store{st: st, coord: st.coord.Join(), stop: make(chan struct{}), runs: map[string][]store.RunRecord{}}
}

// Node returns another handle on the same state: another node of the
// "cluster". Its leaderships, locks, registration and runs are its own.
// Closing a handle does not close the others.
func (s *Store) Node() *Store { return s.st.handle() }

// Close closes this handle: its leaderships end, its locks are released,
// its registration and watches end. Other handles go on.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.stop)
	s.coord.Close()
	return nil
}

// enter starts a call: ctx and closed checked. The caller defers s.mu.RUnlock.
func (s *Store) enter(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed {
		return store.ErrClosed
	}
	return nil
}

// read runs fn under the shared lock.
func (s *Store) read(ctx context.Context, fn func(st *state) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.enter(ctx); err != nil {
		return err
	}
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	return fn(s.st)
}

// commit collects a write's changes.
type commit struct {
	changes []store.Change
	deploy  bool
}

func (c *commit) add(ch store.Change) { c.changes = append(c.changes, ch) }

// write runs fn under the lock; its changes get the next revision and go
// to the feed before the lock is released, so the feed is in commit order.
// A fenced ctx holds its leadership for the duration.
func (s *Store) write(ctx context.Context, fn func(st *state, c *commit) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.enter(ctx); err != nil {
		return err
	}
	release, err := s.coord.HoldFence(ctx)
	if err != nil {
		return err
	}
	defer release()
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	// Every write function checks all its conditions before it changes
	// anything, so an error leaves the state as it was.
	var c commit
	if err := fn(st, &c); err != nil {
		return err
	}
	if len(c.changes) > 0 {
		st.rev++
		if c.deploy {
			st.gen++
		}
		st.feed.Publish(st.rev, c.changes)
	}
	return nil
}

func clone(b []byte) []byte { return store.Clone(b) }

func normTime(t time.Time) time.Time { return time.Unix(t.Unix(), int64(t.Nanosecond())).UTC() }

// ---- Flows ----

func (st *state) get(id string) (*flow, error) {
	f := st.flows[id]
	if f == nil {
		return nil, store.ErrNotFound
	}
	return f, nil
}

func copyRec(r store.FlowRecord) store.FlowRecord {
	r.Doc = clone(r.Doc)
	return r
}

func copyVersion(v store.Version) store.Version {
	v.Doc = clone(v.Doc)
	return v
}

// GetFlow returns the flow's draft and deployment state.
func (s *Store) GetFlow(ctx context.Context, id string) (store.FlowRecord, error) {
	var rec store.FlowRecord
	err := store.CheckFlowID(id)
	if err == nil {
		err = s.read(ctx, func(st *state) error {
			f, err := st.get(id)
			if err == nil {
				rec = copyRec(f.rec)
			}
			return err
		})
	}
	if err != nil {
		return store.FlowRecord{}, fmt.Errorf("store: get flow %s: %w", store.Quote(id), err)
	}
	return rec, nil
}

// ListFlows returns every flow sorted by id.
func (s *Store) ListFlows(ctx context.Context) ([]store.FlowRecord, error) {
	out := []store.FlowRecord{}
	err := s.read(ctx, func(st *state) error {
		for _, f := range st.flows {
			out = append(out, copyRec(f.rec))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: list flows: %w", err)
	}
	slices.SortFunc(out, func(a, b store.FlowRecord) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// PutFlow writes the draft under the revision condition ifRev.
func (s *Store) PutFlow(ctx context.Context, id string, doc []byte, ifRev int64) (store.FlowRecord, error) {
	var rec store.FlowRecord
	err := store.CheckFlowID(id)
	if err == nil && ifRev < store.AnyRev {
		err = fmt.Errorf("revision condition %d: %w", ifRev, store.ErrInvalid)
	}
	if err == nil {
		err = s.write(ctx, func(st *state, c *commit) error {
			f := st.flows[id]
			switch {
			case f == nil && ifRev > 0:
				return fmt.Errorf("flow does not exist, want revision %d: %w", ifRev, store.ErrConflict)
			case f == nil:
				f = &flow{rec: store.FlowRecord{ID: id}}
				st.flows[id] = f
			case ifRev == store.MustCreate:
				return fmt.Errorf("flow exists at revision %d: %w", f.rec.Rev, store.ErrConflict)
			case ifRev > 0 && f.rec.Rev != ifRev:
				return fmt.Errorf("flow is at revision %d, want %d: %w", f.rec.Rev, ifRev, store.ErrConflict)
			}
			f.rec.Doc = clone(doc)
			f.rec.Rev++
			f.rec.Updated = normTime(st.now())
			rec = copyRec(f.rec)
			c.add(store.Change{Kind: store.KindFlow, Group: id})
			return nil
		})
	}
	if err != nil {
		return store.FlowRecord{}, fmt.Errorf("store: put flow %s: %w", store.Quote(id), err)
	}
	return rec, nil
}

// DeleteFlow removes the flow with its versions, and this handle's runs of
// it.
func (s *Store) DeleteFlow(ctx context.Context, id string, ifRev int64) error {
	err := store.CheckFlowID(id)
	if err == nil && ifRev != store.AnyRev && ifRev <= 0 {
		err = fmt.Errorf("revision condition %d: %w", ifRev, store.ErrInvalid)
	}
	if err == nil {
		err = s.write(ctx, func(st *state, c *commit) error {
			f, err := st.get(id)
			if err != nil {
				return err
			}
			if ifRev > 0 && f.rec.Rev != ifRev {
				return fmt.Errorf("flow is at revision %d, want %d: %w", f.rec.Rev, ifRev, store.ErrConflict)
			}
			delete(st.flows, id)
			c.add(store.Change{Kind: store.KindFlow, Group: id, Deleted: true})
			if f.rec.Deployed > 0 {
				c.add(store.Change{Kind: store.KindDeploy, Group: id, Deleted: true})
				c.deploy = true
			}
			delete(s.runs, id) // this handle's: runs are per node
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("store: delete flow %s: %w", store.Quote(id), err)
	}
	return nil
}

// AddVersion stores doc as version Latest+1 and deploys it.
func (s *Store) AddVersion(ctx context.Context, id string, doc []byte, note string) (store.Version, error) {
	var v store.Version
	err := store.CheckFlowID(id)
	if err == nil {
		err = store.CheckNote(note)
	}
	if err == nil {
		err = s.write(ctx, func(st *state, c *commit) (err error) {
			v, err = st.addVersion(c, id, doc, note)
			return err
		})
	}
	if err != nil {
		return store.Version{}, fmt.Errorf("store: add version of flow %s: %w", store.Quote(id), err)
	}
	return v, nil
}

func (st *state) addVersion(c *commit, id string, doc []byte, note string) (store.Version, error) {
	f, err := st.get(id)
	if err != nil {
		return store.Version{}, err
	}
	v := store.Version{Flow: id, N: f.rec.Latest + 1, Doc: clone(doc), Created: normTime(st.now()), Note: note}
	f.versions = append(f.versions, v)
	f.rec.Latest, f.rec.Deployed = v.N, v.N
	c.add(store.Change{Kind: store.KindFlow, Group: id})
	c.add(store.Change{Kind: store.KindDeploy, Group: id})
	c.deploy = true
	return copyVersion(v), nil
}

// SetDeployed records which stored version runs; 0 means undeployed.
func (s *Store) SetDeployed(ctx context.Context, id string, n int) error {
	err := store.CheckFlowID(id)
	if err == nil && n < 0 {
		err = fmt.Errorf("version %d: %w", n, store.ErrInvalid)
	}
	if err == nil {
		err = s.write(ctx, func(st *state, c *commit) error { return st.setDeployed(c, id, n) })
	}
	if err != nil {
		return fmt.Errorf("store: set deployed version of flow %s to %d: %w", store.Quote(id), n, err)
	}
	return nil
}

func (st *state) setDeployed(c *commit, id string, n int) error {
	f, err := st.get(id)
	if err != nil {
		return err
	}
	if n > f.rec.Latest {
		return fmt.Errorf("version %d: %w", n, store.ErrNotFound)
	}
	f.rec.Deployed = n
	c.add(store.Change{Kind: store.KindFlow, Group: id})
	c.add(store.Change{Kind: store.KindDeploy, Group: id})
	c.deploy = true
	return nil
}

// ListVersions returns the versions of a flow, newest first.
func (s *Store) ListVersions(ctx context.Context, id string) ([]store.Version, error) {
	out := []store.Version{}
	err := store.CheckFlowID(id)
	if err == nil {
		err = s.read(ctx, func(st *state) error {
			f, err := st.get(id)
			if err != nil {
				return err
			}
			for i := len(f.versions) - 1; i >= 0; i-- {
				out = append(out, copyVersion(f.versions[i]))
			}
			return nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("store: list versions of flow %s: %w", store.Quote(id), err)
	}
	return out, nil
}

// GetVersion returns version n of a flow.
func (s *Store) GetVersion(ctx context.Context, id string, n int) (store.Version, error) {
	var v store.Version
	err := store.CheckFlowID(id)
	if err == nil && n < 1 {
		err = fmt.Errorf("version %d: %w", n, store.ErrInvalid)
	}
	if err == nil {
		err = s.read(ctx, func(st *state) error {
			f, err := st.get(id)
			if err != nil {
				return err
			}
			if n > len(f.versions) {
				return fmt.Errorf("version %d: %w", n, store.ErrNotFound)
			}
			v = copyVersion(f.versions[n-1])
			return nil
		})
	}
	if err != nil {
		return store.Version{}, fmt.Errorf("store: get version %d of flow %s: %w", n, store.Quote(id), err)
	}
	return v, nil
}

// ---- Deployments ----

// DesiredState lists every deployed flow and the deploy generation.
func (s *Store) DesiredState(ctx context.Context) (store.DesiredState, error) {
	ds := store.DesiredState{Flows: []store.Deployment{}}
	err := s.read(ctx, func(st *state) error {
		ds.Gen = st.gen
		for id, f := range st.flows {
			if f.rec.Deployed > 0 {
				ds.Flows = append(ds.Flows, store.Deployment{Flow: id, Version: f.rec.Deployed})
			}
		}
		return nil
	})
	if err != nil {
		return store.DesiredState{}, fmt.Errorf("store: desired state: %w", err)
	}
	slices.SortFunc(ds.Flows, func(a, b store.Deployment) int { return strings.Compare(a.Flow, b.Flow) })
	return ds, nil
}

// Deploy changes one flow's deployed version, conditioned on the deploy
// generation.
func (s *Store) Deploy(ctx context.Context, r store.DeployRequest) (int, int64, error) {
	var n int
	var gen int64
	err := store.CheckDeploy(r)
	if err == nil {
		err = s.write(ctx, func(st *state, c *commit) error {
			if r.IfGen != store.AnyRev && st.gen != r.IfGen {
				return fmt.Errorf("deploy generation is %d, want %d: %w", st.gen, r.IfGen, store.ErrConflict)
			}
			if r.Doc != nil {
				v, err := st.addVersion(c, r.Flow, r.Doc, r.Note)
				n = v.N
				if err != nil {
					return err
				}
			} else {
				if err := st.setDeployed(c, r.Flow, r.Version); err != nil {
					return err
				}
				n = r.Version
			}
			gen = st.gen + 1
			return nil
		})
	}
	if err != nil {
		return 0, 0, fmt.Errorf("store: deploy flow %s: %w", store.Quote(r.Flow), err)
	}
	return n, gen, nil
}

// ---- KV and secrets: one layout, group/name -> value ----

func getIn(m map[string]map[string][]byte, group, name string) ([]byte, bool) {
	v, ok := m[group][name]
	return v, ok
}

func putIn(m map[string]map[string][]byte, group, name string, val []byte) {
	g := m[group]
	if g == nil {
		g = map[string][]byte{}
		m[group] = g
	}
	g[name] = clone(val)
}

func deleteIn(m map[string]map[string][]byte, group, name string) {
	delete(m[group], name)
	if len(m[group]) == 0 {
		delete(m, group)
	}
}

func listIn(m map[string]map[string][]byte, group string) []string {
	out := make([]string, 0, len(m[group]))
	for k := range m[group] {
		out = append(out, k)
	}
	slices.Sort(out) // Go compares strings bytewise: byte order
	return out
}

// table is one of the two tables of records in the same two-level map
// shape (group, then name): KV records and secrets.
type table struct {
	kind      store.Kind
	pick      func(*state) map[string]map[string][]byte
	check     func(group, name string) error // the names' check
	groupName string                         // what a group is called ("namespace")
	one, many string                         // the record in errors ("kv", "kv")
	sealed    bool                           // values are sealed (secrets)
}

var (
	kvTable = table{kind: store.KindKV, pick: func(st *state) map[string]map[string][]byte { return st.kv },
		check: store.CheckKV, groupName: "namespace", one: "kv", many: "kv"}
	secretTable = table{kind: store.KindSecret, pick: func(st *state) map[string]map[string][]byte { return st.secrets },
		check: store.CheckSecret, groupName: "kind", one: "secret", many: "secrets", sealed: true}
)

// open is a stored value as a caller gets it: its own copy, opened if the
// table is sealed.
func (t table) open(st *state, stored []byte, group, name string) ([]byte, error) {
	if t.sealed {
		return st.sealer.Open(stored, group, name)
	}
	return clone(stored), nil
}

// getRecord returns the value of group/name; ErrNotFound if it is not
// there.
func (s *Store) getRecord(ctx context.Context, t table, group, name string) ([]byte, error) {
	var v []byte
	err := t.check(group, name)
	if err == nil {
		err = s.read(ctx, func(st *state) (err error) {
			stored, ok := getIn(t.pick(st), group, name)
			if !ok {
				return store.ErrNotFound
			}
			v, err = t.open(st, stored, group, name)
			return err
		})
	}
	if err != nil {
		return nil, fmt.Errorf("store: get %s %s/%s: %w", t.one, store.Quote(group), store.Quote(name), err)
	}
	return v, nil
}

// updateRecord reads, changes and writes group/name atomically. fn runs
// once per call here (under the lock); the contract still allows more. An
// error of fn is returned as is.
func (s *Store) updateRecord(ctx context.Context, t table, group, name string, fn func(old []byte) ([]byte, error)) error {
	err := t.check(group, name)
	if err == nil && fn == nil {
		err = fmt.Errorf("nil update function: %w", store.ErrInvalid)
	}
	var fnErr error
	if err == nil {
		err = s.write(ctx, func(st *state, c *commit) error {
			m := t.pick(st)
			stored, had := getIn(m, group, name)
			var old []byte
			if had {
				var err error
				if old, err = t.open(st, stored, group, name); err != nil {
					return err
				}
			}
			val, err := fn(old)
			if err != nil {
				fnErr = err
				return err
			}
			if val != nil && t.sealed {
				val = st.sealer.Seal(val, group, name)
			}
			applyUpdate(c, m, t.kind, group, name, had, val)
			return nil
		})
	}
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("store: update %s %s/%s: %w", t.one, store.Quote(group), store.Quote(name), err)
	}
	return nil
}

// deleteRecord removes group/name from the table; ErrNotFound if it is
// not there.
func (s *Store) deleteRecord(ctx context.Context, t table, group, name string) error {
	err := t.check(group, name)
	if err == nil {
		err = s.write(ctx, func(st *state, c *commit) error {
			m := t.pick(st)
			if _, ok := getIn(m, group, name); !ok {
				return store.ErrNotFound
			}
			deleteIn(m, group, name)
			c.add(store.Change{Kind: t.kind, Group: group, Name: name, Deleted: true})
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("store: delete %s %s/%s: %w", t.one, store.Quote(group), store.Quote(name), err)
	}
	return nil
}

// listRecords returns the names of a group of the table in byte order.
func (s *Store) listRecords(ctx context.Context, t table, group string) ([]string, error) {
	var names []string
	err := store.CheckName(t.groupName, group, store.MaxNameLen)
	if err == nil {
		err = s.read(ctx, func(st *state) error {
			names = listIn(t.pick(st), group)
			return nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("store: list %s %s: %w", t.many, store.Quote(group), err)
	}
	return names, nil
}

// GetKV returns the value of ns/key, or ErrNotFound.
func (s *Store) GetKV(ctx context.Context, ns, key string) ([]byte, error) {
	return s.getRecord(ctx, kvTable, ns, key)
}

// SetKV writes ns/key.
func (s *Store) SetKV(ctx context.Context, ns, key string, val []byte) error {
	return s.putKV(ctx, "set", ns, key, val, false)
}

// putKV writes ns/key; create writes it only if it is absent
// (ErrConflict if present). verb names the call in errors.
func (s *Store) putKV(ctx context.Context, verb, ns, key string, val []byte, create bool) error {
	err := store.CheckKV(ns, key)
	if err == nil {
		err = s.write(ctx, func(st *state, c *commit) error {
			if _, ok := getIn(st.kv, ns, key); ok && create {
				return fmt.Errorf("key exists: %w", store.ErrConflict)
			}
			putIn(st.kv, ns, key, val)
			c.add(store.Change{Kind: store.KindKV, Group: ns, Name: key})
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("store: %s kv %s/%s: %w", verb, store.Quote(ns), store.Quote(key), err)
	}
	return nil
}

// CreateKV writes ns/key if it is absent; ErrConflict if present.
func (s *Store) CreateKV(ctx context.Context, ns, key string, val []byte) error {
	return s.putKV(ctx, "create", ns, key, val, true)
}

// DeleteKV removes ns/key; ErrNotFound if it is not there.
func (s *Store) DeleteKV(ctx context.Context, ns, key string) error {
	return s.deleteRecord(ctx, kvTable, ns, key)
}

// ListKV returns the keys of ns in byte order.
func (s *Store) ListKV(ctx context.Context, ns string) ([]string, error) {
	return s.listRecords(ctx, kvTable, ns)
}

// UpdateKV reads, changes and writes ns/key atomically. fn runs once per
// call here (under the lock); the contract still allows more.
func (s *Store) UpdateKV(ctx context.Context, ns, key string, fn func(old []byte) ([]byte, error)) error {
	return s.updateRecord(ctx, kvTable, ns, key, fn)
}

// UpdateKVs reads, changes and writes several records at once
// (store.KV.UpdateKVs). A result equal to the old value is not written.
func (s *Store) UpdateKVs(ctx context.Context, refs []store.KVRef, fn func(old [][]byte) ([][]byte, error)) error {
	err := store.CheckKVRefs(refs)
	if err == nil && fn == nil {
		err = fmt.Errorf("nil update function: %w", store.ErrInvalid)
	}
	var fnErr error
	if err == nil {
		err = s.write(ctx, func(st *state, c *commit) error {
			olds := make([][]byte, len(refs))
			in := make([][]byte, len(refs))
			for i, r := range refs {
				if old, had := getIn(st.kv, r.NS, r.Key); had {
					olds[i], in[i] = clone(old), clone(old)
				}
			}
			vals, err := fn(in)
			if err != nil {
				fnErr = err
				return err
			}
			if err := store.CheckKVResults(refs, vals); err != nil {
				return err
			}
			for i, r := range refs {
				if !store.SameValue(olds[i], vals[i]) {
					applyUpdate(c, st.kv, store.KindKV, r.NS, r.Key, olds[i] != nil, vals[i])
				}
			}
			return nil
		})
	}
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("store: update kv %s: %w", store.QuoteKVRefs(refs), err)
	}
	return nil
}

func applyUpdate(c *commit, m map[string]map[string][]byte, kind store.Kind, group, name string, had bool, val []byte) {
	switch {
	case val != nil:
		putIn(m, group, name, val)
		c.add(store.Change{Kind: kind, Group: group, Name: name})
	case had:
		deleteIn(m, group, name)
		c.add(store.Change{Kind: kind, Group: group, Name: name, Deleted: true})
	}
}

// GetSecret returns the opened value of kind/name, or ErrNotFound.
func (s *Store) GetSecret(ctx context.Context, kind, name string) ([]byte, error) {
	return s.getRecord(ctx, secretTable, kind, name)
}

// UpdateSecret reads, changes and writes kind/name atomically.
func (s *Store) UpdateSecret(ctx context.Context, kind, name string, fn func(old []byte) ([]byte, error)) error {
	return s.updateRecord(ctx, secretTable, kind, name, fn)
}

// DeleteSecret removes kind/name; ErrNotFound if it is not there.
func (s *Store) DeleteSecret(ctx context.Context, kind, name string) error {
	return s.deleteRecord(ctx, secretTable, kind, name)
}

// ListSecrets returns the names of a kind in byte order.
func (s *Store) ListSecrets(ctx context.Context, kind string) ([]string, error) {
	return s.listRecords(ctx, secretTable, kind)
}

// RawSecret returns the sealed bytes of kind/name as stored, for tests that
// check sealing (memstore seals exactly as bbolt does).
func (s *Store) RawSecret(kind, name string) ([]byte, bool) {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	v, ok := getIn(s.st.secrets, kind, name)
	return clone(v), ok
}

// ---- Feed ----

// Rev returns the revision of the newest committed change.
func (s *Store) Rev(ctx context.Context) (int64, error) {
	var rev int64
	err := s.read(ctx, func(st *state) error {
		rev = st.rev
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: feed revision: %w", err)
	}
	return rev, nil
}

// Watch reports the changes after fromRev; this handle's Close ends it.
func (s *Store) Watch(ctx context.Context, fromRev int64, f store.Filter) (<-chan store.FeedEvent, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.enter(ctx); err != nil {
		return nil, fmt.Errorf("store: watch: %w", err)
	}
	ch, err := s.st.feed.WatchUntil(ctx, s.stop, fromRev, f)
	if err != nil {
		return nil, fmt.Errorf("store: watch from revision %d: %w", fromRev, err)
	}
	return ch, nil
}

// ---- Coordinator: this handle's node on the shared hub ----

func (s *Store) guard(ctx context.Context) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.enter(ctx)
}

// Campaign waits until this handle holds role.
func (s *Store) Campaign(ctx context.Context, role string) (store.Leadership, error) {
	if err := s.guard(ctx); err != nil {
		return nil, err
	}
	return s.coord.Campaign(ctx, role)
}

// Lock takes a lock shared by every handle.
func (s *Store) Lock(ctx context.Context, name string) (func(context.Context) error, error) {
	if err := s.guard(ctx); err != nil {
		return nil, err
	}
	return s.coord.Lock(ctx, name)
}

// TryLock takes a lock or fails with ErrLockHeld.
func (s *Store) TryLock(ctx context.Context, name string) (func(context.Context) error, error) {
	if err := s.guard(ctx); err != nil {
		return nil, err
	}
	return s.coord.TryLock(ctx, name)
}

// Register publishes this handle's node.
func (s *Store) Register(ctx context.Context, n store.NodeInfo) error {
	if err := s.guard(ctx); err != nil {
		return err
	}
	return s.coord.Register(ctx, n)
}

// Nodes lists the nodes of live handles.
func (s *Store) Nodes(ctx context.Context) ([]store.NodeInfo, error) {
	if err := s.guard(ctx); err != nil {
		return nil, err
	}
	return s.coord.Nodes(ctx)
}

// SetApplied records what this handle's node applied.
func (s *Store) SetApplied(ctx context.Context, rev, gen int64, problems map[string]string) error {
	if err := s.guard(ctx); err != nil {
		return err
	}
	return s.coord.SetApplied(ctx, rev, gen, problems)
}

// SetNodeData publishes a record of this handle's node.
func (s *Store) SetNodeData(ctx context.Context, name string, val []byte) error {
	if err := s.guard(ctx); err != nil {
		return err
	}
	return s.coord.SetNodeData(ctx, name, val)
}

// NodeData returns name's record of every live node.
func (s *Store) NodeData(ctx context.Context, name string) (map[string][]byte, error) {
	if err := s.guard(ctx); err != nil {
		return nil, err
	}
	return s.coord.NodeData(ctx, name)
}

// ---- Runs: per handle, as on a cluster each node keeps its own ----

func runLess(a, b store.RunRecord) int {
	if c := a.Started.Compare(b.Started); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// AppendRuns writes a batch and trims each touched flow's ring; a run whose
// ID is stored replaces it. One bad record writes nothing.
func (s *Store) AppendRuns(ctx context.Context, runs []store.RunRecord) error {
	for i, r := range runs {
		if err := store.CheckRun(r); err != nil {
			return fmt.Errorf("store: append runs: run %d (flow %s, id %s): %w", i, store.Quote(r.Flow), store.Quote(r.ID), err)
		}
	}
	err := s.read(ctx, func(st *state) error {
		touched := map[string]bool{}
		for _, r := range runs {
			r.Started = normTime(r.Started)
			r.Data = clone(r.Data)
			ring := slices.DeleteFunc(s.runs[r.Flow], func(o store.RunRecord) bool { return o.ID == r.ID })
			i, _ := slices.BinarySearchFunc(ring, r, runLess)
			s.runs[r.Flow] = slices.Insert(ring, i, r)
			touched[r.Flow] = true
		}
		for f := range touched {
			if ring := s.runs[f]; len(ring) > st.runsPerFlow {
				s.runs[f] = slices.Clone(ring[len(ring)-st.runsPerFlow:])
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: append runs: %w", err)
	}
	return nil
}

// DeleteRuns removes every run of a flow kept by this handle.
func (s *Store) DeleteRuns(ctx context.Context, flow string) error {
	err := store.CheckFlowID(flow)
	if err == nil {
		err = s.read(ctx, func(*state) error {
			delete(s.runs, flow)
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("store: delete runs of flow %s: %w", store.Quote(flow), err)
	}
	return nil
}

// ListRuns returns up to limit runs of a flow, newest first (limit <= 0:
// all).
func (s *Store) ListRuns(ctx context.Context, flow string, limit int) ([]store.RunRecord, error) {
	out := []store.RunRecord{}
	err := store.CheckFlowID(flow)
	if err == nil {
		err = s.read(ctx, func(*state) error {
			ring := s.runs[flow]
			for i := len(ring) - 1; i >= 0 && (limit <= 0 || len(out) < limit); i-- {
				r := ring[i]
				r.Data = clone(r.Data)
				out = append(out, r)
			}
			return nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("store: list runs of flow %s: %w", store.Quote(flow), err)
	}
	return out, nil
}

// GetRun returns one run of a flow.
func (s *Store) GetRun(ctx context.Context, flow, id string) (store.RunRecord, error) {
	var r store.RunRecord
	err := store.CheckFlowID(flow)
	if err == nil {
		err = store.CheckName("run id", id, store.MaxNameLen)
	}
	if err == nil {
		err = s.read(ctx, func(*state) error {
			for _, o := range s.runs[flow] {
				if o.ID == id {
					r = o
					r.Data = clone(o.Data)
					return nil
				}
			}
			return store.ErrNotFound
		})
	}
	if err != nil {
		return store.RunRecord{}, fmt.Errorf("store: get run %s of flow %s: %w", store.Quote(id), store.Quote(flow), err)
	}
	return r, nil
}
