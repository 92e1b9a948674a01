package flowd

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/store/memstore"
)

func TestFeedGate(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		started bool
		last    time.Time
		err     string
	}{
		{name: "not following a feed", started: false, last: time.Time{}},
		{name: "feed spoke just now", started: true, last: now.Add(-900 * time.Millisecond)},
		{name: "at the bound", started: true, last: now.Add(-maxKeyStaleness)},
		{name: "silent past the bound", started: true, last: now.Add(-7 * time.Second),
			err: "heard nothing from the store's change feed for 7s (more than 5s), so it may have missed a key revocation"},
		{name: "never heard", started: true, last: time.Time{}, err: "may have missed a key revocation"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gate := feedGate(func() (bool, time.Time) { return tc.started, tc.last }, func() time.Time { return now }, maxKeyStaleness)
			err := gate()
			if tc.err == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("err = %v, want one containing %q that is store.ErrUnavailable", err, tc.err)
			}
		})
	}
}

// TestSignGateOnlyOnClusterStores: a single-node store has an in-process
// feed that cannot fall silent: no gate, however long nothing changes.
func TestSignGateOnlyOnClusterStores(t *testing.T) {
	st := memstore.MustNew(t, memstore.Options{})
	fd, err := New(Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if fd.keysets.SignGate != nil {
		t.Error("a sign gate on a store that is not shared")
	}
	if isClusterStore(st) {
		t.Error("memstore taken for a cluster store")
	}
}
