package storetest

import (
	"crypto/rand"
	"path/filepath"
	"testing"

	"github.com/flowd/flowd/store"
)

// The one temp bbolt opener of the module's tests: every package's tests
// open their store here rather than each copying store.OpenBolt set-up.

// TempBolt opens a bolt store in the test's temporary directory under a
// fresh random master key, and closes it when the test ends.
func TempBolt(t testing.TB) *store.Bolt {
	t.Helper()
	return TempBoltWith(t, store.BoltOptions{})
}

// TempBoltWith is TempBolt with opts' other fields as given (a clock, run
// limits); opts.MasterKey is used when set, else a fresh random one.
func TempBoltWith(t testing.TB, opts store.BoltOptions) *store.Bolt {
	t.Helper()
	if opts.MasterKey == nil {
		opts.MasterKey = make([]byte, 32)
		rand.Read(opts.MasterKey)
	}
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "flowd.db"), opts)
	if err != nil {
		t.Fatalf("storetest: open bolt: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("storetest: close bolt: %v", err)
		}
	})
	return st
}

// BoltAt opens the bolt store at path under a fixed (zero) master key, so
// a test can close it and open it again as a restarted node would. The
// caller closes it.
func BoltAt(t testing.TB, path string) *store.Bolt {
	t.Helper()
	st, err := store.OpenBolt(path, store.BoltOptions{MasterKey: make([]byte, 32)})
	if err != nil {
		t.Fatalf("storetest: open bolt %s: %v", path, err)
	}
	return st
}
