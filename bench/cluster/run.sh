#!/usr/bin/env bash
# bench/cluster/run.sh: 1 flowd node on bbolt against 3 flowd nodes on a
# 3-member etcd, all started on this machine's loopback by
# TestClusterBench (cmd/flowd/cluster_bench_test.go, which shares the
# out-of-process cluster harness of the cluster tests). Not pass/fail.
#
# It measures, per setup: client_credentials tokens, GET /api/hello with a
# token, the JWKS and full authorization-code sign-ins (authorize, the
# sign-in form, the code exchange; BENCH_SIGNIN_CONNS workers, each sign-in
# as another user) as req/s,
# p50, p99 of a closed-loop load spread round-robin over the nodes, with
# the etcd round trips per request (unary KV and lease calls the members
# answered, from their /metrics, background traffic included); and on 3
# nodes the time from a deploy on node a until b and c serve it, and from
# sending a revoke on node a until the kid is gone from every node's JWKS
# (p50/p99 of BENCH_PROPAGATION each; the revoke call's own duration
# beside it). TestClusterFailover SIGKILLs the scheduler leader
# BENCH_FAILOVERS times (replacing it each time) and lists every sample:
# until another node takes the role, and until its first tick.
#
# Needs the etcd binary (apt-get install etcd-server). Environment:
#   BENCH_CONNS=16 BENCH_SIGNIN_CONNS=4 BENCH_SECONDS=5 BENCH_PROPAGATION=50
#   BENCH_FAILOVERS=5
#   BENCH_PARTS=loads,signin,propagation (what TestClusterBench runs)
# Every process runs on the same cores as the load generator: on a shared
# machine the figures measure contention as much as flowd.
set -euo pipefail
cd "$(dirname "$0")/../.."
FLOWD_BENCH_CLUSTER=1 exec go test ./cmd/flowd -run 'TestClusterBench$|TestClusterFailover$' -count=1 -v -timeout 30m 2>&1 |
  grep -E '^\s+cluster_bench_test.go:[0-9]+: \||^\s+\||^(---|ok|FAIL|PASS)'
