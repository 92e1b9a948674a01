package store

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Runs are ordered by (Started, ID), not by arrival: a long run that started
// first may be appended after a short one that started later, and the ring
// must still keep the newest by start time. The ID breaks ties between runs
// started in the same nanosecond.

func runKey(r RunRecord) []byte {
	return append(encTime(r.Started), r.ID...)
}

func decodeRun(flow string, key, data []byte) (RunRecord, error) {
	if len(key) <= timeLen {
		return RunRecord{}, fmt.Errorf("runs/%s: key %x: %w", flow, key, errCorrupt)
	}
	started, err := decTime(key[:timeLen])
	if err != nil {
		return RunRecord{}, fmt.Errorf("runs/%s: key %x: %w", flow, key, err)
	}
	return RunRecord{Flow: flow, ID: string(key[timeLen:]), Started: started, Data: clone(data)}, nil
}

// AppendRuns writes a batch in one transaction and trims each touched flow's
// ring. A run whose ID is already stored replaces it, so a retried batch
// does not duplicate runs. The whole batch is validated first: one bad
// record writes nothing.
func (s *Bolt) AppendRuns(ctx context.Context, runs []RunRecord) error {
	for i, r := range runs {
		err := CheckName("flow id", r.Flow, MaxNameLen)
		if err == nil {
			err = CheckName("run id", r.ID, MaxNameLen)
		}
		if err != nil {
			return fmt.Errorf("store: append runs: run %d (flow %s, id %s): %w", i, q(r.Flow), q(r.ID), err)
		}
	}
	if len(runs) == 0 {
		// Still report a closed store or a cancelled ctx like any other call.
		if err := s.view(ctx, func(*bolt.Tx) error { return nil }); err != nil {
			return fmt.Errorf("store: append runs: %w", err)
		}
		return nil
	}
	err := s.update(ctx, func(tx *bolt.Tx) error {
		all, err := top(tx, bucketRuns)
		if err != nil {
			return err
		}
		touched := map[string]bool{}
		for _, r := range runs {
			byTime, byID, err := runBuckets(all, r.Flow)
			if err != nil {
				return fmt.Errorf("flow %s: %w", q(r.Flow), err)
			}
			if old := byID.Get([]byte(r.ID)); old != nil {
				if err := byTime.Delete(clone(old)); err != nil {
					return err
				}
			}
			key := runKey(r)
			data := r.Data
			if data == nil {
				data = []byte{}
			}
			if err := byTime.Put(key, data); err != nil {
				return fmt.Errorf("run %s: %w", q(r.ID), err)
			}
			if err := byID.Put([]byte(r.ID), key); err != nil {
				return fmt.Errorf("run %s: %w", q(r.ID), err)
			}
			touched[r.Flow] = true
		}
		for flow := range touched {
			byTime, byID, err := runBuckets(all, flow)
			if err != nil {
				return err
			}
			if err := s.trim(byTime, byID); err != nil {
				return fmt.Errorf("trim runs of flow %s: %w", q(flow), err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: append runs: %w", err)
	}
	return nil
}

func runBuckets(all *bolt.Bucket, flow string) (byTime, byID *bolt.Bucket, err error) {
	fb, err := all.CreateBucketIfNotExists([]byte(flow))
	if err != nil {
		return nil, nil, err
	}
	if byTime, err = fb.CreateBucketIfNotExists(bucketByTime); err != nil {
		return nil, nil, err
	}
	if byID, err = fb.CreateBucketIfNotExists(bucketByID); err != nil {
		return nil, nil, err
	}
	return byTime, byID, nil
}

// trim drops the oldest runs beyond the ring size. Keys are collected before
// deleting because deleting under a bbolt cursor can skip entries.
func (s *Bolt) trim(byTime, byID *bolt.Bucket) error {
	// Counted with a cursor: Bucket.Stats reads committed pages only and
	// would miss this transaction's appends.
	n := 0
	c := byTime.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	if n <= s.runsPerFlow {
		return nil
	}
	drop := make([][]byte, 0, n-s.runsPerFlow)
	for k, _ := c.First(); k != nil && len(drop) < n-s.runsPerFlow; k, _ = c.Next() {
		drop = append(drop, clone(k))
	}
	for _, k := range drop {
		if err := byTime.Delete(k); err != nil {
			return err
		}
		if len(k) > timeLen {
			if err := byID.Delete(k[timeLen:]); err != nil {
				return err
			}
		}
	}
	return nil
}

// DeleteRuns removes every run of a flow.
func (s *Bolt) DeleteRuns(ctx context.Context, flow string) error {
	err := CheckFlowID(flow)
	if err == nil {
		err = s.update(ctx, func(tx *bolt.Tx) error {
			runs, err := top(tx, bucketRuns)
			if err != nil {
				return err
			}
			if runs.Bucket([]byte(flow)) == nil {
				return nil
			}
			return runs.DeleteBucket([]byte(flow))
		})
	}
	if err != nil {
		return fmt.Errorf("store: delete runs of flow %s: %w", q(flow), err)
	}
	return nil
}

// readRunBuckets returns a flow's runs by time and by id; nil buckets when
// the flow has no runs.
func readRunBuckets(tx *bolt.Tx, flow string) (byTime, byID *bolt.Bucket, err error) {
	all, err := top(tx, bucketRuns)
	if err != nil {
		return nil, nil, err
	}
	fb := all.Bucket([]byte(flow))
	if fb == nil {
		return nil, nil, nil
	}
	return fb.Bucket(bucketByTime), fb.Bucket(bucketByID), nil
}

// ListRuns returns up to limit runs of a flow, newest first; limit <= 0
// returns the whole ring. A flow without runs has an empty list, not
// ErrNotFound: runs may be listed before the first one is recorded.
func (s *Bolt) ListRuns(ctx context.Context, flow string, limit int) ([]RunRecord, error) {
	out := []RunRecord{}
	err := CheckName("flow id", flow, MaxNameLen)
	if err == nil {
		err = s.view(ctx, func(tx *bolt.Tx) error {
			byTime, _, err := readRunBuckets(tx, flow)
			if err != nil || byTime == nil {
				return err
			}
			c := byTime.Cursor()
			for k, v := c.Last(); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Prev() {
				r, err := decodeRun(flow, k, v)
				if err != nil {
					return err
				}
				out = append(out, r)
			}
			return nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("store: list runs of flow %s: %w", q(flow), err)
	}
	return out, nil
}

// GetRun returns one run of a flow.
func (s *Bolt) GetRun(ctx context.Context, flow, id string) (RunRecord, error) {
	var r RunRecord
	err := CheckName("flow id", flow, MaxNameLen)
	if err == nil {
		err = CheckName("run id", id, MaxNameLen)
	}
	if err == nil {
		err = s.view(ctx, func(tx *bolt.Tx) error {
			byTime, byID, err := readRunBuckets(tx, flow)
			if err != nil {
				return err
			}
			if byTime == nil || byID == nil {
				return ErrNotFound
			}
			key := byID.Get([]byte(id))
			if key == nil {
				return ErrNotFound
			}
			data := byTime.Get(key)
			if data == nil {
				return fmt.Errorf("runs/%s/by_id/%s points at a missing run: %w", flow, id, errCorrupt)
			}
			r, err = decodeRun(flow, key, data)
			return err
		})
	}
	if err != nil {
		return RunRecord{}, fmt.Errorf("store: get run %s of flow %s: %w", q(id), q(flow), err)
	}
	return r, nil
}
