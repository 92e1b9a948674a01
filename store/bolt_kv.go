package store

import (
	"context"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// KV and secrets share one layout, top/<group>/<name> -> value; they differ
// only in the value being sealed. These helpers hold the layout.

// getIn returns a copy of top/group/name, or ErrNotFound.
func getIn(tx *bolt.Tx, topName []byte, group, name string) ([]byte, error) {
	t, err := top(tx, topName)
	if err != nil {
		return nil, err
	}
	gb := t.Bucket([]byte(group))
	if gb == nil {
		return nil, ErrNotFound
	}
	v := gb.Get([]byte(name))
	if v == nil {
		return nil, ErrNotFound
	}
	return clone(v), nil
}

func putIn(tx *bolt.Tx, topName []byte, group, name string, val []byte) error {
	t, err := top(tx, topName)
	if err != nil {
		return err
	}
	gb, err := t.CreateBucketIfNotExists([]byte(group))
	if err != nil {
		return err
	}
	if val == nil {
		val = []byte{}
	}
	return gb.Put([]byte(name), val)
}

// deleteIn removes top/group/name, and the group bucket once it is empty.
func deleteIn(tx *bolt.Tx, topName []byte, group, name string) error {
	t, err := top(tx, topName)
	if err != nil {
		return err
	}
	gb := t.Bucket([]byte(group))
	if gb == nil || gb.Get([]byte(name)) == nil {
		return ErrNotFound
	}
	if err := gb.Delete([]byte(name)); err != nil {
		return err
	}
	if k, _ := gb.Cursor().First(); k == nil {
		return t.DeleteBucket([]byte(group))
	}
	return nil
}

func listIn(tx *bolt.Tx, topName []byte, group string) ([]string, error) {
	t, err := top(tx, topName)
	if err != nil {
		return nil, err
	}
	gb := t.Bucket([]byte(group))
	if gb == nil {
		return []string{}, nil
	}
	out := []string{}
	err = gb.ForEach(func(k, _ []byte) error {
		out = append(out, string(k))
		return nil
	})
	return out, err
}

// GetKV returns the value of ns/key, or ErrNotFound.
func (s *Bolt) GetKV(ctx context.Context, ns, key string) ([]byte, error) {
	return s.readRecord(ctx, kvRecords, ns, key)
}

// SetKV writes ns/key. A nil val is stored as an empty value; use DeleteKV
// to remove a key.
func (s *Bolt) SetKV(ctx context.Context, ns, key string, val []byte) error {
	return s.putKV(ctx, "set", ns, key, val, false)
}

// putKV writes ns/key; create writes it only if it is absent
// (ErrConflict if present). verb names the call in errors.
func (s *Bolt) putKV(ctx context.Context, verb, ns, key string, val []byte, create bool) error {
	err := CheckKV(ns, key)
	if err == nil {
		err = s.write(ctx, func(tx *bolt.Tx, c *commit) error {
			if create {
				_, err := getIn(tx, bucketKV, ns, key)
				switch {
				case err == nil:
					return fmt.Errorf("key exists: %w", ErrConflict)
				case !errors.Is(err, ErrNotFound):
					return err
				}
			}
			c.add(Change{Kind: KindKV, Group: ns, Name: key})
			return putIn(tx, bucketKV, ns, key, val)
		})
	}
	if err != nil {
		return fmt.Errorf("store: %s kv %s/%s: %w", verb, q(ns), q(key), err)
	}
	return nil
}

// DeleteKV removes ns/key; ErrNotFound if it is not there.
func (s *Bolt) DeleteKV(ctx context.Context, ns, key string) error {
	return s.deleteRecord(ctx, kvRecords, ns, key)
}

// ListKV returns the keys of ns in byte order; an unknown ns is empty.
func (s *Bolt) ListKV(ctx context.Context, ns string) ([]string, error) {
	return s.listRecords(ctx, kvRecords, ns)
}

// UpdateKV reads, changes and writes ns/key in one transaction. fn gets nil
// when the key does not exist; returning nil deletes it. An error from fn
// aborts the transaction and is returned as is.
func (s *Bolt) UpdateKV(ctx context.Context, ns, key string, fn func(old []byte) ([]byte, error)) error {
	return s.updateRecord(ctx, kvRecords, ns, key, fn)
}

// applyUpdate stores the result of an update function: nil deletes.
func applyUpdate(tx *bolt.Tx, c *commit, kind Kind, topName []byte, group, name string, existed bool, val []byte) error {
	if val != nil {
		c.add(Change{Kind: kind, Group: group, Name: name})
		return putIn(tx, topName, group, name, val)
	}
	if existed {
		c.add(Change{Kind: kind, Group: group, Name: name, Deleted: true})
		return deleteIn(tx, topName, group, name)
	}
	return nil
}

// getRecord reads top/group/name inside tx, opening a sealed value; nil,
// ErrNotFound if absent.
func (s *Bolt) getRecord(tx *bolt.Tx, topName []byte, group, name string, sealed bool) ([]byte, error) {
	v, err := getIn(tx, topName, group, name)
	if err != nil || !sealed {
		return v, err
	}
	// The key passed the key check at open, so a failure means the record
	// itself is damaged or was copied here from another name.
	return s.sealer.Open(v, group, name)
}

// updateRecord is the read-change-write of UpdateKV and UpdateSecret in one
// write transaction; sealed values are opened for fn and its result sealed.
// An error of fn is returned as is.
func (s *Bolt) updateRecord(ctx context.Context, t recordTable, group, name string, fn func(old []byte) ([]byte, error)) error {
	err := s.ready(t)
	if err == nil {
		err = t.check(group, name)
	}
	if err == nil && fn == nil {
		err = fmt.Errorf("nil update function: %w", ErrInvalid)
	}
	var fnErr error
	if err == nil {
		err = s.write(ctx, func(tx *bolt.Tx, c *commit) error {
			old, err := s.getRecord(tx, t.top, group, name, t.sealed)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
			val, err := fn(old)
			if err != nil {
				fnErr = err
				return err
			}
			if val != nil && t.sealed {
				val = s.sealer.Seal(val, group, name)
			}
			return applyUpdate(tx, c, t.kind, t.top, group, name, old != nil, val)
		})
	}
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("store: update %s %s/%s: %w", t.one, q(group), q(name), err)
	}
	return nil
}

// recordTable is one of the two buckets of records in the same shape
// (group, then name): KV records and sealed secrets.
type recordTable struct {
	kind      Kind
	top       []byte
	sealed    bool                           // secrets: needs the master key
	check     func(group, name string) error // the names' check
	groupName string                         // what a group is called ("namespace")
	one, many string                         // the record in errors ("kv", "kv")
}

var (
	kvRecords     = recordTable{kind: KindKV, top: bucketKV, check: CheckKV, groupName: "namespace", one: "kv", many: "kv"}
	secretRecords = recordTable{kind: KindSecret, top: bucketSecrets, sealed: true, check: CheckSecret,
		groupName: "kind", one: "secret", many: "secrets"}
)

// ready refuses a sealed table's records without a master key.
func (s *Bolt) ready(t recordTable) error {
	if t.sealed {
		return s.secretReady()
	}
	return nil
}

// readRecord returns the value of group/name, opened if it is sealed;
// ErrNotFound if it is not there.
func (s *Bolt) readRecord(ctx context.Context, t recordTable, group, name string) ([]byte, error) {
	var v []byte
	err := s.ready(t)
	if err == nil {
		err = t.check(group, name)
	}
	if err == nil {
		err = s.view(ctx, func(tx *bolt.Tx) (err error) {
			v, err = s.getRecord(tx, t.top, group, name, t.sealed)
			return err
		})
	}
	if err != nil {
		return nil, fmt.Errorf("store: get %s %s/%s: %w", t.one, q(group), q(name), err)
	}
	return v, nil
}

// deleteRecord removes group/name in one write transaction; ErrNotFound
// if it is not there.
func (s *Bolt) deleteRecord(ctx context.Context, t recordTable, group, name string) error {
	err := s.ready(t)
	if err == nil {
		err = t.check(group, name)
	}
	if err == nil {
		err = s.write(ctx, func(tx *bolt.Tx, c *commit) error {
			c.add(Change{Kind: t.kind, Group: group, Name: name, Deleted: true})
			return deleteIn(tx, t.top, group, name)
		})
	}
	if err != nil {
		return fmt.Errorf("store: delete %s %s/%s: %w", t.one, q(group), q(name), err)
	}
	return nil
}

// listRecords returns the names in group in byte order (sealed values stay
// sealed); an unknown group is empty.
func (s *Bolt) listRecords(ctx context.Context, t recordTable, group string) ([]string, error) {
	var names []string
	err := s.ready(t)
	if err == nil {
		err = CheckName(t.groupName, group, MaxNameLen)
	}
	if err == nil {
		err = s.view(ctx, func(tx *bolt.Tx) (err error) {
			names, err = listIn(tx, t.top, group)
			return err
		})
	}
	if err != nil {
		return nil, fmt.Errorf("store: list %s %s: %w", t.many, q(group), err)
	}
	return names, nil
}

// CreateKV writes ns/key only if it is absent; ErrConflict if present.
func (s *Bolt) CreateKV(ctx context.Context, ns, key string, val []byte) error {
	return s.putKV(ctx, "create", ns, key, val, true)
}

// UpdateKVs reads, changes and writes several records in one transaction
// (store.KV.UpdateKVs). A result equal to the old value is not written.
func (s *Bolt) UpdateKVs(ctx context.Context, refs []KVRef, fn func(old [][]byte) ([][]byte, error)) error {
	err := CheckKVRefs(refs)
	if err == nil && fn == nil {
		err = fmt.Errorf("nil update function: %w", ErrInvalid)
	}
	var fnErr error
	if err == nil {
		err = s.write(ctx, func(tx *bolt.Tx, c *commit) error {
			olds := make([][]byte, len(refs))
			in := make([][]byte, len(refs))
			for i, r := range refs {
				old, err := getIn(tx, bucketKV, r.NS, r.Key)
				if err != nil && !errors.Is(err, ErrNotFound) {
					return err
				}
				olds[i] = old
				if old != nil {
					in[i] = clone(old) // fn owns what it gets
				}
			}
			vals, err := fn(in)
			if err != nil {
				fnErr = err
				return err
			}
			if err := CheckKVResults(refs, vals); err != nil {
				return err
			}
			for i, r := range refs {
				if SameValue(olds[i], vals[i]) {
					continue
				}
				if err := applyUpdate(tx, c, KindKV, bucketKV, r.NS, r.Key, olds[i] != nil, vals[i]); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("store: update kv %s: %w", QuoteKVRefs(refs), err)
	}
	return nil
}
