package storetest

import (
	"context"
	"sync/atomic"

	"github.com/flowd/flowd/store"
)

// TwiceUpdates returns s with every update function (UpdateKV, UpdateKVs
// and UpdateSecret) called twice per update,
// the first call's result and error discarded, as an optimistic backend
// does after a conflict. Run a package's tests over it to check that its
// closures keep the update contract of store.KV.UpdateKV:
//
//   - a closure that counts, appends, sends or spends something on each
//     call does it twice, and the test sees the doubled effect;
//   - a closure that reads a variable an earlier call left behind (a flag
//     set only in some branches, a value computed "the first time") sees
//     the first call's leftovers;
//   - a closure that modifies old in place and relies on it, or returns a
//     slice aliasing state kept from the first call, is caught by the
//     separate copies each call gets.
//
// Both calls see the same stored record; a closure whose verdict differs
// when the record changes between attempts (a grant revoked meanwhile)
// needs a test that writes between the calls (see BetweenUpdates).
//
// The result keeps store.Runs when s has it; it hides the optional
// store.KVExpiry and store.Limited of s.
func TwiceUpdates(s store.Store) store.Store {
	return BetweenUpdates(s, nil)
}

// BetweenUpdates is TwiceUpdates with a hook: between the first and the
// second call of each update function, between(ns, key) runs and may
// return a replacement for what the second call sees as old (and what is
// then treated as the stored record), as if another node had committed it
// in between; it returns (nil, false) to leave old as it is. ns is the KV
// namespace or the secret kind; secret is true for UpdateSecret. For
// UpdateKVs it runs once per record, in order.
func BetweenUpdates(s store.Store, between func(secret bool, ns, key string, old []byte) ([]byte, bool)) store.Store {
	t := &twice{Store: s, between: between}
	if r, ok := s.(store.Runs); ok {
		return &twiceRuns{twice: t, Runs: r}
	}
	return t
}

// TwiceCalls returns how many update functions a TwiceUpdates store ran
// (both calls counted), so a test can show the decorator was in the path.
// It is 0 for any other store.
func TwiceCalls(s store.Store) int64 {
	switch t := s.(type) {
	case *twice:
		return t.calls.Load()
	case *twiceRuns:
		return t.calls.Load()
	}
	return 0
}

type twice struct {
	store.Store
	between func(secret bool, ns, key string, old []byte) ([]byte, bool)
	calls   atomic.Int64
}

type twiceRuns struct {
	*twice
	store.Runs
}

// Close is ambiguous between the embedded Store and Runs (bbolt is both).
func (t *twiceRuns) Close() error { return t.twice.Close() }

func copyOf(b []byte) []byte {
	if b == nil {
		return nil
	}
	return store.Clone(b)
}

func (t *twice) wrap(secret bool, ns, key string, fn func(old []byte) ([]byte, error)) func(old []byte) ([]byte, error) {
	if fn == nil {
		return nil // the store reports it
	}
	return func(old []byte) ([]byte, error) {
		t.calls.Add(2)
		_, _ = fn(copyOf(old)) // the attempt a conflict threw away
		if t.between != nil {
			if v, ok := t.between(secret, ns, key, copyOf(old)); ok {
				old = v
			}
		}
		return fn(copyOf(old))
	}
}

func (t *twice) UpdateKV(ctx context.Context, ns, key string, fn func(old []byte) ([]byte, error)) error {
	return t.Store.UpdateKV(ctx, ns, key, t.wrap(false, ns, key, fn))
}

func (t *twice) UpdateSecret(ctx context.Context, kind, name string, fn func(old []byte) ([]byte, error)) error {
	return t.Store.UpdateSecret(ctx, kind, name, t.wrap(true, kind, name, fn))
}

func (t *twice) UpdateKVs(ctx context.Context, refs []store.KVRef, fn func(old [][]byte) ([][]byte, error)) error {
	if fn == nil {
		return t.Store.UpdateKVs(ctx, refs, nil) // the store reports it
	}
	copies := func(old [][]byte) [][]byte {
		out := make([][]byte, len(old))
		for i, v := range old {
			out[i] = copyOf(v)
		}
		return out
	}
	return t.Store.UpdateKVs(ctx, refs, func(old [][]byte) ([][]byte, error) {
		t.calls.Add(2)
		_, _ = fn(copies(old)) // the attempt a conflict threw away
		if t.between != nil && len(old) == len(refs) {
			for i, r := range refs {
				if v, ok := t.between(false, r.NS, r.Key, copyOf(old[i])); ok {
					old[i] = v
				}
			}
		}
		return fn(copies(old))
	})
}
