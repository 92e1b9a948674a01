// Package bench measures flowd against a hand-written server doing the same
// work (bench/baseline: net/http + go-jose, no flow engine). It holds only
// tests: TestSameWork checks both answer alike, BenchmarkPaired and
// BenchmarkHandler time them in process, request for request. The load
// benchmark over real sockets is bench/run.sh (flowd against
// bench/handwritten under wrk); bench/profile.sh profiles flowd under load
// through bench/flowdprof, and bench/attack measures what the attacks of
// issue 10 cost. docs/benchmarks.md has the method and the numbers.
package bench
