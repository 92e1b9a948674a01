#!/usr/bin/env bash
# bench/cluster/run.sh: 1 flowd node on bbolt against 3 flowd nodes on a
# 3-member etcd, all started on this machine's loopback by
# TestClusterBench (cmd/flowd/cluster_bench_test.go, which shares the
# out-of-process cluster harness of the cluster tests). Not pass/fail.
#
# It measures, per setup: client_credentials tokens, GET /api/hello with a
# token and the JWKS (req/s, p50, p99 of a closed-loop load spread
# round-robin over the nodes), and on 3 nodes the time from a deploy on
# node a until b and c serve it, and from a revoke on node a until the
# kid is gone from every node's JWKS (p50/p99 of BENCH_PROPAGATION each).
# Scheduler fail-over is measured by TestClusterSchedule (its log line
# "cron moved ... after SIGKILL").
#
# Needs the etcd binary (apt-get install etcd-server). Environment:
#   BENCH_CONNS=16 BENCH_SECONDS=5 BENCH_PROPAGATION=50
# Every process runs on the same cores as the load generator: on a shared
# machine the figures measure contention as much as flowd.
set -euo pipefail
cd "$(dirname "$0")/../.."
FLOWD_BENCH_CLUSTER=1 exec go test ./cmd/flowd -run 'TestClusterBench$|TestClusterSchedule$' -count=1 -v -timeout 20m 2>&1 |
  grep -E '^\s+cluster_(bench|nodes)_test.go:[0-9]+: (\||cron moved|10 s:)|^\s+\||^(---|ok|FAIL|PASS)'
