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
