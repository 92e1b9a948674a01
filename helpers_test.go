package flowd_test

import (
	"testing"

	"github.com/flowd/flowd"
)

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
