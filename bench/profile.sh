#!/usr/bin/env bash
# bench/profile.sh: CPU profiles of flowd (through bench/flowdprof, which is
# `flowd serve` plus a pprof port) and of bench/handwritten under the same
# wrk load as bench/run.sh, one endpoint at a time, one server at a time.
# Writes OUT/{flowd,handwritten}-{jwks,hello}.pprof and prints the top
# functions. Environment: OUT=/tmp/flowd-profiles SECONDS_PER=8
# SERVER_CPU=0 WRK_CPU=1 FLOWD_PORT=18181 HW_PORT=18191, REV= (as in
# run.sh), FLOWDPROF_FLAGS= (e.g. --drop-runs: see bench/flowdprof).
set -euo pipefail
unset FLOWD_ADDR FLOWD_DATA FLOWD_ISSUER FLOWD_ADMIN_TOKEN FLOWD_MASTER_KEY FLOWD_EXPR_ENV

OUT=${OUT:-/tmp/flowd-profiles}
SECS=${SECONDS_PER:-8}
SERVER_CPU=${SERVER_CPU:-0}
WRK_CPU=${WRK_CPU:-1}
FLOWD_PORT=${FLOWD_PORT:-18181}
HW_PORT=${HW_PORT:-18191}
PPROF_PORT=$((FLOWD_PORT + 1))

die() { echo "profile: $*" >&2; exit 1; }
cd "$(dirname "$0")/.."
command -v wrk >/dev/null 2>&1 || die "wrk is missing (bench/run.sh installs it)"
mkdir -p "$OUT"
TMP=$(mktemp -d /tmp/flowd-prof.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; kill -CONT "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SRC=. # REV=<git revision>: build from a snapshot of it, as in run.sh
if [ -n "${REV:-}" ]; then
	SRC="$TMP/src"
	mkdir -p "$SRC"
	git archive "$REV" | tar -x -C "$SRC"
	rm -rf "$SRC/bench" && cp -r bench "$SRC/bench"
fi
for b in cmd/flowd bench/flowdprof bench/handwritten; do
	(cd "$SRC" && go build -o "$TMP/$(basename $b)" ./$b) || die "go build ./$b failed"
done
URL="http://127.0.0.1:$FLOWD_PORT"
DATA="$TMP/data"
wait200() { for _ in $(seq 300); do [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" || true)" = 200 ] && return 0; sleep 0.1; done; die "$1 never answered 200"; }

# Set-up with the real binary: keys, a client, a token.
FLOWD_DATA="$DATA" "$TMP/flowd" serve --addr "127.0.0.1:$FLOWD_PORT" >"$TMP/flowd.log" 2>&1 &
FPID=$!
PIDS+=("$FPID")
wait200 "$URL/.well-known/jwks.json"
FLOWD_DATA="$DATA" "$TMP/flowd" clients add --id demo --secret demo-secret-0123456789 --scopes "read write" >/dev/null
AT=$(curl -s -u demo:demo-secret-0123456789 -d grant_type=client_credentials -d scope=read "$URL/oauth/token" |
	sed -nE 's/.*"access_token":"([^"]+)".*/\1/p')
[ -n "$AT" ] || die "no token"

# The hand-written server fetches the JWKS now, then flowd makes room.
taskset -c "$SERVER_CPU" "$TMP/handwritten" --addr "127.0.0.1:$HW_PORT" --jwks-url "$URL/.well-known/jwks.json" \
	--issuer "$URL" --pprof "127.0.0.1:$((HW_PORT + 1))" >"$TMP/hw.log" 2>&1 &
HPID=$!
PIDS+=("$HPID")
wait200 "http://127.0.0.1:$HW_PORT/.well-known/jwks.json"
kill -STOP "$HPID" # frozen while flowd is profiled
kill -TERM "$FPID"
wait "$FPID" || true

taskset -c "$SERVER_CPU" env FLOWD_DATA="$DATA" "$TMP/flowdprof" ${FLOWDPROF_FLAGS:-} --data "$DATA" --addr "127.0.0.1:$FLOWD_PORT" \
	--pprof "127.0.0.1:$PPROF_PORT" >"$TMP/flowdprof.log" 2>&1 &
PPID2=$!
PIDS+=("$PPID2")
wait200 "$URL/.well-known/jwks.json"

profile() { # profile NAME BASE PPROF_BASE
	local name=$1 base=$2 pbase=$3 ep path hdr
	for ep in jwks hello; do
		path=/.well-known/jwks.json hdr="Accept: */*"
		[ "$ep" = hello ] && path=/api/hello hdr="Authorization: Bearer $AT"
		taskset -c "$WRK_CPU" wrk -t1 -c32 -d2s -H "$hdr" "$base$path" >/dev/null
		taskset -c "$WRK_CPU" wrk -t1 -c32 -d$((SECS + 2))s -H "$hdr" "$base$path" >"$TMP/wrk.txt" &
		local w=$!
		sleep 1
		curl -s --max-time $((SECS + 10)) -o "$OUT/$name-$ep.pprof" "$pbase/debug/pprof/profile?seconds=$SECS"
		wait "$w"
		echo "== $name $ep: $(grep Requests/sec "$TMP/wrk.txt")"
		go tool pprof -top -nodecount=25 "$OUT/$name-$ep.pprof" 2>/dev/null | sed -n '4,30p'
		go tool pprof -top -cum -nodecount=40 "$OUT/$name-$ep.pprof" 2>/dev/null | sed -n '5,46p' >"$OUT/$name-$ep.cum.txt"
	done
}
profile flowd "$URL" "http://127.0.0.1:$PPROF_PORT"
kill -TERM "$PPID2"
wait "$PPID2" || true
kill -CONT "$HPID"
profile handwritten "http://127.0.0.1:$HW_PORT" "http://127.0.0.1:$((HW_PORT + 1))"
echo "profiles in $OUT (go tool pprof -http=127.0.0.1:0 $OUT/flowd-hello.pprof)"
