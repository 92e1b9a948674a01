package flowd_test

import (
	"testing"

	"github.com/flowd/flowd"
	"github.com/flowd/flowd/engine/enginetest"
	"github.com/flowd/flowd/store/memstore"
)

// TestBlockSpecs runs the block authors' spec check over the registry
// flowd really builds: every block package's types, documented for the
// editor, the docs and the flow JSON Schema.
func TestBlockSpecs(t *testing.T) {
	st, err := memstore.New(memstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fd := flowd.NewTest(t, flowd.Options{Store: st, Issuer: "http://flowd.test"})
	enginetest.CheckSpecs(t, fd.App().Registry())
}
