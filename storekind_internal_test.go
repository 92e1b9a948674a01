package flowd

import (
	"testing"

	"github.com/flowd/flowd/store"
	"github.com/flowd/flowd/store/etcd"
	"github.com/flowd/flowd/store/memstore"
	"github.com/flowd/flowd/store/storetest"
)

// TestStoreKind: the latency metric's kind label names the backend, and
// anything else is "other" (never a path or an address).
func TestStoreKind(t *testing.T) {
	mem := memstore.MustNew(t, memstore.Options{})
	tests := []struct {
		name string
		s    any
		want string
	}{
		{"bbolt", (*store.Bolt)(nil), "bbolt"},
		{"etcd", (*etcd.Store)(nil), "etcd"},
		{"memstore", mem, "memory"},
		{"a decorator", storetest.TwiceUpdates(mem), "other"},
		{"nil", nil, "other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := storeKind(tt.s); got != tt.want {
				t.Errorf("storeKind(%T) = %q, want %q", tt.s, got, tt.want)
			}
		})
	}
}
