// Package engine is flowd's block SDK and flow runtime: the flow document
// and its canonical codec, block specs and the Registry, config parsing,
// expressions (expr-lang, compiled once at deploy), the Runtime that
// deploys and runs flows, traces, limits and the flow JSON Schema. It
// imports only the standard library and expr; blocks depend on it, never
// the reverse.
//
// # Adding a block type
//
// This page, the test kit in engine/enginetest and the example block test
// there (enginetest/example_block_test.go: a complete block type and its
// test) are all a block author needs. A block type is a name, a spec and
// a factory:
//
//	func limitSpec() engine.Spec                                    // fields, ports, docs
//	func newLimitFromConfig(s *engine.Setup) (engine.Block, error)  // parse once, at deploy
//	func newLimit(field string, max int) *limit                     // pure; unit tests call it
//	func (l *limit) Process(ctx, x, msg) (port string, err error)   // one message
//
//	reg.Register(limitSpec(), newLimitFromConfig)                   // in the package's Register
//
// A block type lives in its package's block_<name>.go with an interface
// guard (var _ engine.Block = (*limit)(nil)), its tests in
// block_<name>_test.go, so `ls block_*` lists a package's types. Those
// tests build their registry, flows and runtime with the kit
// (enginetest.Registry, Flow or Chain, Runtime, Run) and check each config
// the block must refuse with enginetest.Refused (node, field, position,
// message), rather than by hand.
//
// A block package exports Register(*engine.Registry) error, which needs
// no service: registration is specs and factories only, so tooling (the
// JSON Schema, `flowd validate`) builds a bare registry. What a factory
// needs at deploy (a keyset manager, a router, a store) the host puts in
// Options.Services, usually through the package's Provide function, and
// the factory looks it up with Service. When only validating
// (Setup.Validating) without its services a factory should still check
// its config; at deploy a missing service is an error matching
// ErrNoService.
//
// The Spec is the one source for validation, the editor's side-panel form,
// the docs and the JSON Schema: give every field a Label and Help (the
// enginetest.CheckSpecs test insists). Types are namespaced ("acme.limit").
// A field marked Secret, and the message keys in Spec.Sensitive, are
// redacted in traces, logs and API answers.
//
// # The life of a block
//
//	Registry.Register(spec, factory)                 once, at start-up
//	        |
//	Runtime.Deploy(flow, version)
//	        |  every node: config parsed against its spec, defaults
//	        |  applied, expressions compiled (an error names node,
//	        |  field, line, column; nothing is built)
//	        v
//	factory(*Setup) ---> Block instance              once per node and version;
//	        |                                        Setup.Errorf is a deploy error
//	        |  every node built
//	        v
//	Trigger.Start(ctx, *TriggerContext)              trigger blocks only; an error
//	        |                                        stops the started ones and
//	        |                                        fails the deploy
//	        v
//	   version live:  TriggerContext.Fire ---> runs ---> Block.Process
//	        |
//	Deploy of the next version (it starts first), Undeploy or Close
//	        v
//	Trigger.Stop(ctx)  -->  runs in flight finish  -->  Closer.Close()
//
// Nothing is parsed or compiled per message: a factory does all the work
// a config allows, and Process only handles the message. During a
// redeploy the new version's triggers start before the old ones stop, so a
// trigger that claims a shared resource (an HTTP route) must accept a
// claim from the same flow. Closer is an optional hook, found by type
// assertion; so is Trigger.
//
// # The run loop
//
// A run carries one message from a trigger along the wires, breadth first,
// on the caller's goroutine (an HTTP handler, a cron job):
//
//	trigger --out--> A --ok--> B          each wire of a port gets its own
//	                   \--ok--> C         copy of the message (CopyValue);
//	                   \-error-> D        a port with no wire ends that branch
//
// Process gets the block's own copy of the message (mutate it freely) and
// an *Exec (run id, flow, node, logger, the run's clock, flow variables,
// MarkSecret and Redact), and returns the port to send it on; "" ends the
// branch. Every run is bounded by Limits: node executions (ErrStepLimit),
// a deadline on ctx (ErrDeadline; Process must honour ctx) and the
// estimated message size (ErrMessageTooBig). Every run leaves a Trace:
// per step the node, the port taken, the duration, the error and a
// redacted, size-bounded snapshot of the message (light runs past the
// flow's snapshot rate keep only failed steps' messages). EncodeTrace and
// DecodeTrace are its stored and served form.
//
// # Errors and the error port
//
//	Process returns err
//	      |
//	      +-- the node's "error" port is wired --> msg.error = {message, node};
//	      |                                        the run goes on down that wire
//	      +-- not wired (or the deadline passed) --> the run fails: Trace.Status
//	                                                 "error", Trace.ErrorNode,
//	                                                 the error returned to the
//	                                                 trigger (http.in answers 500
//	                                                 with the run id)
//
// Every non-trigger block has the implicit ErrorPort; a block never lists
// it in Spec.Outputs. Config problems are deploy errors, not run errors:
// return them from the factory with Setup.Errorf so they name the field.
// Errors wrap with %w; the engine's sentinels are checked with errors.Is.
//
// # Panics
//
// Panics are for programmer errors at start-up only: Registry.MustRegister
// panics on a bad spec. Everywhere a block's code runs, the engine
// recovers:
//
//	factory panics         -> a deploy error naming the node
//	Trigger.Start panics   -> a deploy error; started triggers are stopped
//	Block.Process panics   -> a run error wrapping ErrBlockPanic with the
//	                          run id (it takes the error port like any
//	                          error); the stack goes to the log, not the trace
//	Trigger.Stop panics    -> logged; the other triggers still stop
//
// A block that starts goroutines of its own (a scheduler, a refresh loop)
// must recover in them itself: the engine cannot.
package engine
