package flowd_test

import (
	"crypto/rand"
	"path/filepath"
	"testing"

	"github.com/flowd/flowd/store"
)

// openBolt opens a bbolt store in the test's temp folder with a fresh
// master key, closed when the test ends.
func openBolt(t testing.TB) *store.Bolt {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "flowd.db"), store.BoltOptions{MasterKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
