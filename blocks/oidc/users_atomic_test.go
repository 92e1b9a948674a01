package oidc

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/store/memstore"
)

// indexFailsKV fails every write that touches the users' sub index, as a
// disk that fills (or a process that dies) between two writes would, and
// every delete, so that no best-effort undo can hide a half-done change.
type indexFailsKV struct{ KV }

func (k indexFailsKV) UpdateKV(ctx context.Context, ns, key string, fn func(old []byte) ([]byte, error)) error {
	if ns == nsUserSubs {
		return errDiskGone
	}
	return k.KV.UpdateKV(ctx, ns, key, fn)
}

func (k indexFailsKV) UpdateKVs(ctx context.Context, refs []store.KVRef, fn func(old [][]byte) ([][]byte, error)) error {
	if slices.ContainsFunc(refs, func(r store.KVRef) bool { return r.NS == nsUserSubs }) {
		return errDiskGone
	}
	return k.KV.UpdateKVs(ctx, refs, fn)
}

func (k indexFailsKV) DeleteKV(context.Context, string, string) error { return errDiskGone }

// A user and its sub index are written and removed together: a failed
// write leaves either both records or neither, never a user that BySub
// cannot find (it would sign in but fail at userinfo and refresh) nor a
// remove that reports failure after deleting the user.
func TestUsersRecordAndIndexTogether(t *testing.T) {
	ctx := t.Context()
	st := memstore.MustNew(t, memstore.Options{})
	healthy := NewUsers(st)
	failing := NewUsers(indexFailsKV{st})

	t.Run("add fails whole", func(t *testing.T) {
		if _, err := failing.Add(ctx, User{Username: "ada"}, testPassword); !errors.Is(err, errDiskGone) {
			t.Fatalf("Add with a failing index write: %v, want errDiskGone", err)
		}
		if _, err := healthy.Get(ctx, "ada"); !errors.Is(err, ErrNoUser) {
			t.Fatalf("after the failed Add, Get: %v, want ErrNoUser (no user without its index)", err)
		}
		if subs, err := st.ListKV(ctx, nsUserSubs); err != nil || len(subs) != 0 {
			t.Fatalf("sub index after the failed Add: %v, %v; want empty", subs, err)
		}
	})

	ada, err := healthy.Add(ctx, User{Username: "ada"}, testPassword)
	if err != nil {
		t.Fatalf("Add after the failure: %v", err)
	}
	if got, err := healthy.BySub(ctx, ada.Sub); err != nil || got.Username != "ada" {
		t.Fatalf("BySub(%s) = %q, %v; want ada", ada.Sub, got.Username, err)
	}

	t.Run("existing name writes nothing", func(t *testing.T) {
		if _, err := healthy.Add(ctx, User{Username: "ada"}, testPassword); !errors.Is(err, ErrUserExists) {
			t.Fatalf("second Add of ada: %v, want ErrUserExists", err)
		}
		if subs, err := st.ListKV(ctx, nsUserSubs); err != nil || len(subs) != 1 || subs[0] != ada.Sub {
			t.Fatalf("sub index after the refused Add: %v, %v; want only %s", subs, err, ada.Sub)
		}
	})

	t.Run("remove fails whole", func(t *testing.T) {
		if err := failing.Remove(ctx, "ada"); !errors.Is(err, errDiskGone) {
			t.Fatalf("Remove with a failing index write: %v, want errDiskGone", err)
		}
		if got, err := healthy.BySub(ctx, ada.Sub); err != nil || got.Username != "ada" {
			t.Fatalf("after the failed Remove, BySub = %q, %v; want ada still there", got.Username, err)
		}
	})

	t.Run("remove", func(t *testing.T) {
		if err := healthy.Remove(ctx, "ada"); err != nil {
			t.Fatal(err)
		}
		if _, err := healthy.Get(ctx, "ada"); !errors.Is(err, ErrNoUser) {
			t.Fatalf("Get after Remove: %v, want ErrNoUser", err)
		}
		if subs, err := st.ListKV(ctx, nsUserSubs); err != nil || len(subs) != 0 {
			t.Fatalf("sub index after Remove: %v, %v; want empty", subs, err)
		}
	})
}
