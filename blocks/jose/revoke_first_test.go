package jose

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/flowd/flowd/store/memstore"
)

// failAfter is a store whose secret writes fail after the first n.
type failAfter struct {
	*memstore.Store
	n int
}

var errSecondWrite = errors.New("store gone")

func (s *failAfter) UpdateSecret(ctx context.Context, kind, name string, fn func([]byte) ([]byte, error)) error {
	if s.n <= 0 {
		return errSecondWrite
	}
	s.n--
	return s.Store.UpdateSecret(ctx, kind, name, fn)
}

// TestRevokeCommitsBeforeTheNewNextKey: revoking a next key commits the
// revocation on its own, before the replacement next key is generated
// (seconds for RSA), so it reaches every node at once; a failure of the
// second write leaves the key revoked, and Revoke says so.
func TestRevokeCommitsBeforeTheNewNextKey(t *testing.T) {
	ctx := t.Context()
	mem := memstore.MustNew(t, memstore.Options{})
	createKeyset(t, NewKeysets(mem), "main", "ES256")
	st := &failAfter{Store: mem, n: 1}
	m := NewKeysets(st)
	ks, _, err := m.read(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	next := ks.Keys[liveIndex(&ks, "ES256", StateNext)].Kid
	if err := m.Revoke(ctx, "main", next); !errors.Is(err, errSecondWrite) {
		t.Fatalf("Revoke with the second write failing: %v, want the store's error", err)
	}
	after, _, err := NewKeysets(mem).read(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(after.Keys, func(k Key) bool { return k.Kid == next })
	if i < 0 || !after.Keys[i].Revoked {
		t.Fatalf("the revoked next key in the store: %+v, want revoked", after.Keys)
	}
}
