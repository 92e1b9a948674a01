// Package flowtest runs flow tests: JSON files of test cases that deploy
// flows into a throwaway flowd (an in-memory store, a frozen clock, no
// network: outgoing requests are answered by stubs) and check what their
// runs did. `flowd test` and Go tests use it;
// docs/flow-tests.md documents the file format.
//
//	File (x.test.json)
//	  flows      ids of the flows to deploy (the first is the one under test),
//	             with the sub-flows they call (core.call)
//	  fixtures   keysets, clients, users created before each case
//	  stubs      answers to outgoing requests (http.request, remote JWKS)
//	  cases[]    each on its own store and flowd, clock frozen at case.clock
//	    stubs    the case's own answers, tried before the file's
//	    steps[]  http | run | advance, then expect, then save
//
// A case fails at its first failing step; the failure names the file, the
// case, the step, the node and the expectation.
//
// # Stability
//
// The test file format (docs/flow-tests.md) and `flowd test` are what flow
// authors rely on; this Go package is flowd's own runner behind them and
// may change without notice.
package flowtest
