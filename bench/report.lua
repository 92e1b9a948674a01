-- wrk script for bench/run.sh: prints one machine-readable line at the end.
-- RESULT <requests> <duration_us> <req/s> <p50_us> <p99_us> <non2xx3xx> <socket_errors>
done = function(summary, latency, requests)
  local e = summary.errors
  local sockerr = e.connect + e.read + e.write + e.timeout
  io.write(string.format("RESULT %d %d %.1f %d %d %d %d\n",
    summary.requests, summary.duration,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), e.status, sockerr))
end
