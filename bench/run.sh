#!/usr/bin/env bash
# bench/run.sh: load benchmark of flowd's endpoints against bench/handwritten
# (net/http + go-jose doing the same work), side by side in one run. See
# docs/benchmarks.md. Endpoints (ENDPOINTS, all by default):
#   jwks       GET /.well-known/jwks.json
#   v-rs v-es  GET /api/hello with one RS256 (RSA-3072) / ES256 access token
#              (a client reusing its token: jose.validate's cache answers)
#   v-rs-nc    the same on GET /bench/hello-nocache (bench/benchflows: cache off)
#   v-es-nc
#   v-401      GET /api/hello with a token for another audience (401)
#   pool       GET /api/hello, 1000 distinct RS256 tokens round-robin
#   distinct   GET /api/hello, 5000 distinct ES256 tokens round-robin (more
#              than the cache holds: every request misses)
#   token-rs   POST /oauth/token, client_credentials (argon2id-hashed secret,
#              remembered 5 min), RS256 access token
#   token-es   POST /bench/token-es256, the same with ES256
#
# Optional peers (PEERS, default: those installed): "node", bench/node's
# bare Node.js server (node:http + panva's jose + argon2, the same work and
# answers as the hand-written server), and "nodered", Node-RED with one
# function node per endpoint calling the same code (bench/nodered). Each is
# skipped with a message until its packages are installed:
#   (cd bench/node && npm ci) && (cd bench/nodered && npm ci)
# They run on SERVER_CPU like the others, each measured alone (every other
# server frozen), and get a second table: req/s, p50/p99 and CPU per
# request next to the hand-written server's.
#
# Isolation and pairing: both servers start once (the hand-written one
# fetches flowd's JWKS), and the one not under test is frozen (SIGSTOP),
# so in every measurement the server under test is alone on SERVER_CPU and
# wrk alone on WRK_CPU. Each round measures each endpoint on both servers
# back to back, in A,B order on odd rounds and B,A on even ones, and the
# ratio of that pair is the round's ratio: the two measurements of a pair
# are seconds apart, so drift in the machine's speed (these are shared
# VMs) hits both alike. The table reports the median over rounds.
#
# Besides wrk's req/s and latency, the server's own CPU time per request is
# read from /proc/PID/stat around each measured run: on a shared machine it
# is the figure that other load on the core disturbs least.
#
# Peak RSS: each server's VmHWM, reset after set-up (clear_refs), read
# after the validation endpoints and at the end (the token endpoints run
# argon2id on their first requests).
#
# Both servers run with the same GOGC and GOMEMLIMIT (flowd serve's
# defaults unless set in the environment).
#
# Exit status is non-zero only when the set-up fails; timings are not
# pass/fail. Environment (defaults):
#   ROUNDS=3 DURATION=8 (seconds per measurement) WARMUP=2 CONNS=32
#   ENDPOINTS="jwks v-rs v-es v-401 v-rs-nc v-es-nc pool distinct token-rs token-es"
#   GOGC=400 GOMEMLIMIT=40MiB (both servers)
#   SERVER_CPU=0 WRK_CPU=1 FLOWD_PORT=18181 HW_PORT=18191 NODE_PORT=18201 NODERED_PORT=18211
#   PEERS="node nodered" (the optional peers to run, when installed)
#   KEEP=0 (1 keeps the temp folder with the raw wrk outputs and logs)
#   REV= (a git revision: build from a snapshot of it, not the working tree)
#   NICE= (e.g. -10, as root: servers and wrk at that priority; see below)
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8}
ENDPOINTS=${ENDPOINTS:-jwks v-rs v-es v-401 v-rs-nc v-es-nc pool distinct token-rs token-es}
# flowd serve's defaults (cmd/flowd/main.go); the hand-written server gets the same.
export GOGC=${GOGC:-400} GOMEMLIMIT=${GOMEMLIMIT:-40MiB}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-32}
SERVER_CPU=${SERVER_CPU:-0}
WRK_CPU=${WRK_CPU:-1}
FLOWD_PORT=${FLOWD_PORT:-18181}
HW_PORT=${HW_PORT:-18191}
NODE_PORT=${NODE_PORT:-18201}
NODERED_PORT=${NODERED_PORT:-18211}
PEERS=${PEERS-node nodered}
KEEP=${KEEP:-0}

unset FLOWD_ADDR FLOWD_DATA FLOWD_ISSUER FLOWD_ADMIN_TOKEN FLOWD_MASTER_KEY FLOWD_EXPR_ENV

die() { echo "bench: $*" >&2; exit 1; }

cd "$(dirname "$0")/.."
[ -f go.mod ] && grep -q '^module github.com/flowd/flowd$' go.mod || die "run from the flowd repository"

# --- tools --------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
	[ "$(id -u)" = 0 ] || die "wrk is missing: apt-get install -y wrk (as root)"
	echo "bench: installing wrk" >&2
	apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y wrk >/dev/null 2>&1; } ||
		die "apt-get install wrk failed"
fi
command -v curl >/dev/null 2>&1 || die "curl is missing"
PIN_SERVER=() PIN_WRK=()
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
	PIN_SERVER=(taskset -c "$SERVER_CPU") PIN_WRK=(taskset -c "$WRK_CPU")
else
	echo "bench: WARNING: fewer than 2 cores or no taskset: server and wrk are not pinned" >&2
fi
# NICE=-10 (root) runs the servers and wrk at that priority, for a machine
# other work keeps busy; the same for both servers. Off by default.
if [ -n "${NICE:-}" ]; then
	PIN_SERVER=(nice -n "$NICE" "${PIN_SERVER[@]}") PIN_WRK=(nice -n "$NICE" "${PIN_WRK[@]}")
fi

# Optional peers: run only when their packages are installed.
RUN_PEERS=""
for peer in $PEERS; do
	case $peer in
	node | nodered) ;;
	*) die "unknown peer $peer (PEERS: node nodered)" ;;
	esac
	if ! command -v node >/dev/null 2>&1; then
		echo "bench: skipping $peer: node is not installed" >&2
	elif [ ! -d bench/node/node_modules ] || { [ "$peer" = nodered ] && [ ! -d bench/nodered/node_modules ]; }; then
		echo "bench: skipping $peer: run (cd bench/node && npm ci)$([ "$peer" = nodered ] && echo ' && (cd bench/nodered && npm ci)') first" >&2
	else
		RUN_PEERS="$RUN_PEERS $peer"
	fi
done
RUN_PEERS=${RUN_PEERS# }

TMP=$(mktemp -d /tmp/flowd-bench.XXXXXX)
FLOWD_PID="" HW_PID="" NODE_PID="" NODERED_PID=""
stop() { # stop PID: SIGTERM, then SIGKILL after 10 s
	local pid=$1
	[ -n "$pid" ] || return 0
	kill -CONT "$pid" 2>/dev/null || true
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
cleanup() {
	stop "$NODERED_PID"
	stop "$NODE_PID"
	stop "$HW_PID"
	stop "$FLOWD_PID"
	if [ "$KEEP" = 1 ]; then echo "bench: raw outputs kept in $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build --------------------------------------------------------------
# REV=<git revision> builds both servers from a snapshot of that revision
# (git archive; bench/ is copied in) instead of the working tree, so a run
# is reproducible while the tree is being edited.
SRC=.
if [ -n "${REV:-}" ]; then
	SRC="$TMP/src"
	mkdir -p "$SRC"
	git archive "$REV" | tar -x -C "$SRC" || die "git archive $REV failed"
	rm -rf "$SRC/bench" && cp -r bench "$SRC/bench"
	echo "bench: building flowd $(git rev-parse --short "$REV") (REV=$REV) and bench/handwritten" >&2
else
	echo "bench: building flowd (working tree at $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!bench' ':!docs' 2>/dev/null || echo ', with local changes')) and bench/handwritten" >&2
fi
(cd "$SRC" && go build -o "$TMP/flowd" ./cmd/flowd) || die "go build ./cmd/flowd failed (REV=HEAD builds the last commit)"
(cd "$SRC" && go build -o "$TMP/handwritten" ./bench/handwritten) || die "go build ./bench/handwritten failed"
(cd "$SRC" && go run ./bench/writeflows "$TMP/benchflows") || die "go run ./bench/writeflows failed"

FLOWD_URL="http://127.0.0.1:$FLOWD_PORT"
HW_URL="http://127.0.0.1:$HW_PORT"
DATA="$TMP/flowd-data"
NODE_URL="http://127.0.0.1:$NODE_PORT"
NODERED_URL="http://127.0.0.1:$NODERED_PORT"
for u in "$FLOWD_URL" "$HW_URL" $(for p in $RUN_PEERS; do [ "$p" = node ] && echo "$NODE_URL" || echo "$NODERED_URL"; done); do
	curl -s -o /dev/null --max-time 1 "$u/" && die "something already answers on $u (set FLOWD_PORT / HW_PORT)"
done

code() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$@" || true; }

wait_for() { # wait_for URL PID NAME: until URL answers 200 (30 s at most)
	for _ in $(seq 300); do
		[ "$(code "$1")" = 200 ] && return 0
		kill -0 "$2" 2>/dev/null || die "$3 exited during start-up (log: $TMP/$3.log)"
		sleep 0.1
	done
	die "$3 did not answer 200 on $1 within 30 s"
}

start_flowd() {
	FLOWD_DATA="$DATA" "${PIN_SERVER[@]}" "$TMP/flowd" serve --addr "127.0.0.1:$FLOWD_PORT" \
		>>"$TMP/flowd.log" 2>&1 &
	FLOWD_PID=$!
	# The JWKS answers 200 once key-rollover's start-up run has created keyset main.
	wait_for "$FLOWD_URL/.well-known/jwks.json" "$FLOWD_PID" flowd
}

start_hw() {
	"${PIN_SERVER[@]}" "$TMP/handwritten" --addr "127.0.0.1:$HW_PORT" \
		--jwks-url "$FLOWD_URL/.well-known/jwks.json" --issuer "$FLOWD_URL" \
		--client "demo|$DEMO_SECRET|read write|" --client "other|$OTHER_SECRET|read|$OTHER_AUD" >>"$TMP/handwritten.log" 2>&1 &
	HW_PID=$!
	wait_for "$HW_URL/.well-known/jwks.json" "$HW_PID" handwritten
}

start_node() {
	"${PIN_SERVER[@]}" node bench/node/server.cjs --addr "127.0.0.1:$NODE_PORT" \
		--jwks-url "$FLOWD_URL/.well-known/jwks.json" --issuer "$FLOWD_URL" \
		--client "demo|$DEMO_SECRET|read write|" --client "other|$OTHER_SECRET|read|$OTHER_AUD" >>"$TMP/node.log" 2>&1 &
	NODE_PID=$!
	wait_for "$NODE_URL/.well-known/jwks.json" "$NODE_PID" node
}

start_nodered() {
	mkdir -p "$TMP/nodered"
	BENCH_PORT=$NODERED_PORT BENCH_JWKS_URL="$FLOWD_URL/.well-known/jwks.json" BENCH_ISSUER="$FLOWD_URL" \
		BENCH_CLIENTS="demo|$DEMO_SECRET|read write|"$'\n'"other|$OTHER_SECRET|read|$OTHER_AUD" BENCH_USERDIR="$TMP/nodered" \
		"${PIN_SERVER[@]}" node bench/nodered/node_modules/node-red/red.js --settings bench/nodered/settings.cjs \
		>>"$TMP/nodered.log" 2>&1 &
	NODERED_PID=$!
	wait_for "$NODERED_URL/.well-known/jwks.json" "$NODERED_PID" nodered
}

# --- set-up: data folder, clients, bench flows, tokens ---------------------
DEMO_SECRET=demo-secret-0123456789 OTHER_SECRET=other-secret-0123456789 OTHER_AUD=https://other.example
start_flowd
FLOWD_DATA="$DATA" "$TMP/flowd" clients add --id demo --secret "$DEMO_SECRET" --scopes "read write" \
	>>"$TMP/setup.log" 2>&1 || die "flowd clients add failed (log: $TMP/setup.log)"
FLOWD_DATA="$DATA" "$TMP/flowd" clients add --id other --secret "$OTHER_SECRET" --scopes read --audiences "$OTHER_AUD" \
	>>"$TMP/setup.log" 2>&1 || die "flowd clients add failed (log: $TMP/setup.log)"
FLOWD_DATA="$DATA" FLOWD_ADDR="127.0.0.1:$FLOWD_PORT" "$TMP/flowd" import --deploy "$TMP"/benchflows/*.json \
	>>"$TMP/setup.log" 2>&1 || die "flowd import of bench/benchflows failed (log: $TMP/setup.log)"
# tokens PATH COUNT ID SECRET [curl args]: COUNT access tokens, one a line
# (one curl, one connection).
tokens() {
	local path=$1 n=$2 id=$3 secret=$4 urls=()
	shift 4
	for _ in $(seq "$n"); do urls+=("$FLOWD_URL$path"); done
	curl -s --max-time 600 -u "$id:$secret" -d grant_type=client_credentials "$@" "${urls[@]}" |
		grep -oE '"access_token":"[^"]+"' | sed -E 's/.*:"(.*)"/\1/'
}
AT=$(tokens /oauth/token 1 demo "$DEMO_SECRET" -d scope=read)
AT_ES=$(tokens /bench/token-es256 1 demo "$DEMO_SECRET" -d scope=read)
AT_401=$(tokens /oauth/token 1 other "$OTHER_SECRET" --data-urlencode "resource=$OTHER_AUD")
[ -n "$AT" ] && [ -n "$AT_ES" ] && [ -n "$AT_401" ] || die "POST /oauth/token or /bench/token-es256 gave no access token"
b64url_decode() { local s=${1//-/+}; s=${s//_//}; while [ $(( ${#s} % 4 )) -ne 0 ]; do s="$s="; done; printf '%s' "$s" | base64 -d 2>/dev/null; }
case "$(b64url_decode "${AT%%.*}")" in *'"alg":"RS256"'*) ;; *) die "the token is not RS256" ;; esac
case "$(b64url_decode "${AT_ES%%.*}")" in *'"alg":"ES256"'*) ;; *) die "the ES256 token is not ES256" ;; esac
AUTH="Authorization: Bearer $AT"
case " $ENDPOINTS " in *" pool "*)
	echo "bench: minting 1000 RS256 tokens for the pool" >&2
	tokens /oauth/token 1000 demo "$DEMO_SECRET" -d scope=read >"$TMP/pool.txt"
	[ "$(sort -u "$TMP/pool.txt" | wc -l)" = 1000 ] || die "the pool does not hold 1000 distinct tokens"
esac
case " $ENDPOINTS " in *" distinct "*)
	echo "bench: minting 5000 ES256 tokens for the distinct mode" >&2
	tokens /bench/token-es256 5000 demo "$DEMO_SECRET" -d scope=read >"$TMP/distinct.txt"
	[ "$(sort -u "$TMP/distinct.txt" | wc -l)" = 5000 ] || die "the distinct mode does not hold 5000 distinct tokens"
esac

# check URL_BASE NAME: both endpoints answer as flowd does (200, 304, 401).
check() {
	local base=$1 name=$2 body etag
	body=$(curl -s --max-time 2 -H "$AUTH" "$base/api/hello")
	case "$body" in *'"hello":"demo"'*) ;; *) die "$name /api/hello answered: $body" ;; esac
	etag=$(curl -s -D - -o /dev/null --max-time 2 "$base/.well-known/jwks.json" | tr -d '\r' | sed -nE 's/^[Ee][Tt]ag: (.*)$/\1/p')
	[ -n "$etag" ] || die "$name JWKS has no ETag"
	[ "$(code -H "If-None-Match: $etag" "$base/.well-known/jwks.json")" = 304 ] || die "$name JWKS If-None-Match is not 304"
	[ "$(code -H "Authorization: Bearer ${AT%.*}.AAAA${AT##*.}" "$base/api/hello")" = 401 ] || die "$name accepts a tampered token"
	body=$(curl -s --max-time 2 -H "Authorization: Bearer $AT_ES" "$base/bench/hello-nocache")
	case "$body" in *'"hello":"demo"'*) ;; *) die "$name /bench/hello-nocache answered: $body" ;; esac
	body=$(curl -s --max-time 2 -H "Authorization: Bearer $AT_401" "$base/api/hello")
	case "$body" in *'"error_description":"wrong_audience"'*) ;; *) die "$name answered a wrong-audience token: $body" ;; esac
	for path in /oauth/token /bench/token-es256; do
		body=$(curl -s --max-time 10 -u "demo:$DEMO_SECRET" -d grant_type=client_credentials -d scope=read "$base$path")
		case "$body" in *'"access_token":"'*'"scope":"read"'*) ;; *) die "$name $path answered: $body" ;; esac
	done
	echo "$etag"
}

# cputicks PID: user+system clock ticks the process has used (all threads).
cputicks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# cpubusy: busy ticks of SERVER_CPU so far (all processes, kernel included).
cpubusy() { awk -v c="cpu$SERVER_CPU" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
HZ=$(getconf CLK_TCK)

# measure NAME BASE ROUND PID EP: warm-up, then one measured wrk run of one
# endpoint, with the server's CPU time over the measured run.
measure() {
	local name=$1 base=$2 round=$3 pid=$4 ep=$5 path out line hdr t0 t1 b0 b1 cpu_us busy
	local BENCH_METHOD=GET BENCH_BODY= BENCH_AUTH= BENCH_POOL=
	case "$ep" in
	jwks) path=/.well-known/jwks.json ;;
	v-rs) path=/api/hello BENCH_AUTH="Bearer $AT" ;;
	v-es) path=/api/hello BENCH_AUTH="Bearer $AT_ES" ;;
	v-401) path=/api/hello BENCH_AUTH="Bearer $AT_401" ;;
	v-rs-nc) path=/bench/hello-nocache BENCH_AUTH="Bearer $AT" ;;
	v-es-nc) path=/bench/hello-nocache BENCH_AUTH="Bearer $AT_ES" ;;
	pool) path=/api/hello BENCH_POOL="$TMP/pool.txt" ;;
	distinct) path=/api/hello BENCH_POOL="$TMP/distinct.txt" ;;
	token-rs | token-es)
		path=/oauth/token BENCH_METHOD=POST BENCH_BODY="grant_type=client_credentials&scope=read"
		[ "$ep" = token-es ] && path=/bench/token-es256
		BENCH_AUTH="Basic $(printf '%s' "demo:$DEMO_SECRET" | base64 -w0)"
		;;
	*) die "unknown endpoint $ep (ENDPOINTS)" ;;
	esac
	export BENCH_METHOD BENCH_BODY BENCH_AUTH BENCH_POOL
	"${PIN_WRK[@]}" timeout $((WARMUP + 15)) wrk -t1 -c"$CONNS" -d"${WARMUP}s" -s bench/report.lua "$base$path" >/dev/null 2>&1 ||
		die "wrk warm-up against $name $path failed"
	out="$TMP/wrk-$round-$name-$ep.txt"
	t0=$(cputicks "$pid") b0=$(cpubusy)
	"${PIN_WRK[@]}" timeout $((DURATION + 15)) wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -s bench/report.lua \
		"$base$path" >"$out" 2>&1 || die "wrk against $name $path failed: $(cat "$out")"
	t1=$(cputicks "$pid") b1=$(cpubusy)
	line=$(grep '^RESULT ' "$out") || die "no RESULT line from wrk: $(cat "$out")"
	set -- $line # RESULT requests duration_us rps p50_us p99_us non2xx sockerr
	# Server CPU per request (µs) and how busy its core was (%, everything on it).
	cpu_us=$(awk -v t=$((t1 - t0)) -v hz="$HZ" -v n="$2" 'BEGIN { printf "%.1f", n ? t * 1e6 / hz / n : 0 }')
	busy=$(awk -v b=$((b1 - b0)) -v hz="$HZ" -v d="$3" 'BEGIN { printf "%.0f", b * 1e8 / hz / d }')
	# round name endpoint requests duration_us rps p50_us p99_us non2xx sockerr cpu_us_per_req core_busy_pct server_cpu_pct
	echo "$round $name $ep ${line#RESULT } $cpu_us $busy $(awk -v t=$((t1 - t0)) -v hz="$HZ" -v d="$3" 'BEGIN { printf "%.0f", t * 1e8 / hz / d }')" >>"$TMP/results.txt"
	printf '  round %d %-11s %-8s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  %6.1f µs CPU/req  core %s%% busy%s\n' \
		"$round" "$name" "$ep" "$4" "$(awk -v x="$5" 'BEGIN { print x / 1000 }')" "$(awk -v x="$6" 'BEGIN { print x / 1000 }')" \
		"$cpu_us" "$busy" "$( [ "$7$8" = 00 ] || [ "$ep" = v-401 ] && [ "$8" = 0 ] || echo "  (non-2xx: $7, socket errors: $8)")" >&2
}

# pid_of NAME, url_of NAME: a server's process and base URL.
pid_of() { case $1 in flowd) echo "$FLOWD_PID" ;; handwritten) echo "$HW_PID" ;; node) echo "$NODE_PID" ;; nodered) echo "$NODERED_PID" ;; esac; }
url_of() { case $1 in flowd) echo "$FLOWD_URL" ;; handwritten) echo "$HW_URL" ;; node) echo "$NODE_URL" ;; nodered) echo "$NODERED_URL" ;; esac; }
SERVERS="flowd handwritten $RUN_PEERS"

# only NAME: resume that server, freeze the others.
only() {
	local s
	for s in $SERVERS; do [ "$s" = "$1" ] || kill -STOP "$(pid_of "$s")"; done
	kill -CONT "$(pid_of "$1")"
	sleep 0.5
}

: >"$TMP/results.txt"
echo "bench: $ROUNDS rounds, wrk -t1 -c$CONNS -d${DURATION}s (after ${WARMUP}s warm-up), server on CPU $SERVER_CPU, wrk on CPU $WRK_CPU${NICE:+, nice $NICE}" >&2
echo "bench: load average before: $(cut -d' ' -f1-3 /proc/loadavg); GOGC=$GOGC GOMEMLIMIT=$GOMEMLIMIT on both servers" >&2
start_hw
for peer in $RUN_PEERS; do "start_$peer"; done
[ -z "$RUN_PEERS" ] || echo "bench: peers: $RUN_PEERS ($(node --version))" >&2
etag_f=$(check "$FLOWD_URL" flowd)
for s in $SERVERS; do
	[ "$s" = flowd ] && continue
	etag=$(check "$(url_of "$s")" "$s")
	[ "$etag_f" = "$etag" ] || die "flowd and $s publish different JWKS ($etag_f vs $etag)"
done
# Peak RSS from here on: reset each server's high-water mark after set-up.
hwm() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
for s in $SERVERS; do echo 5 >"/proc/$(pid_of "$s")/clear_refs" 2>/dev/null || echo "bench: WARNING: cannot reset the peak RSS of $s" >&2; done
VALIDATE_EPS=$(for ep in $ENDPOINTS; do case $ep in token-*) ;; *) printf '%s ' "$ep" ;; esac; done)
TOKEN_EPS=$(for ep in $ENDPOINTS; do case $ep in token-*) printf '%s ' "$ep" ;; esac; done)
declare -A RSS_MID RSS_END
for round in $(seq "$ROUNDS"); do
	# flowd and the hand-written server back to back, flowd first on odd
	# rounds; the peers after them.
	order="flowd handwritten $RUN_PEERS"
	[ $((round % 2)) = 0 ] && order="handwritten flowd $RUN_PEERS"
	for ep in $VALIDATE_EPS $TOKEN_EPS; do
		if [ "$round" = 1 ] && [ "$ep" = "${TOKEN_EPS%% *}" ]; then
			for s in $SERVERS; do RSS_MID[$s]=$(hwm "$(pid_of "$s")"); done
		fi
		for name in $order; do
			only "$name"
			measure "$name" "$(url_of "$name")" "$round" "$(pid_of "$name")" "$ep"
		done
	done
done
for s in $SERVERS; do kill -CONT "$(pid_of "$s")"; done
echo "bench: load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for s in $SERVERS; do
	RSS_END[$s]=$(hwm "$(pid_of "$s")")
	[ -n "${RSS_MID[$s]:-}" ] || RSS_MID[$s]=${RSS_END[$s]}
done

# --- table: medians over rounds -------------------------------------------
echo
echo "flowd vs hand-written net/http + go-jose: median of $ROUNDS rounds of wrk -t1 -c$CONNS -d${DURATION}s"
echo "(ratio = median over rounds of flowd / hand-written req/s, each round's pair measured back to back; CPU/req = server CPU time per request, which other load on the"
echo " machine disturbs least; CPU ratio = hand-written / flowd CPU per request: the req/s ratio if both kept the core busy)"
echo
awk -v eplist="$VALIDATE_EPS $TOKEN_EPS" '
function median(a, n,   i, j, t) {
	for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j+1] = a[j]; a[j+1] = t }
	return (n % 2) ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
}
function med(arr, k,   i, a) { for (i = 1; i <= n[k]; i++) a[i] = arr[k, i]; return median(a, n[k]) }
function medratio(ep,   i, a) { for (i = 1; i <= n["flowd" SUBSEP ep]; i++) a[i] = rps["flowd" SUBSEP ep, i] / rps["handwritten" SUBSEP ep, i]; return median(a, n["flowd" SUBSEP ep]) }
{ k = $2 SUBSEP $3; i = ++n[k]; rps[k, i] = $6; p50[k, i] = $7; p99[k, i] = $8; cpu[k, i] = $11; bad[k] += $9 + $10 }
END {
	printf "| endpoint | flowd req/s | hand-written req/s | ratio | flowd p50 / p99 (ms) | hand-written p50 / p99 (ms) | CPU per req, flowd / hand-written (µs) | CPU ratio |\n"
	printf "|---|---:|---:|---:|---:|---:|---:|---:|\n"
	names["jwks"] = "GET /.well-known/jwks.json"
	names["v-rs"] = "validate RS256 (RSA-3072), one token"; names["v-es"] = "validate ES256, one token"
	names["v-rs-nc"] = "validate RS256, cache off"; names["v-es-nc"] = "validate ES256, cache off"
	names["v-401"] = "validate, 401 (wrong audience)"
	names["pool"] = "validate RS256, pool of 1000 tokens"; names["distinct"] = "validate ES256, 5000 distinct tokens"
	names["token-rs"] = "issue client_credentials RS256"; names["token-es"] = "issue client_credentials ES256"
	neps = split(eplist, eps, " ")
	for (e = 1; e <= neps; e++) {
		ep = eps[e]; f = "flowd" SUBSEP ep; h = "handwritten" SUBSEP ep
		printf "| %s | %.0f | %.0f | %.2fx | %.2f / %.2f | %.2f / %.2f | %.1f / %.1f | %.2fx |\n", names[ep],
			med(rps, f), med(rps, h), medratio(ep),
			med(p50, f) / 1000, med(p99, f) / 1000, med(p50, h) / 1000, med(p99, h) / 1000,
			med(cpu, f), med(cpu, h), med(cpu, h) / med(cpu, f)
		if (bad[f] + bad[h] > 0 && ep != "v-401") warn = warn sprintf("\n(warning: %s saw non-2xx answers or socket errors)", ep)
	}
	printf "\nper-round req/s ratios:"
	for (e = 1; e <= neps; e++) {
		ep = eps[e]; printf "  %s", ep
		for (i = 1; i <= n["flowd" SUBSEP ep]; i++) printf " %.2f", rps["flowd" SUBSEP ep, i] / rps["handwritten" SUBSEP ep, i]
	}
	printf "\n%s\n", warn
}' "$TMP/results.txt"
echo "peak RSS (MiB, from after set-up): flowd ${RSS_MID[flowd]} after the validation endpoints, ${RSS_END[flowd]} at the end;" \
	"hand-written ${RSS_MID[handwritten]} and ${RSS_END[handwritten]} (GOGC=$GOGC GOMEMLIMIT=$GOMEMLIMIT)$(for p in $RUN_PEERS; do printf '; %s %s and %s' "$p" "${RSS_MID[$p]}" "${RSS_END[$p]}"; done)"
[ -z "$RUN_PEERS" ] && exit 0

# --- peers: every server against the hand-written one ---------------------
echo
echo "every server against the hand-written one (req/s and CPU per request: median of rounds; ratio: median of the rounds' ratios to the hand-written server measured in the same round)"
echo
awk -v eplist="$VALIDATE_EPS $TOKEN_EPS" -v servers="flowd $RUN_PEERS" '
function median(a, n,   i, j, t) {
	for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j+1] = a[j]; a[j+1] = t }
	return (n % 2) ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
}
function med(arr, k,   i, a) { for (i = 1; i <= n[k]; i++) a[i] = arr[k, i]; return median(a, n[k]) }
function medratio(s, ep,   i, a) { for (i = 1; i <= n[s SUBSEP ep]; i++) a[i] = rps[s SUBSEP ep, i] / rps["handwritten" SUBSEP ep, i]; return median(a, n[s SUBSEP ep]) }
{ k = $2 SUBSEP $3; i = ++n[k]; rps[k, i] = $6; p99[k, i] = $8; cpu[k, i] = $11 }
END {
	ns = split(servers, sv, " ")
	printf "| endpoint | hand-written req/s, p99 ms, CPU µs/req |"
	for (s = 1; s <= ns; s++) printf " %s req/s (ratio), p99 ms, CPU µs/req |", sv[s]
	printf "\n|---|---:|"
	for (s = 1; s <= ns; s++) printf "---:|"
	printf "\n"
	neps = split(eplist, eps, " ")
	for (e = 1; e <= neps; e++) {
		ep = eps[e]; h = "handwritten" SUBSEP ep
		printf "| %s | %.0f, %.2f, %.1f |", ep, med(rps, h), med(p99, h) / 1000, med(cpu, h)
		for (s = 1; s <= ns; s++) {
			k = sv[s] SUBSEP ep
			printf " %.0f (%.2fx), %.2f, %.1f |", med(rps, k), medratio(sv[s], ep), med(p99, k) / 1000, med(cpu, k)
		}
		printf "\n"
	}
}' "$TMP/results.txt"
