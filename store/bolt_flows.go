package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"

	bolt "go.etcd.io/bbolt"
)

func readFlow(fb *bolt.Bucket, id string) (FlowRecord, error) {
	f := fields{b: fb}
	rec := FlowRecord{
		ID:       id,
		Doc:      f.bytes(keyDoc),
		Rev:      f.int(keyRev),
		Updated:  f.time(keyUpdated),
		Deployed: int(f.int(keyDeployed)),
		Latest:   int(f.int(keyLatest)),
	}
	if f.err != nil {
		return FlowRecord{}, fmt.Errorf("flows/%s/%w", id, f.err)
	}
	return rec, nil
}

func writeFlow(fb *bolt.Bucket, rec FlowRecord) error {
	for _, kv := range []struct{ k, v []byte }{
		{keyDoc, rec.Doc},
		{keyRev, encUint(uint64(rec.Rev))},
		{keyUpdated, encTime(rec.Updated)},
		{keyDeployed, encUint(uint64(rec.Deployed))},
		{keyLatest, encUint(uint64(rec.Latest))},
	} {
		if err := fb.Put(kv.k, kv.v); err != nil {
			return fmt.Errorf("write %s: %w", kv.k, err)
		}
	}
	return nil
}

// flowBucket returns the bucket of an existing flow, or ErrNotFound.
func flowBucket(tx *bolt.Tx, id string) (*bolt.Bucket, error) {
	flows, err := top(tx, bucketFlows)
	if err != nil {
		return nil, err
	}
	fb := flows.Bucket([]byte(id))
	if fb == nil {
		return nil, ErrNotFound
	}
	return fb, nil
}

func versionKey(n int) []byte { return encUint(uint64(n)) }

func readVersion(vb *bolt.Bucket, flow string, n int) (Version, error) {
	f := fields{b: vb}
	v := Version{
		Flow:    flow,
		N:       n,
		Doc:     f.bytes(keyDoc),
		Created: f.time(keyCreated),
		Note:    string(f.bytes(keyNote)),
	}
	if f.err != nil {
		return Version{}, fmt.Errorf("flows/%s/versions/%d/%w", flow, n, f.err)
	}
	return v, nil
}

// GetFlow returns the flow's draft and deployment state.
func (s *Bolt) GetFlow(ctx context.Context, id string) (FlowRecord, error) {
	var rec FlowRecord
	err := CheckName("flow id", id, MaxNameLen)
	if err == nil {
		err = s.view(ctx, func(tx *bolt.Tx) error {
			fb, err := flowBucket(tx, id)
			if err != nil {
				return err
			}
			rec, err = readFlow(fb, id)
			return err
		})
	}
	if err != nil {
		return FlowRecord{}, fmt.Errorf("store: get flow %s: %w", q(id), err)
	}
	return rec, nil
}

// ListFlows returns every flow sorted by id.
func (s *Bolt) ListFlows(ctx context.Context) ([]FlowRecord, error) {
	out := []FlowRecord{}
	err := s.view(ctx, func(tx *bolt.Tx) error {
		flows, err := top(tx, bucketFlows)
		if err != nil {
			return err
		}
		return flows.ForEachBucket(func(k []byte) error {
			rec, err := readFlow(flows.Bucket(k), string(k))
			if err != nil {
				return err
			}
			out = append(out, rec)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: list flows: %w", err)
	}
	return out, nil
}

// PutFlow writes the draft under the revision condition ifRev. A flow that
// does not exist has no revision, so an exact ifRev on it is a conflict.
func (s *Bolt) PutFlow(ctx context.Context, id string, doc []byte, ifRev int64) (FlowRecord, error) {
	var rec FlowRecord
	err := CheckName("flow id", id, MaxNameLen)
	if err == nil && ifRev < AnyRev {
		err = fmt.Errorf("revision condition %d: %w", ifRev, ErrInvalid)
	}
	if err == nil {
		err = s.write(ctx, func(tx *bolt.Tx, c *commit) error {
			flows, err := top(tx, bucketFlows)
			if err != nil {
				return err
			}
			fb := flows.Bucket([]byte(id))
			switch {
			case fb == nil && ifRev > 0:
				return fmt.Errorf("flow does not exist, want revision %d: %w", ifRev, ErrConflict)
			case fb == nil:
				if fb, err = flows.CreateBucket([]byte(id)); err != nil {
					return err
				}
				rec = FlowRecord{ID: id}
			default:
				if rec, err = readFlow(fb, id); err != nil {
					return err
				}
				if ifRev == MustCreate {
					return fmt.Errorf("flow exists at revision %d: %w", rec.Rev, ErrConflict)
				}
				if ifRev > 0 && rec.Rev != ifRev {
					return fmt.Errorf("flow is at revision %d, want %d: %w", rec.Rev, ifRev, ErrConflict)
				}
			}
			rec.Doc = clone(doc)
			rec.Rev++
			rec.Updated = normTime(s.now())
			c.add(Change{Kind: KindFlow, Group: id})
			return writeFlow(fb, rec)
		})
	}
	if err != nil {
		return FlowRecord{}, fmt.Errorf("store: put flow %s: %w", q(id), err)
	}
	return rec, nil
}

// DeleteFlow removes the flow with its versions and runs. ifRev is AnyRev or
// an exact revision; MustCreate makes no sense for a delete and is invalid.
func (s *Bolt) DeleteFlow(ctx context.Context, id string, ifRev int64) error {
	err := CheckName("flow id", id, MaxNameLen)
	if err == nil && ifRev != AnyRev && ifRev <= 0 {
		err = fmt.Errorf("revision condition %d: %w", ifRev, ErrInvalid)
	}
	if err == nil {
		err = s.write(ctx, func(tx *bolt.Tx, c *commit) error {
			fb, err := flowBucket(tx, id)
			if err != nil {
				return err
			}
			deployed, err := getUint(fb, keyDeployed, false)
			if err != nil {
				return fmt.Errorf("flows/%s/%w", id, err)
			}
			c.add(Change{Kind: KindFlow, Group: id, Deleted: true})
			if deployed > 0 {
				c.add(Change{Kind: KindDeploy, Group: id, Deleted: true})
				c.deploy = true
			}
			if ifRev > 0 {
				rev, err := getUint(fb, keyRev, false)
				if err != nil {
					return fmt.Errorf("flows/%s/%w", id, err)
				}
				if int64(rev) != ifRev {
					return fmt.Errorf("flow is at revision %d, want %d: %w", rev, ifRev, ErrConflict)
				}
			}
			if err := tx.Bucket(bucketFlows).DeleteBucket([]byte(id)); err != nil {
				return err
			}
			runs, err := top(tx, bucketRuns)
			if err != nil {
				return err
			}
			if runs.Bucket([]byte(id)) != nil {
				return runs.DeleteBucket([]byte(id))
			}
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("store: delete flow %s: %w", q(id), err)
	}
	return nil
}

// AddVersion stores doc as version Latest+1 and deploys it.
func (s *Bolt) AddVersion(ctx context.Context, id string, doc []byte, note string) (Version, error) {
	var v Version
	err := CheckFlowID(id)
	if err == nil {
		err = CheckNote(note)
	}
	if err == nil {
		err = s.write(ctx, func(tx *bolt.Tx, c *commit) (err error) {
			v, err = s.addVersion(tx, c, id, doc, note)
			return err
		})
	}
	if err != nil {
		return Version{}, fmt.Errorf("store: add version of flow %s: %w", q(id), err)
	}
	return v, nil
}

func (s *Bolt) addVersion(tx *bolt.Tx, c *commit, id string, doc []byte, note string) (Version, error) {
	fb, err := flowBucket(tx, id)
	if err != nil {
		return Version{}, err
	}
	rec, err := readFlow(fb, id)
	if err != nil {
		return Version{}, err
	}
	vs, err := fb.CreateBucketIfNotExists(bucketVersions)
	if err != nil {
		return Version{}, err
	}
	v := Version{Flow: id, N: rec.Latest + 1, Doc: clone(doc), Created: normTime(s.now()), Note: note}
	vb, err := vs.CreateBucket(versionKey(v.N))
	if err != nil {
		return Version{}, fmt.Errorf("version %d: %w", v.N, err)
	}
	for _, kv := range []struct{ k, v []byte }{
		{keyDoc, v.Doc},
		{keyCreated, encTime(v.Created)},
		{keyNote, []byte(note)},
	} {
		if err := vb.Put(kv.k, kv.v); err != nil {
			return Version{}, fmt.Errorf("version %d: write %s: %w", v.N, kv.k, err)
		}
	}
	rec.Latest, rec.Deployed = v.N, v.N
	c.add(Change{Kind: KindFlow, Group: id})
	c.add(Change{Kind: KindDeploy, Group: id})
	c.deploy = true
	return v, writeFlow(fb, rec)
}

// SetDeployed records which stored version runs; 0 means undeployed.
func (s *Bolt) SetDeployed(ctx context.Context, id string, n int) error {
	err := CheckFlowID(id)
	if err == nil && n < 0 {
		err = fmt.Errorf("version %d: %w", n, ErrInvalid)
	}
	if err == nil {
		err = s.write(ctx, func(tx *bolt.Tx, c *commit) error {
			return s.setDeployed(tx, c, id, n)
		})
	}
	if err != nil {
		return fmt.Errorf("store: set deployed version of flow %s to %d: %w", q(id), n, err)
	}
	return nil
}

func (s *Bolt) setDeployed(tx *bolt.Tx, c *commit, id string, n int) error {
	fb, err := flowBucket(tx, id)
	if err != nil {
		return err
	}
	rec, err := readFlow(fb, id)
	if err != nil {
		return err
	}
	if n > rec.Latest {
		return fmt.Errorf("version %d: %w", n, ErrNotFound)
	}
	rec.Deployed = n
	c.add(Change{Kind: KindFlow, Group: id})
	c.add(Change{Kind: KindDeploy, Group: id})
	c.deploy = true
	return writeFlow(fb, rec)
}

// ListVersions returns the versions of a flow, newest first.
func (s *Bolt) ListVersions(ctx context.Context, id string) ([]Version, error) {
	out := []Version{}
	err := CheckName("flow id", id, MaxNameLen)
	if err == nil {
		err = s.view(ctx, func(tx *bolt.Tx) error {
			fb, err := flowBucket(tx, id)
			if err != nil {
				return err
			}
			vs := fb.Bucket(bucketVersions)
			if vs == nil {
				return nil
			}
			c := vs.Cursor()
			for k, _ := c.Last(); k != nil; k, _ = c.Prev() {
				n, err := versionNumber(k)
				if err != nil {
					return fmt.Errorf("flows/%s/versions: %w", id, err)
				}
				v, err := readVersion(vs.Bucket(k), id, n)
				if err != nil {
					return err
				}
				out = append(out, v)
			}
			return nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("store: list versions of flow %s: %w", q(id), err)
	}
	return out, nil
}

func versionNumber(k []byte) (int, error) {
	if len(k) != 8 {
		return 0, fmt.Errorf("version key %x: %w", k, errCorrupt)
	}
	n := binary.BigEndian.Uint64(k)
	if n < 1 || n > math.MaxInt32 {
		return 0, fmt.Errorf("version key %x: %w", k, errCorrupt)
	}
	return int(n), nil
}

// GetVersion returns version n (1, 2, ...) of a flow.
func (s *Bolt) GetVersion(ctx context.Context, id string, n int) (Version, error) {
	var v Version
	err := CheckName("flow id", id, MaxNameLen)
	if err == nil && n < 1 {
		err = fmt.Errorf("version %d: %w", n, ErrInvalid)
	}
	if err == nil {
		err = s.view(ctx, func(tx *bolt.Tx) error {
			fb, err := flowBucket(tx, id)
			if err != nil {
				return err
			}
			var vb *bolt.Bucket
			if vs := fb.Bucket(bucketVersions); vs != nil {
				vb = vs.Bucket(versionKey(n))
			}
			if vb == nil {
				return fmt.Errorf("version %d: %w", n, ErrNotFound)
			}
			v, err = readVersion(vb, id, n)
			return err
		})
	}
	if err != nil {
		return Version{}, fmt.Errorf("store: get version %d of flow %s: %w", n, q(id), err)
	}
	return v, nil
}
