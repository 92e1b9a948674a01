package store

import (
	"context"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// The feed revision and the deploy generation live in meta/ (feed_rev,
// deploy_gen) and are bumped inside the transaction that makes the change,
// so they cost no extra fsync and survive a reopen. Missing keys read as 0,
// so files written before them open unchanged and need no migration.
var (
	keyFeedRev   = []byte("feed_rev")
	keyDeployGen = []byte("deploy_gen")
)

// commit collects what one write transaction changed, for the feed.
type commit struct {
	changes []Change
	deploy  bool // the deploy generation moves
}

func (c *commit) add(ch Change) { c.changes = append(c.changes, ch) }

// loadCounters reads feed_rev and deploy_gen at open.
func (s *Bolt) loadCounters(tx *bolt.Tx) error {
	meta, err := top(tx, bucketMeta)
	if err != nil {
		return err
	}
	rev, err := getUint(meta, keyFeedRev, true)
	if err != nil {
		return fmt.Errorf("meta: %w", err)
	}
	gen, err := getUint(meta, keyDeployGen, true)
	if err != nil {
		return fmt.Errorf("meta: %w", err)
	}
	s.rev, s.gen = int64(rev), int64(gen)
	return nil
}

// write runs fn in a write transaction whose changes the feed reports. A
// fenced ctx makes the write conditional on its leadership, held from
// before the transaction until after its commit.
func (s *Bolt) write(ctx context.Context, fn func(tx *bolt.Tx, c *commit) error) error {
	leave, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	release, err := s.coord.HoldFence(ctx)
	if err != nil {
		return err
	}
	defer release()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var c commit
	rev, gen := s.rev, s.gen
	err = s.db.Update(func(tx *bolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		c = commit{}
		if err := fn(tx, &c); err != nil {
			return err
		}
		if len(c.changes) == 0 {
			return nil
		}
		meta, err := top(tx, bucketMeta)
		if err != nil {
			return err
		}
		rev++
		if err := putUint(meta, keyFeedRev, uint64(rev)); err != nil {
			return err
		}
		if c.deploy {
			gen++
			return putUint(meta, keyDeployGen, uint64(gen))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(c.changes) > 0 {
		s.rev, s.gen = rev, gen
		s.feed.Publish(rev, c.changes)
	}
	return nil
}

// Rev returns the revision of the newest committed change.
func (s *Bolt) Rev(ctx context.Context) (int64, error) {
	release, err := s.enter(ctx)
	if errors.Is(err, ErrClosed) {
		return 0, fmt.Errorf("store: feed revision: %w", err)
	} else if err != nil {
		return 0, err
	}
	defer release()
	return s.feed.Rev(), nil
}

// Watch reports the changes after fromRev. History is kept in memory for
// the last DefaultFeedHistory commits of this process: a revision from
// before the store was opened is ErrCompacted.
func (s *Bolt) Watch(ctx context.Context, fromRev int64, f Filter) (<-chan FeedEvent, error) {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return nil, fmt.Errorf("store: watch: %w", ErrClosed)
	}
	ch, err := s.feed.Watch(ctx, fromRev, f)
	if err != nil {
		return nil, fmt.Errorf("store: watch from revision %d: %w", fromRev, err)
	}
	return ch, nil
}

// Coordinator: the only node leads; locks are process mutexes; the registry
// is this process. All of it lives in s.coord.

func (s *Bolt) Campaign(ctx context.Context, role string) (Leadership, error) {
	return s.coord.Campaign(ctx, role)
}

func (s *Bolt) Lock(ctx context.Context, name string) (func(context.Context) error, error) {
	return s.coord.Lock(ctx, name)
}

func (s *Bolt) TryLock(ctx context.Context, name string) (func(context.Context) error, error) {
	return s.coord.TryLock(ctx, name)
}

func (s *Bolt) Register(ctx context.Context, n NodeInfo) error { return s.coord.Register(ctx, n) }

func (s *Bolt) Nodes(ctx context.Context) ([]NodeInfo, error) { return s.coord.Nodes(ctx) }

func (s *Bolt) SetApplied(ctx context.Context, rev, gen int64, problems map[string]string) error {
	return s.coord.SetApplied(ctx, rev, gen, problems)
}

func (s *Bolt) SetNodeData(ctx context.Context, name string, val []byte) error {
	return s.coord.SetNodeData(ctx, name, val)
}

func (s *Bolt) NodeData(ctx context.Context, name string) (map[string][]byte, error) {
	return s.coord.NodeData(ctx, name)
}

// DesiredState lists every deployed flow and the deploy generation.
func (s *Bolt) DesiredState(ctx context.Context) (DesiredState, error) {
	st := DesiredState{Flows: []Deployment{}}
	err := s.view(ctx, func(tx *bolt.Tx) error {
		meta, err := top(tx, bucketMeta)
		if err != nil {
			return err
		}
		gen, err := getUint(meta, keyDeployGen, true)
		if err != nil {
			return fmt.Errorf("meta: %w", err)
		}
		st.Gen = int64(gen)
		flows, err := top(tx, bucketFlows)
		if err != nil {
			return err
		}
		return flows.ForEachBucket(func(k []byte) error {
			n, err := getUint(flows.Bucket(k), keyDeployed, false)
			if err != nil {
				return fmt.Errorf("flows/%s/%w", k, err)
			}
			if n > 0 {
				st.Flows = append(st.Flows, Deployment{Flow: string(k), Version: int(n)})
			}
			return nil
		})
	})
	if err != nil {
		return DesiredState{}, fmt.Errorf("store: desired state: %w", err)
	}
	return st, nil
}

// Deploy changes one flow's deployed version, conditioned on the deploy
// generation.
func (s *Bolt) Deploy(ctx context.Context, r DeployRequest) (int, int64, error) {
	var n int
	var gen int64
	err := CheckDeploy(r)
	if err == nil {
		err = s.write(ctx, func(tx *bolt.Tx, c *commit) error {
			if r.IfGen != AnyRev && s.gen != r.IfGen {
				return fmt.Errorf("deploy generation is %d, want %d: %w", s.gen, r.IfGen, ErrConflict)
			}
			var err error
			if r.Doc != nil {
				var v Version
				v, err = s.addVersion(tx, c, r.Flow, r.Doc, r.Note)
				n = v.N
			} else {
				err = s.setDeployed(tx, c, r.Flow, r.Version)
				n = r.Version
			}
			gen = s.gen + 1
			return err
		})
	}
	if err != nil {
		return 0, 0, fmt.Errorf("store: deploy flow %s: %w", q(r.Flow), err)
	}
	return n, gen, nil
}
