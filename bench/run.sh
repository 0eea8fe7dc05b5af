#!/usr/bin/env bash
# bench/run.sh — enrichproxy against the baselines, on loopback, in one run.
#
#   bash bench/run.sh            # throughput (about 2.5 min), then bench/memory.sh (about 40 s)
#   MEMORY=0 bash bench/run.sh   # throughput only
#
# What it does (everything on 127.0.0.1, every port picked free, every process it starts
# stopped on exit; needs go, wrk, nginx, curl, ss and GNU time:
# apt-get install -y wrk nginx-light curl time):
#   1. builds bench/upstream (the vendor stand-in: GET /email/find/single?id=… answers a
#      331-byte Enrow finished result at once), bench/reverseproxy (httputil.ReverseProxy),
#      bench/forwarder (one pooled client call, the answer read whole and written back) and
#      cmd/proxy (enrichproxy);
#   2. starts the stand-in, nginx (Debian's, as the current user, config generated in a temp
#      dir: 2 workers, upstream keepalive 64, HTTP/1.1 upstream, access log to /dev/null),
#      the ReverseProxy, the forwarder and enrichproxy (defaults: log level info with the
#      access log to /dev/null, ENROW_BASE_URL at the stand-in, ENROW_API_KEY set);
#   3. loads each target with wrk (-t THREADS -c CONNS -d DURATION --latency), the targets
#      alternating, ROUNDS rounds (short rounds, many of them: the median of per-round
#      ratios resists a noisy neighbour better than a few long runs), after a
#      WARMUP-second warm-up of each: (a) direct — the stand-in itself, (b) nginx,
#      (c) reverseproxy, (d) forwarder, (e) enrichproxy (GET /enrow/email/find/single?id=…). bench/newid.lua makes a new search id per
#      request, so no cache or coalescing can answer; the stand-in's request counter checks
#      that every client request reached it;
#   4. prints, and writes to OUT/throughput.md, the median over rounds of requests/s, p50
#      and p99 latency, the CPU the target's own processes spent per request, and the
#      ratios e/c, e/d, e/b (the median of the per-round ratios of requests/s). Each run
#      also records the CPU that other work on the machine took meanwhile: the figures are
#      only worth comparing when it is near 0 (the script says how busy the machine was
#      before it started, and warns when it was).
#
# Settings (environment): ROUNDS=7 DURATION=4 (seconds) WARMUP=2 THREADS=2 CONNS=64
# TARGETS="direct nginx reverseproxy forwarder enrichproxy" OUT=bench/out/<time> MEMORY=1
# ENRICH_ENV="" (extra environment for enrichproxy, e.g. GOGC=200) SCHEME=http (https: the
# stand-in speaks HTTPS and HTTP/2, as a real vendor API does; see memory.sh).
#
# On a 2-core machine wrk, the stand-in and the proxy under test share both cores; nothing
# is pinned (there are not enough cores to separate them), and every target runs in the
# same conditions, so the ratios compare like with like. Absolute figures are only
# comparable within one run.
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-7}
DURATION=${DURATION:-4}
WARMUP=${WARMUP:-2}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
TARGETS=${TARGETS:-"direct nginx reverseproxy forwarder enrichproxy"}
OUT=${OUT:-bench/out/$(date +%Y%m%d-%H%M%S)}
MEMORY=${MEMORY:-1}

for tool in go wrk curl ss /usr/bin/time; do command -v "$tool" >/dev/null || { echo "run.sh: $tool not found" >&2; exit 1; }; done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/enrichbench.XXXXXX")
# shellcheck source=bench/lib.sh
source bench/lib.sh
trap 'stop_all; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

began=$(date +%s)
# What was measured: the commit, and the uncommitted changes to the proxy's code if any.
{
	if git rev-parse HEAD 2>/dev/null; then
		git status --short -- cmd internal go.mod
		{
			git diff HEAD -- cmd internal go.mod
			git ls-files --others --exclude-standard -- cmd internal | sort | xargs -r cat
		} | sha256sum | sed 's/ .*/ (sha256 of the uncommitted changes and new files)/'
	else
		echo "not a git checkout"
	fi
	go version
} >"$OUT/tree.txt"
build

# Every target: the URL wrk loads, the path prefix of its requests, the pids whose CPU is
# counted against it.
declare -A URL PREFIX PIDS
start_upstream 0s
URL[direct]="$UPSTREAM_URL"
PREFIX[direct]=""
PIDS[direct]=$UPSTREAM_PID
for t in $TARGETS; do
	case $t in
	direct) ;;
	nginx)
		start_nginx
		URL[nginx]="http://$ADDR"
		PREFIX[nginx]=""
		PIDS[nginx]=$(nginx_pids "$PID")
		;;
	reverseproxy | forwarder)
		start_gobaseline "$t"
		URL[$t]="http://$ADDR"
		PREFIX[$t]=""
		PIDS[$t]=$PID
		;;
	enrichproxy)
		start_enrichproxy
		URL[enrichproxy]="http://$ADDR"
		PREFIX[enrichproxy]="/enrow"
		PIDS[enrichproxy]=$PID
		# The answer must be the normalized envelope, not an error.
		answer=$(curl -s "http://$ADDR/enrow/email/find/single?id=00000000-0000-4000-8000-000000000000")
		case $answer in
		*'"status":"ok","qualification":"found"'*) ;;
		*) die "enrichproxy answered: $answer" ;;
		esac
		;;
	*) die "unknown target $t" ;;
	esac
done

upstream_requests() { curl -s ${SSL_CERT_FILE:+--cacert "$SSL_CERT_FILE"} "$UPSTREAM_URL/_stats" | sed 's/.*"requests":\([0-9]*\).*/\1/'; }

# to_ms converts a wrk duration (812.00us, 1.20ms, 1.01s) to milliseconds.
to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /m$/) n *= 60000; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'; }

# load TARGET SECONDS ROUND runs wrk once and appends a line to $OUT/runs.tsv (ROUND 0 is
# the warm-up, not recorded).
hz=$(getconf CLK_TCK)
ncpu=$(nproc)
load() {
	local t=$1 secs=$2 round=$3 nonce before after cpu0 cpu1 up0 up1 m0 m1 file
	nonce=$(printf '%04x%04x' $((RANDOM)) $((RANDOM)))
	file="$OUT/wrk-$t-r$round.txt"
	before=$(upstream_requests)
	cpu0=$(cpu_ticks "${PIDS[$t]}")
	up0=$(cpu_ticks "$UPSTREAM_PID")
	m0=$(machine_ticks)
	/usr/bin/time -f '%U %S' -o "$file.time" \
		wrk -t"$THREADS" -c"$CONNS" -d"${secs}s" --latency -s bench/newid.lua "${URL[$t]}" -- "${PREFIX[$t]}" "$nonce" >"$file"
	m1=$(machine_ticks)
	cpu1=$(cpu_ticks "${PIDS[$t]}")
	up1=$(cpu_ticks "$UPSTREAM_PID")
	after=$(upstream_requests)
	[ "$round" = 0 ] && return
	# Busy CPU on the machine that was neither wrk, the stand-in nor the target: other work
	# sharing the cores during this run (in % of all CPUs).
	local other
	other=$(awk -v m=$((m1 - m0)) -v t=$((cpu1 - cpu0)) -v u=$((up1 - up0)) -v same="$([ "$t" = direct ] && echo 1 || echo 0)" \
		-v w="$(cat "$file.time")" -v hz="$hz" -v n="$ncpu" -v s="$secs" \
		'BEGIN {split(w, x, " "); busy = m / hz - t / hz - (same ? 0 : u / hz) - x[1] - x[2]; if (busy < 0) busy = 0; printf "%.0f", busy / (n * s) * 100}')
	local rps p50 p99 reqs non2xx errors
	rps=$(awk '/^Requests\/sec:/ {print $2}' "$file")
	p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$file")")
	p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$file")")
	reqs=$(awk '/requests in/ {print $1}' "$file")
	non2xx=$(awk '/Non-2xx/ {print $NF}' "$file")
	errors=$(awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}' "$file")
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$t" "$rps" "$p50" "$p99" "$reqs" \
		"$((after - before))" "${non2xx:-0}" "${errors:-0}" \
		"$(awk -v c=$((cpu1 - cpu0)) -v hz="$hz" -v n="$reqs" 'BEGIN { printf "%.1f", n ? c / hz * 1e6 / n : 0 }')" "$other" >>"$OUT/runs.tsv"
	log "round $round $t: $rps req/s, p50 $p50 ms, p99 $p99 ms (other work on the machine: $other% CPU)"
}

printf 'round\ttarget\trps\tp50_ms\tp99_ms\trequests\tupstream_calls\tnon2xx\tsocket_errors\tcpu_us_per_req\tother_cpu_pct\n' >"$OUT/runs.tsv"
quiet=$(background_pct 2)
log "machine busy before the load: $quiet% of $ncpu CPUs"
[ "$quiet" -lt 10 ] || log "warning: other work is using the machine; figures will be noisy"
log "warm-up: ${WARMUP}s per target"
for t in $TARGETS; do load "$t" "$WARMUP" 0; done
# Each round starts one target further along, so that no target always follows the same
# one (the machine's state after a target, a GC or a cache, falls on each in turn).
read -ra order <<<"$TARGETS"
for r in $(seq "$ROUNDS"); do
	for i in "${!order[@]}"; do
		load "${order[$(((i + r - 1) % ${#order[@]}))]}" "$DURATION" "$r"
	done
done

# col TARGET COLUMN prints the median over rounds of one column.
col() { awk -F'\t' -v t="$1" -v c="$2" 'NR > 1 && $2 == t {print $c}' "$OUT/runs.tsv" | median; }
# ratio A B prints the median over rounds of rps(A)/rps(B).
ratio() {
	awk -F'\t' -v a="$1" -v b="$2" 'NR > 1 && $2 == a {x[$1] = $3} NR > 1 && $2 == b {y[$1] = $3}
		END {for (r in x) if (r in y && y[r] > 0) printf "%.3f\n", x[r] / y[r]}' "$OUT/runs.tsv" | median
}
has() { [[ " $TARGETS " == *" $1 "* ]]; }

{
	echo "| target | requests/s | p50 ms | p99 ms | CPU µs/request | upstream calls / requests | non-2xx | socket errors | other work % CPU |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
	for t in $TARGETS; do
		calls=$(awk -F'\t' -v t="$t" 'NR > 1 && $2 == t {c += $7; n += $6} END {printf "%.3f", n ? c / n : 0}' "$OUT/runs.tsv")
		bad=$(awk -F'\t' -v t="$t" 'NR > 1 && $2 == t {s += $8} END {print s + 0}' "$OUT/runs.tsv")
		errs=$(awk -F'\t' -v t="$t" 'NR > 1 && $2 == t {s += $9} END {print s + 0}' "$OUT/runs.tsv")
		printf '| %s | %.0f | %.3f | %.3f | %.1f | %s | %s | %s | %s |\n' "$t" "$(col "$t" 3)" "$(col "$t" 4)" "$(col "$t" 5)" "$(col "$t" 10)" "$calls" "$bad" "$errs" "$(col "$t" 11)"
	done
	echo
	echo "Medians of $ROUNDS rounds of ${DURATION}s each (wrk -t$THREADS -c$CONNS, targets alternating, each round starting one further along)."
	echo "CPU µs/request: user+system time of the target's own processes (the stand-in for direct; nginx's master and workers)."
	echo "Other work: busy CPU on the machine that was not wrk, the stand-in or the target, in % of all CPUs (median of rounds); machine busy before the load: $quiet%."
	echo
	if has enrichproxy; then
		has reverseproxy && echo "- e/c enrichproxy / ReverseProxy requests/s: $(ratio enrichproxy reverseproxy)"
		has forwarder && echo "- e/d enrichproxy / minimal forwarder: $(ratio enrichproxy forwarder)"
		has nginx && echo "- e/b enrichproxy / nginx: $(ratio enrichproxy nginx)"
		has reverseproxy && has forwarder && echo "- d/c forwarder / ReverseProxy: $(ratio forwarder reverseproxy)"
		has reverseproxy && echo "- p99 enrichproxy / ReverseProxy: $(awk -v a="$(col enrichproxy 5)" -v b="$(col reverseproxy 5)" 'BEGIN {printf "%.3f", a / b}')"
	fi
	echo "- (median of the per-round ratios of requests/s)"
	busy=$(awk -F'\t' 'NR > 1 && $11 > 10 {printf "%s round %s (%s%%) ", $2, $1, $11}' "$OUT/runs.tsv")
	if [ -n "$busy" ]; then
		echo
		echo "Warning: other work took over 10 % of the CPUs during: $busy— run again on a quiet machine."
	fi
} | tee "$OUT/throughput.md"

stop_all
log "throughput done in $(($(date +%s) - began)) s; per-run figures in $OUT/runs.tsv"

if [ "$MEMORY" = 1 ]; then
	OUT=$OUT BENCH_BIN=$WORK/bin bash bench/memory.sh
fi
log "all done in $(($(date +%s) - began)) s; results in $OUT"
