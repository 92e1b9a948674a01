package memstore_test

import (
	"bytes"
	"errors"
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
