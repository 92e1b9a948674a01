#!/usr/bin/env bash
# bench/rss.sh: peak RSS of `flowd serve` (its own defaults, or the GOGC /
# GOMEMLIMIT in the environment) over three loads, each after the last:
#   1. JWKS and validation (RS256 /api/hello, 1000-token pool, cache off)
#   2. a token burst: CONNS connections of client_credentials with the right
#      secret (argon2id once, then the 5-minute success cache)
#   3. a burst of wrong secrets (argon2id on every request, in the hashing
#      pool: flowd's worst case for memory)
# Peak RSS is VmHWM, reset after set-up. Timings are not the point (see
# run.sh); this runs on a loaded machine. Environment: DURATION=5 CONNS=64
# PORT=18181.
set -euo pipefail
DURATION=${DURATION:-5}
CONNS=${CONNS:-64}
PORT=${PORT:-18181}
cd "$(dirname "$0")/.."
die() { echo "rss: $*" >&2; exit 1; }
command -v wrk >/dev/null || die "wrk is missing"
TMP=$(mktemp -d /tmp/flowd-rss.XXXXXX)
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"' EXIT
go build -o "$TMP/flowd" ./cmd/flowd || die "build failed"
URL="http://127.0.0.1:$PORT"
FLOWD_DATA="$TMP/data" "$TMP/flowd" serve --addr "127.0.0.1:$PORT" >"$TMP/flowd.log" 2>&1 &
PID=$!
for _ in $(seq 300); do curl -s -o /dev/null --max-time 1 "$URL/.well-known/jwks.json" && break; sleep 0.1; done
SECRET=demo-secret-0123456789
FLOWD_DATA="$TMP/data" "$TMP/flowd" clients add --id demo --secret "$SECRET" --scopes read >/dev/null || die "clients add failed"
go run ./bench/writeflows "$TMP/benchflows" || die "writeflows failed"
FLOWD_DATA="$TMP/data" FLOWD_ADDR="127.0.0.1:$PORT" "$TMP/flowd" import --deploy "$TMP/benchflows/hello-nocache.json" >/dev/null || die "import failed"
urls=(); for _ in $(seq 1000); do urls+=("$URL/oauth/token"); done
curl -s -u "demo:$SECRET" -d grant_type=client_credentials "${urls[@]}" | grep -oE '"access_token":"[^"]+"' |
	sed -E 's/.*:"(.*)"/\1/' >"$TMP/pool.txt"
AT=$(head -1 "$TMP/pool.txt")
hwm() { awk '/^VmHWM:/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$PID/status"; }
rss() { awk '/^VmRSS:/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$PID/status"; }
# What the RSS is made of now: anonymous memory (Go's heap, stacks and
# runtime) and file pages (bbolt's memory-mapped database), and the
# database's size.
parts() {
	awk '/^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 } END { printf "anon %.1f MiB, file %.1f MiB", a / 1024, f / 1024 }' "/proc/$PID/status"
	printf ", flowd.db %s" "$(du -h "$TMP/data/flowd.db" | cut -f1)"
}
echo 5 >"/proc/$PID/clear_refs"
echo "rss: GOGC=${GOGC:-(flowd default)} GOMEMLIMIT=${GOMEMLIMIT:-(flowd default)}; after set-up: RSS $(rss) ($(parts))"
load() { # METHOD PATH AUTH [BODY] [POOL]
	BENCH_METHOD=$1 BENCH_AUTH=$3 BENCH_BODY=${4:-} BENCH_POOL=${5:-} \
		wrk -t1 -c"$CONNS" -d"${DURATION}s" -s bench/report.lua "$URL$2" | grep '^RESULT' | awk '{ printf "%s requests", $2 }'
}
echo "rss:   jwks: $(load GET /.well-known/jwks.json '')"
echo "rss:   validate RS256, one token: $(load GET /api/hello "Bearer $AT")"
echo "rss:   validate RS256, cache off: $(load GET /bench/hello-nocache "Bearer $AT")"
echo "rss:   validate RS256, pool of 1000: $(load GET /api/hello '' '' "$TMP/pool.txt")"
echo "rss: JWKS and validation: peak $(hwm) (now $(parts))"
echo "rss:   token, right secret: $(load POST /oauth/token "Basic $(printf 'demo:%s' "$SECRET" | base64 -w0)" grant_type=client_credentials)"
echo "rss: + token burst: peak $(hwm)"
echo "rss:   token, wrong secrets: $(load POST /oauth/token "Basic $(printf 'demo:wrong-secret-0123' | base64 -w0)" grant_type=client_credentials)"
echo "rss: + argon2id on every request: peak $(hwm); RSS now $(rss) ($(parts))"
