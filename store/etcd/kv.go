package etcd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/flowd/flowd/store"
)

// KV and secrets share one layout, <area>/<group>/<name> -> value; they
// differ only in the value being sealed (area "secrets").

func checkKV(ns, key string) error {
	if err := store.CheckName("namespace", ns, store.MaxNameLen); err != nil {
		return err
	}
	return store.CheckName("key", key, store.MaxKeyLen)
}

func checkSecret(kind, name string) error {
	if err := store.CheckName("kind", kind, store.MaxNameLen); err != nil {
		return err
	}
	return store.CheckName("name", name, store.MaxNameLen)
}

// area is one of the two record areas of that layout.
type area struct {
	name      string                         // the key prefix, and the records in errors ("kv", "secrets")
	one       string                         // one record in errors ("kv", "secret")
	groupName string                         // what a group is called ("namespace", "kind")
	check     func(group, name string) error // the names' check
	sealed    bool                           // values are sealed (secretCodec)
}

var (
	kvArea     = area{name: "kv", one: "kv", groupName: "namespace", check: checkKV}
	secretArea = area{name: "secrets", one: "secret", groupName: "kind", check: checkSecret, sealed: true}
)

// getRecord returns the value of group/name of the area, opened if it is
// sealed; ErrNotFound if it is not there.
func (s *Store) getRecord(ctx context.Context, a area, group, name string) ([]byte, error) {
	err := a.check(group, name)
	var r rec
	if err == nil {
		r, err = s.getRec(ctx, s.key(a.name, group, name))
	}
	if err == nil && r.modRev == 0 {
		err = store.ErrNotFound
	}
	val := r.val
	if err == nil && a.sealed {
		val, err = s.secretCodec(group, name).open(r.val)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get %s %s/%s: %w", a.one, q(group), q(name), err)
	}
	return val, nil
}

// deleteRecord removes group/name of the area; ErrNotFound if it is not
// there.
func (s *Store) deleteRecord(ctx context.Context, a area, group, name string) error {
	err := a.check(group, name)
	if err == nil {
		err = s.deleteRec(ctx, s.key(a.name, group, name))
	}
	if err != nil {
		return fmt.Errorf("store: delete %s %s/%s: %w", a.one, q(group), q(name), err)
	}
	return nil
}

// listRecords returns the names of a group of the area in byte order
// (values stay sealed); an unknown group is empty.
func (s *Store) listRecords(ctx context.Context, a area, group string) ([]string, error) {
	err := store.CheckName(a.groupName, group, store.MaxNameLen)
	var names []string
	if err == nil {
		names, err = s.listNames(ctx, a.name, group)
	}
	if err != nil {
		return nil, fmt.Errorf("store: list %s %s: %w", a.name, q(group), err)
	}
	return names, nil
}

func checkValue(val []byte) error {
	if len(val) > MaxValueBytes {
		return fmt.Errorf("value is %d bytes, more than the etcd store's limit of %d: %w", len(val), MaxValueBytes, store.ErrInvalid)
	}
	return nil
}

// rec is one record as read: nil value when absent.
type rec struct {
	val    []byte
	modRev int64
	lease  int64
}

func (s *Store) getRec(ctx context.Context, key string) (rec, error) {
	var resp *clientv3.GetResponse
	err := s.call(ctx, func(ctx context.Context) (err error) {
		resp, err = s.cli.Get(ctx, key)
		return err
	})
	if err != nil || len(resp.Kvs) == 0 {
		return rec{}, err
	}
	kv := resp.Kvs[0]
	return rec{val: append(make([]byte, 0, len(kv.Value)), kv.Value...), modRev: kv.ModRevision, lease: kv.Lease}, nil
}

func (s *Store) listNames(ctx context.Context, area, group string) ([]string, error) {
	pfx := s.prefix(area, group)
	var resp *clientv3.GetResponse
	err := s.call(ctx, func(ctx context.Context) (err error) {
		resp, err = s.cli.Get(ctx, pfx, clientv3.WithPrefix(), clientv3.WithKeysOnly())
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		name, err := unesc(strings.TrimPrefix(string(kv.Key), pfx))
		if err != nil {
			return nil, err
		}
		out = append(out, name)
	}
	// Escaping changes byte order ('%' sorts before '&'), so sort the names.
	slices.Sort(out)
	return out, nil
}

// GetKV returns the value of ns/key, or ErrNotFound.
func (s *Store) GetKV(ctx context.Context, ns, key string) ([]byte, error) {
	return s.getRecord(ctx, kvArea, ns, key)
}

// SetKV writes ns/key whatever was there. A nil val is stored empty.
func (s *Store) SetKV(ctx context.Context, ns, key string, val []byte) error {
	err := checkKV(ns, key)
	if err == nil {
		err = checkValue(val)
	}
	if err == nil {
		err = s.retrying(ctx, func() (bool, error) {
			ok, _, err := s.commit(ctx, nil, []clientv3.Op{clientv3.OpPut(s.key("kv", ns, key), string(val))}, nil)
			return ok, err
		})
	}
	if err != nil {
		return fmt.Errorf("store: set kv %s/%s: %w", q(ns), q(key), err)
	}
	return nil
}

// CreateKV writes ns/key only if it does not exist (ErrConflict if it does).
func (s *Store) CreateKV(ctx context.Context, ns, key string, val []byte) error {
	return s.createKV(ctx, ns, key, val, time.Time{})
}

// CreateKVUntil is CreateKV; the record is dropped some time after until.
func (s *Store) CreateKVUntil(ctx context.Context, ns, key string, val []byte, until time.Time) error {
	if until.IsZero() {
		return fmt.Errorf("store: create kv %s/%s: zero expiry: %w", q(ns), q(key), store.ErrInvalid)
	}
	return s.createKV(ctx, ns, key, val, until)
}

func (s *Store) createKV(ctx context.Context, ns, key string, val []byte, until time.Time) error {
	err := checkKV(ns, key)
	if err == nil {
		err = checkValue(val)
	}
	if err == nil {
		k := s.key("kv", ns, key)
		err = s.retrying(ctx, func() (bool, error) {
			var opts []clientv3.OpOption
			if !until.IsZero() {
				lease, err := s.leases.until(ctx, until)
				if err != nil {
					return false, err
				}
				opts = append(opts, clientv3.WithLease(lease))
			}
			ok, _, err := s.commit(ctx,
				[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(k), "=", 0)},
				[]clientv3.Op{clientv3.OpPut(k, string(val), opts...)}, nil)
			if err == nil && !ok {
				return false, fmt.Errorf("key exists: %w", store.ErrConflict)
			}
			return ok, err
		})
	}
	if err != nil {
		return fmt.Errorf("store: create kv %s/%s: %w", q(ns), q(key), err)
	}
	return nil
}

// DeleteKV removes ns/key; ErrNotFound if it is not there.
func (s *Store) DeleteKV(ctx context.Context, ns, key string) error {
	return s.deleteRecord(ctx, kvArea, ns, key)
}

func (s *Store) deleteRec(ctx context.Context, k string) error {
	return s.retrying(ctx, func() (bool, error) {
		ok, _, err := s.commit(ctx,
			[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(k), ">", 0)},
			[]clientv3.Op{clientv3.OpDelete(k)}, nil)
		if err == nil && !ok {
			return false, store.ErrNotFound
		}
		return ok, err
	})
}

// ListKV returns the keys of ns in byte order; an unknown ns is empty.
func (s *Store) ListKV(ctx context.Context, ns string) ([]string, error) {
	return s.listRecords(ctx, kvArea, ns)
}

// UpdateKV reads, changes and writes ns/key atomically. fn may run more
// than once (store.KV's update contract): each conflict runs it again on
// the value that won.
func (s *Store) UpdateKV(ctx context.Context, ns, key string, fn func(old []byte) ([]byte, error)) error {
	err := checkKV(ns, key)
	if err == nil {
		err = s.update(ctx, s.key("kv", ns, key), time.Time{}, fn, nil)
	}
	if err != nil && !errors.Is(err, errFn) {
		return fmt.Errorf("store: update kv %s/%s: %w", q(ns), q(key), err)
	}
	return unwrapFn(err)
}

// UpdateKVUntil is UpdateKV; the written record is dropped some time after
// until (through a lease shared by every record expiring in that minute).
func (s *Store) UpdateKVUntil(ctx context.Context, ns, key string, until time.Time, fn func(old []byte) ([]byte, error)) error {
	err := checkKV(ns, key)
	if err == nil && until.IsZero() {
		err = fmt.Errorf("zero expiry: %w", store.ErrInvalid)
	}
	if err == nil {
		err = s.update(ctx, s.key("kv", ns, key), until, fn, nil)
	}
	if err != nil && !errors.Is(err, errFn) {
		return fmt.Errorf("store: update kv %s/%s: %w", q(ns), q(key), err)
	}
	return unwrapFn(err)
}

// fnError carries an update function's error through the retry loop so
// it can be returned as is, unwrapped.
type fnError struct{ err error }

func (e *fnError) Error() string { return e.err.Error() }
func (e *fnError) Is(target error) bool {
	return target == errFn
}

var errFn = errors.New("update function failed")

func unwrapFn(err error) error {
	var fe *fnError
	if errors.As(err, &fe) {
		return fe.err
	}
	return err
}

// codec seals and opens values for secrets; nil for plain KV.
type codec struct {
	seal func(plain []byte) []byte
	open func(sealed []byte) ([]byte, error)
}

// update is the optimistic read-modify-write of one key: read it, run fn,
// then commit If ModRevision(key) == read. A result equal to the old value
// is checked with a read-only transaction, which writes nothing.
func (s *Store) update(ctx context.Context, k string, until time.Time, fn func(old []byte) ([]byte, error), c *codec) error {
	if fn == nil {
		return fmt.Errorf("nil update function: %w", store.ErrInvalid)
	}
	return s.retrying(ctx, func() (bool, error) {
		r, err := s.getRec(ctx, k)
		if err != nil {
			return false, err
		}
		var old []byte
		if r.modRev != 0 {
			old = r.val
			if c != nil {
				if old, err = c.open(r.val); err != nil {
					return false, err
				}
			}
		}
		var prev []byte
		if old != nil {
			prev = append(make([]byte, 0, len(old)), old...) // fn owns old
		}
		val, err := fn(old)
		if err != nil {
			return false, &fnError{err}
		}
		if err := checkValue(val); err != nil {
			return false, err
		}
		cmp := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(k), "=", r.modRev)}
		if until.IsZero() && (val == nil) == (prev == nil) && bytes.Equal(val, prev) {
			return s.validate(ctx, cmp)
		}
		var op clientv3.Op
		switch {
		case val == nil && r.modRev == 0:
			return s.validate(ctx, cmp)
		case val == nil:
			op = clientv3.OpDelete(k)
		default:
			stored := val
			if c != nil {
				stored = c.seal(val)
			}
			var opts []clientv3.OpOption
			switch {
			case !until.IsZero():
				lease, err := s.leases.until(ctx, until)
				if err != nil {
					return false, err
				}
				opts = append(opts, clientv3.WithLease(lease))
			case r.lease != 0:
				// Keep the expiry an UpdateKVUntil or CreateKVUntil set.
				opts = append(opts, clientv3.WithIgnoreLease())
			}
			op = clientv3.OpPut(k, string(stored), opts...)
		}
		ok, _, err := s.commit(ctx, cmp, []clientv3.Op{op}, nil)
		return ok, err
	})
}

// validate checks that cmps (and the context's fence) still hold, writing
// nothing: an update that changes nothing is still ordered after the read
// it was computed from.
func (s *Store) validate(ctx context.Context, cmps []clientv3.Cmp) (bool, error) {
	f, err := s.fenceOf(ctx)
	if err != nil {
		return false, err
	}
	var els []clientv3.Op
	if f != nil {
		cmps = append(cmps[:len(cmps):len(cmps)], clientv3.Compare(clientv3.CreateRevision(f.key), "=", f.rev))
		els = []clientv3.Op{clientv3.OpGet(f.key)}
	}
	var resp *clientv3.TxnResponse
	err = s.call(ctx, func(ctx context.Context) (err error) {
		resp, err = s.cli.Txn(ctx).If(cmps...).Else(els...).Commit()
		return err
	})
	if err != nil {
		return false, err
	}
	if !resp.Succeeded && f != nil && fenceLost(resp, f) {
		return false, fmt.Errorf("role %s: %w", q(f.role), store.ErrFenced)
	}
	return resp.Succeeded, nil
}

// GetSecret returns the decrypted value of kind/name, or ErrNotFound.
func (s *Store) GetSecret(ctx context.Context, kind, name string) ([]byte, error) {
	return s.getRecord(ctx, secretArea, kind, name)
}

func (s *Store) secretCodec(kind, name string) *codec {
	return &codec{
		seal: func(plain []byte) []byte { return s.sealer.Seal(plain, kind, name) },
		open: func(sealed []byte) ([]byte, error) { return s.sealer.Open(sealed, kind, name) },
	}
}

// sealOverhead is what sealing adds: format byte, nonce, tag.
const sealOverhead = 1 + 12 + 16

// UpdateSecret reads, changes and writes kind/name atomically, with
// UpdateKV's rules and update contract.
func (s *Store) UpdateSecret(ctx context.Context, kind, name string, fn func(old []byte) ([]byte, error)) error {
	err := checkSecret(kind, name)
	if err == nil && fn != nil {
		limited := func(old []byte) ([]byte, error) {
			val, err := fn(old)
			if err == nil && len(val)+sealOverhead > MaxValueBytes {
				return nil, fmt.Errorf("secret is %d bytes, more than the etcd store's limit of %d: %w", len(val), MaxValueBytes-sealOverhead, store.ErrInvalid)
			}
			return val, err
		}
		err = s.update(ctx, s.key("secrets", kind, name), time.Time{}, limited, s.secretCodec(kind, name))
	} else if err == nil {
		err = fmt.Errorf("nil update function: %w", store.ErrInvalid)
	}
	if err != nil && !errors.Is(err, errFn) {
		return fmt.Errorf("store: update secret %s/%s: %w", q(kind), q(name), err)
	}
	return unwrapFn(err)
}

// DeleteSecret removes kind/name; ErrNotFound if it is not there.
func (s *Store) DeleteSecret(ctx context.Context, kind, name string) error {
	return s.deleteRecord(ctx, secretArea, kind, name)
}

// ListSecrets returns the names of a kind in byte order; values stay sealed.
func (s *Store) ListSecrets(ctx context.Context, kind string) ([]string, error) {
	return s.listRecords(ctx, secretArea, kind)
}

// UpdateKVs reads, changes and writes several records atomically
// (store.KV.UpdateKVs): one read-only transaction reads them all at one
// revision, fn runs, and one transaction writes what changed If every
// record's ModRevision is still the one read (the unchanged ones are only
// compared). fn may run more than once: each conflict runs it again on
// the values that won.
func (s *Store) UpdateKVs(ctx context.Context, refs []store.KVRef, fn func(old [][]byte) ([][]byte, error)) error {
	err := store.CheckKVRefs(refs)
	if err == nil && fn == nil {
		err = fmt.Errorf("nil update function: %w", store.ErrInvalid)
	}
	if err == nil {
		keys := make([]string, len(refs))
		for i, r := range refs {
			keys[i] = s.key("kv", r.NS, r.Key)
		}
		err = s.retrying(ctx, func() (bool, error) { return s.updateMany(ctx, keys, refs, fn) })
	}
	if err != nil && !errors.Is(err, errFn) {
		return fmt.Errorf("store: update kv %s: %w", store.QuoteKVRefs(refs), err)
	}
	return unwrapFn(err)
}

// updateMany is one attempt of UpdateKVs.
func (s *Store) updateMany(ctx context.Context, keys []string, refs []store.KVRef, fn func(old [][]byte) ([][]byte, error)) (bool, error) {
	recs, err := s.getRecs(ctx, keys)
	if err != nil {
		return false, err
	}
	olds := make([][]byte, len(recs))
	in := make([][]byte, len(recs))
	for i, r := range recs {
		if r.modRev != 0 {
			olds[i] = r.val
			in[i] = append(make([]byte, 0, len(r.val)), r.val...) // fn owns what it gets
		}
	}
	vals, err := fn(in)
	if err != nil {
		return false, &fnError{err}
	}
	if err := store.CheckKVResults(refs, vals); err != nil {
		return false, err
	}
	cmps := make([]clientv3.Cmp, 0, len(keys))
	var ops []clientv3.Op
	total := 0
	for i, k := range keys {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", recs[i].modRev))
		switch val := vals[i]; {
		case store.SameValue(olds[i], val):
		case val == nil:
			ops = append(ops, clientv3.OpDelete(k))
		default:
			// One request carries every value: they share its limit.
			if total += len(val); total > MaxValueBytes {
				return false, fmt.Errorf("values of %d bytes together, more than the etcd store's limit of %d for one transaction: %w", total, MaxValueBytes, store.ErrInvalid)
			}
			var opts []clientv3.OpOption
			if recs[i].lease != 0 {
				// Keep the expiry an UpdateKVUntil or CreateKVUntil set.
				opts = append(opts, clientv3.WithIgnoreLease())
			}
			ops = append(ops, clientv3.OpPut(k, string(val), opts...))
		}
	}
	if len(ops) == 0 {
		return s.validate(ctx, cmps)
	}
	ok, _, err := s.commit(ctx, cmps, ops, nil)
	return ok, err
}

// getRecs reads several keys at one revision (one read-only transaction).
func (s *Store) getRecs(ctx context.Context, keys []string) ([]rec, error) {
	gets := make([]clientv3.Op, len(keys))
	for i, k := range keys {
		gets[i] = clientv3.OpGet(k)
	}
	var resp *clientv3.TxnResponse
	err := s.call(ctx, func(ctx context.Context) (err error) {
		resp, err = s.cli.Txn(ctx).Then(gets...).Commit()
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]rec, len(keys))
	for i, r := range resp.Responses {
		kvs := r.GetResponseRange().Kvs
		if len(kvs) == 0 {
			continue
		}
		kv := kvs[0]
		out[i] = rec{val: append(make([]byte, 0, len(kv.Value)), kv.Value...), modRev: kv.ModRevision, lease: kv.Lease}
	}
	return out, nil
}
