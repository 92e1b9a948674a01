package flowd

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"

	"github.com/flowd/flowd/store"
)

// The set-up helpers of this package's tests, internal (package flowd) and
// external (package flowd_test) alike.

// OpenTestBolt opens a bbolt store in the test's temp folder with a fresh
// master key (opts' other fields as given), closed when the test ends.
func OpenTestBolt(t testing.TB, opts store.BoltOptions) *store.Bolt {
	t.Helper()
	opts.MasterKey = make([]byte, 32)
	rand.Read(opts.MasterKey)
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "flowd.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// NewTest builds a flowd with opts, on a fresh OpenTestBolt when
// opts.Store is nil, and closes it when the test ends (before its store).
func NewTest(t testing.TB, opts Options) *Flowd {
	t.Helper()
	if opts.Store == nil {
		opts.Store = OpenTestBolt(t, store.BoltOptions{})
	}
	fd, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fd.Close(context.Background()) })
	return fd
}

// StartTest is NewTest, started.
func StartTest(t testing.TB, opts Options) *Flowd {
	t.Helper()
	fd := NewTest(t, opts)
	if err := fd.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return fd
}
