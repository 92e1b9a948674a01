// Package core provides flowd's control blocks: the manual trigger, message
// editing (core.set), routing (core.switch), logging (core.log), failing a
// run on purpose (core.fail), flow variables (core.kv_get, core.kv_set) and
// a bounded wait (core.delay).
//
// Every block here is pure engine plumbing: it imports only the engine, keeps
// no global mutable state, and compiles its expressions at deploy. A message
// moves through them like this:
//
//	core.manual --out--> core.set --out--> core.switch --<rule>--> ...
//	                                                   \--else--> ...
//	every non-trigger block also has the engine's implicit "error" port.
//
// The "error" port of a block catches its own failures; core.catch catches
// the failed runs of a flow (or of every flow: an error flow). core.delay waits within the run (runs are synchronous), so it is bounded
// by the run deadline.
//
// Each block type lives in block_<name>.go (core.kv_get and core.kv_set
// share block_kv.go; core.input, core.output and core.call block_call.go)
// with its spec, factory and an interface guard; its tests in
// block_<name>_test.go.
package core

import (
	"errors"

	"github.com/flowd/flowd/engine"
)

// Category is the editor palette group of every block in this package.
const Category = "core"

// ErrFail is wrapped by the error of core.fail, so an embedder can tell a
// deliberate failure from a broken block with errors.Is.
var ErrFail = errors.New("failed by core.fail")

// Register adds the core block types and their lint checks to reg. The
// core blocks need no services.
func Register(reg *engine.Registry) error {
	blocks := []struct {
		spec    engine.Spec
		factory engine.Factory
	}{
		{manualSpec(), newManualFromConfig},
		{startupSpec(), newStartupFromConfig},
		{setSpec(), newSetFromConfig},
		{switchSpec(), newSwitchFromConfig},
		{logSpec(), newLogFromConfig},
		{failSpec(), newFailFromConfig},
		{kvGetSpec(), newKVGetFromConfig},
		{kvSetSpec(), newKVSetFromConfig},
		{delaySpec(), newDelayFromConfig},
		{catchSpec(), newCatchFromConfig},
		{inputSpec(), newInputFromConfig},
		{outputSpec(), newOutputFromConfig},
		{callSpec(), newCallFromConfig},
	}
	for _, b := range blocks {
		if err := reg.Register(b.spec, b.factory); err != nil {
			return err
		}
	}
	return registerLint(reg)
}
