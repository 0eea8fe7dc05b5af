#!/usr/bin/env bash
# bench/profile.sh — where a proxy's CPU goes under the run.sh load, from outside the
# process (enrichproxy has no pprof endpoint, and this needs no change to it).
#
#   bash bench/profile.sh                      # enrichproxy; about 30 s
#   TARGET=forwarder bash bench/profile.sh     # or reverseproxy: the same view of a baseline
#
# Needs perf (apt-get install -y linux-perf) and the tools of run.sh. Starts the stand-in
# and TARGET (as run.sh does; enrichproxy with its defaults, access log at info to
# /dev/null), loads it with wrk (bench/newid.lua, a new id per request) for DURATION+4
# seconds, and samples the target's stacks with `perf record -e cpu-clock -g` (Go keeps
# frame pointers, so the call graphs are whole) for DURATION seconds in the middle of it.
# Writes to OUT: perf.data, self.txt (flat: the functions the CPU was in) and children.txt
# (cumulative: time in a function and everything it called), both as % of the target's
# samples, and summary.txt (CPU seconds sampled, requests served meanwhile, CPU µs per
# request). For the Go-side view with allocations, see bench/inprocess_test.go.
#
# Settings (environment): TARGET=enrichproxy DURATION=10 THREADS=2 CONNS=64
# OUT=bench/out/<time>-profile-<target> ENRICH_ENV=""
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
TARGET=${TARGET:-enrichproxy}
OUT=${OUT:-bench/out/$(date +%Y%m%d-%H%M%S)-profile-$TARGET}
for tool in go wrk curl ss perf; do command -v "$tool" >/dev/null || { echo "profile.sh: $tool not found" >&2; exit 1; }; done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/enrichprof.XXXXXX")
# shellcheck source=bench/lib.sh
source bench/lib.sh
trap 'stop_all; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM
ulimit -n 20000 2>/dev/null || true

build
start_upstream 0s
prefix=""
case $TARGET in
enrichproxy) start_enrichproxy; prefix=/enrow ;;
reverseproxy | forwarder) start_gobaseline "$TARGET" ;;
*) die "TARGET must be enrichproxy, reverseproxy or forwarder" ;;
esac
proxy_pid=$PID
log "$TARGET pid $proxy_pid at $ADDR; wrk for $((DURATION + 4)) s, perf for $DURATION s"
wrk -t"$THREADS" -c"$CONNS" -d"$((DURATION + 4))s" --latency -s bench/newid.lua "http://$ADDR" -- "$prefix" "$(printf '%04x%04x' $RANDOM $RANDOM)" >"$OUT/wrk.txt" &
wrk_pid=$!
BENCH_PIDS+=("$wrk_pid")
sleep 2
upstream_requests() { curl -s "http://$UPSTREAM/_stats" | sed 's/.*"requests":\([0-9]*\).*/\1/'; }
before=$(upstream_requests)
perf record -q -e cpu-clock -F 1999 -g -p "$proxy_pid" -o "$OUT/perf.data" -- sleep "$DURATION" 2>"$OUT/perf-record.log"
served=$(($(upstream_requests) - before))
wait "$wrk_pid" || true
grep -E 'Requests/sec|99%' "$OUT/wrk.txt" >&2 || true
samples=$(perf report -i "$OUT/perf.data" --stdio --no-children -F sample,pid -g none 2>/dev/null | awk '!/^#/ && NF {s += $1} END {print s + 0}')
awk -v s="$samples" -v n="$served" -v t="$TARGET" 'BEGIN {
	printf "%s: %d samples at 1999 Hz = %.2f CPU s; %d requests meanwhile; %.1f CPU µs/request (perf on)\n", t, s, s / 1999, n, s / 1999 * 1e6 / n }' |
	tee "$OUT/summary.txt" >&2

perf report -i "$OUT/perf.data" --stdio --no-children --sort symbol --percent-limit 0.4 -g none 2>/dev/null >"$OUT/self.txt"
perf report -i "$OUT/perf.data" --stdio --children --sort symbol --percent-limit 0.8 -g none 2>/dev/null >"$OUT/children.txt"
log "profile in $OUT (self.txt, children.txt, perf.data)"
