package memstore_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/store/memstore"
	"github.com/flowd/flowd/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := memstore.New(memstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestNodes(t *testing.T) {
	storetest.RunNodes(t, func(t *testing.T) (store.Store, store.Store) {
		a, err := memstore.New(memstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return a, a.Node()
	})
}

// memstore seals like every backend: the stored bytes open with
// store.Sealer under the same key, kind and name, and under no other.
func TestSealedLikeEveryBackend(t *testing.T) {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i)
	}
	s := memstore.MustNew(t, memstore.Options{MasterKey: key})
	if err := s.UpdateSecret(t.Context(), "keyset", "main", func([]byte) ([]byte, error) {
		return []byte("private key material"), nil
	}); err != nil {
		t.Fatal(err)
	}
	raw, ok := s.RawSecret("keyset", "main")
	if !ok || bytes.Contains(raw, []byte("private key material")) {
		t.Fatalf("raw record = %q, %v: not sealed", raw, ok)
	}
	sealer, err := store.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := sealer.Open(raw, "keyset", "main"); err != nil || string(plain) != "private key material" {
		t.Errorf("Sealer.Open = %q, %v", plain, err)
	}
	if _, err := sealer.Open(raw, "keyset", "other"); !errors.Is(err, store.ErrMasterKey) {
		t.Errorf("Open under another name: %v, want ErrMasterKey", err)
	}
	if _, err := sealer.Open(raw, "keyse", "tmain"); !errors.Is(err, store.ErrMasterKey) {
		t.Errorf("Open under a shifted kind/name split: %v, want ErrMasterKey", err)
	}
}

func TestTwiceUpdates(t *testing.T) {
	ctx := t.Context()
	s := storetest.TwiceUpdates(memstore.MustNew(t, memstore.Options{}))
	if _, ok := s.(store.Runs); !ok {
		t.Fatal("TwiceUpdates hid store.Runs")
	}
	calls, effects := 0, 0
	err := s.UpdateKV(ctx, "ns", "k", func(old []byte) ([]byte, error) {
		calls++
		return append(old, 'x'), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := s.GetKV(ctx, "ns", "k"); string(v) != "x" || calls != 2 {
		t.Errorf("value %q after %d calls, want x after 2 (first result discarded)", v, calls)
	}
	// A closure that keeps a verdict from an earlier call is visible.
	err = s.UpdateSecret(ctx, "kind", "name", func(old []byte) ([]byte, error) {
		effects++ // a side effect: breaks the contract
		return []byte("v"), nil
	})
	if err != nil || effects != 2 {
		t.Errorf("UpdateSecret: %v, side effect ran %d times, want 2", err, effects)
	}
	// UpdateKVs too: two calls, the first result discarded, each call on
	// its own copies.
	calls = 0
	refs := []store.KVRef{{NS: "ns", Key: "k"}, {NS: "ns", Key: "k2"}}
	err = s.UpdateKVs(ctx, refs, func(old [][]byte) ([][]byte, error) {
		calls++
		old[0] = append(old[0], 'y')
		return [][]byte{old[0], []byte(fmt.Sprint(calls))}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	v1, _ := s.GetKV(ctx, "ns", "k")
	v2, _ := s.GetKV(ctx, "ns", "k2")
	if string(v1) != "xy" || string(v2) != "2" || calls != 2 {
		t.Errorf("UpdateKVs: %q, %q after %d calls, want xy, 2 after 2 (first result discarded)", v1, v2, calls)
	}
	if storetest.TwiceCalls(s) != 6 {
		t.Errorf("TwiceCalls = %d, want 6", storetest.TwiceCalls(s))
	}
	// BetweenUpdates: the second call sees what "another node" wrote.
	b := storetest.BetweenUpdates(memstore.MustNew(t, memstore.Options{}), func(secret bool, ns, key string, old []byte) ([]byte, bool) {
		return []byte("theirs"), true
	})
	var saw []string
	err = b.UpdateKV(ctx, "ns", "k", func(old []byte) ([]byte, error) {
		saw = append(saw, string(old))
		return []byte("mine"), nil
	})
	if err != nil || len(saw) != 2 || saw[0] != "" || saw[1] != "theirs" {
		t.Errorf("BetweenUpdates: %v, calls saw %q", err, saw)
	}
	saw = nil
	err = b.UpdateKVs(ctx, []store.KVRef{{NS: "ns", Key: "m1"}, {NS: "ns", Key: "m2"}}, func(old [][]byte) ([][]byte, error) {
		saw = append(saw, string(old[0])+","+string(old[1]))
		return [][]byte{[]byte("mine"), old[1]}, nil
	})
	if err != nil || len(saw) != 2 || saw[0] != "," || saw[1] != "theirs,theirs" {
		t.Errorf("BetweenUpdates UpdateKVs: %v, calls saw %q", err, saw)
	}
	// What the second call left as "theirs" is stored as it saw it.
	if v, _ := b.GetKV(ctx, "ns", "m2"); string(v) != "theirs" {
		t.Errorf("BetweenUpdates UpdateKVs: m2 = %q, want theirs", v)
	}
}
