package storetest

import (
	"path/filepath"
	"testing"

	"github.com/flowd/flowd/store"
)

// TempBolt opens a bolt store in the test's temporary directory, with a
// zero master key, and closes it when the test ends. (Added with the
// blocks/jose tests; any package's tests may use it.)
func TempBolt(t testing.TB) *store.Bolt {
	t.Helper()
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "flowd.db"), store.BoltOptions{MasterKey: make([]byte, 32)})
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
