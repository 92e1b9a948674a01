package flowd

import (
	"context"
	"testing"

	"github.com/flowd/flowd/store/storetest"
)

// The set-up helpers of this package's tests, internal (package flowd) and
// external (package flowd_test) alike.

// NewTest builds a flowd with opts, on a fresh storetest.TempBolt when
// opts.Store is nil, and closes it when the test ends (before its store).
func NewTest(t testing.TB, opts Options) *Flowd {
	t.Helper()
	if opts.Store == nil {
		opts.Store = storetest.TempBolt(t)
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
