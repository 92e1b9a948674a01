// Package enginetest is the test kit for block authors: what flowd's own
// block packages use to test their blocks, and what an embedder uses for
// its own.
//
//	reg := enginetest.Registry(t, mypkg.Register) // the blocks under test
//	enginetest.Trigger(t, reg, "test.start")      // a start node for Run
//	got := enginetest.Sink(t, reg, "test.sink")   // records what reaches it
//	f := enginetest.Flow(t, "f", []enginetest.Node{
//		{ID: "in", Type: "test.start"},
//		{ID: "greet", Type: "my.greet", Config: map[string]any{"name": `"ann"`}},
//		{ID: "out", Type: "test.sink"},
//	}, "in:out->greet", "greet:out->out")
//	tr, err := enginetest.Run(t, reg, f, engine.Msg{})  // deploy, run once
//	enginetest.CheckSpecs(t, reg)              // every field documented
//
// Flow builds a flow document and decodes it the way flowd reads files, so
// a test sees the same validation a user does; Chain is the shortcut for
// nodes wired one after the other. Runtime and Deploy give a runtime that
// is closed when the test ends; Run is the one-message shortcut; Refused
// checks the validation error of a flow the engine must refuse (node,
// field, line, column, message). Clock is a fake clock for
// engine.Options.Now, LogBuffer a concurrency-safe writer for a test's
// logger. Capture, Sink, Fail, Set and Trigger register small test
// blocks. CheckSpecs checks that a registry's specs are documented and its
// flow JSON Schema well formed.
//
// The package imports only the engine and the standard library (testing
// included): it is for tests, never for production code.
package enginetest
