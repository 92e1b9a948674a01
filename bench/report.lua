-- wrk script for bench/run.sh: the request of one endpoint (from the
-- environment) and one machine-readable line at the end.
--   BENCH_METHOD (GET), BENCH_BODY (a form body: POST), BENCH_AUTH (an
--   Authorization header), BENCH_POOL (a file of access tokens, one a line:
--   each request sends the next, round-robin, as a bearer token)
-- RESULT <requests> <duration_us> <req/s> <p50_us> <p99_us> <non2xx3xx> <socket_errors>
local method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY") or ""
local auth = os.getenv("BENCH_AUTH") or ""
local pool = os.getenv("BENCH_POOL") or ""

wrk.method = method
wrk.headers["Accept"] = "*/*"
if body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
if auth ~= "" then
  wrk.headers["Authorization"] = auth
end

local tokens = {}
if pool ~= "" then
  for line in io.lines(pool) do
    if line ~= "" then tokens[#tokens + 1] = "Bearer " .. line end
  end
end
local i = 0

if #tokens > 0 then
  request = function()
    i = i % #tokens + 1
    wrk.headers["Authorization"] = tokens[i]
    return wrk.format()
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  local sockerr = e.connect + e.read + e.write + e.timeout
  io.write(string.format("RESULT %d %d %.1f %d %d %d %d\n",
    summary.requests, summary.duration,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), e.status, sockerr))
end
