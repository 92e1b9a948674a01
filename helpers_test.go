package flowd_test

import (
	"testing"

	"github.com/flowd/flowd"
	"github.com/flowd/flowd/store"
)

// openBolt opens a bbolt store in the test's temp folder with a fresh
// master key, closed when the test ends.
func openBolt(t testing.TB) *store.Bolt {
	t.Helper()
	return flowd.OpenTestBolt(t, store.BoltOptions{})
}

// waitForMain waits until the prebuilt key-rollover flow, started with
// the examples, has created keyset main with its keys (from its start-up
// trigger, on a goroutine of its own).
func waitForMain(t *testing.T, fd *flowd.Flowd) {
	t.Helper()
	eventually(t, "the key-rollover flow creates keyset main", func() bool {
		info, err := fd.Keysets().Get(t.Context(), "main")
		return err == nil && len(info.Keys) > 0
	})
}
