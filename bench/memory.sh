#!/usr/bin/env bash
# bench/memory.sh — memory under a slow vendor: N requests held at once.
#
#   bash bench/memory.sh                  # N = 1000 and 5000, about 40 s
#   NS="1000 5000 8000" bash bench/memory.sh   # up to 9,999: 20,000 open files per process
#
# The stand-in (bench/upstream) answers after DELAY (2s). For each target and each N, a
# fresh proxy process is started (VmHWM is a high-water mark since start), left idle
# SETTLE seconds, then bench/hold opens N connections to it, one request each with a new
# search id, all held by the stand-in at once (it reports the most it held), and samples
# the proxy meanwhile. Reported per target and N: idle RSS after start-up, peak RSS
# (VmHWM from /proc/<pid>/status), peak Go heap in use (enrichproxy: its admin /metrics
# go_memstats_heap_inuse_bytes; the Go baselines: bench's /memstats, runtime.ReadMemStats)
# and goroutine stacks in use, and per in-flight request: (peak - idle) / N.
#
# Targets (TARGETS): reverseproxy and enrichproxy side by side (the issue's comparison),
# and, for reference, forwarder and nginx (RSS summed over its master and workers; no Go
# heap). Everything runs on 127.0.0.1 with free ports; the open-file limit is raised to
# 20000 (a proxy holds two descriptors per in-flight request).
#
# SCHEME=https makes the stand-in an HTTPS server (HTTP/2 for the Go proxies, which is
# what a real vendor API gives them; enrichproxy then uses net/http's transport, not its
# own HTTP/1.1 client): the memory of held requests over TLS.
#
# Settings (environment): SCHEME=http NS="1000 5000" DELAY=2s SETTLE=1 TARGETS="reverseproxy
# enrichproxy forwarder nginx" OUT=bench/out/<time> BENCH_BIN (reuse binaries built by
# run.sh) ENRICH_ENV="" (extra environment for enrichproxy, e.g. GOMEMLIMIT=64MiB).
set -euo pipefail

cd "$(dirname "$0")/.."
NS=${NS:-"1000 5000"}
DELAY=${DELAY:-2s}
SETTLE=${SETTLE:-1}
TARGETS=${TARGETS:-"reverseproxy enrichproxy forwarder nginx"}
OUT=${OUT:-bench/out/$(date +%Y%m%d-%H%M%S)}

for tool in go curl ss; do command -v "$tool" >/dev/null || { echo "memory.sh: $tool not found" >&2; exit 1; }; done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/enrichmem.XXXXXX")
# shellcheck source=bench/lib.sh
source bench/lib.sh
trap 'stop_all; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM
ulimit -n 20000 2>/dev/null || die "cannot raise the open-file limit to 20000 (hard limit $(ulimit -Hn))"

began=$(date +%s)
if [ -n "${BENCH_BIN:-}" ]; then
	mkdir -p "$WORK/bin" && cp "$BENCH_BIN"/* "$WORK/bin/"
else
	build
fi

start_upstream "$DELAY"
log "stand-in at $UPSTREAM answering after $DELAY"

printf 'target\tn\tok\tfailed\tupstream_max_held\telapsed_ms\tidle_rss\tpeak_rss\tidle_heap\tpeak_heap\tidle_stack\tpeak_stack\tidle_goroutines\tpeak_goroutines\n' >"$OUT/memory.tsv"
for n in $NS; do
	for t in $TARGETS; do
		heap_url="" heap_fmt=prom prefix="" pids=""
		case $t in
		reverseproxy | forwarder)
			start_gobaseline "$t"
			heap_url="http://$ADMIN/memstats" heap_fmt=memstats pids=$PID
			;;
		enrichproxy)
			start_enrichproxy
			heap_url="http://$ADMIN/metrics" prefix=/enrow pids=$PID
			;;
		nginx)
			start_nginx
			pids=$(nginx_pids "$PID")
			;;
		*) die "unknown target $t" ;;
		esac
		sleep "$SETTLE"
		line=$("$WORK/bin/hold" -url "http://$ADDR$prefix/email/find/single?id=" -n "$n" -pid "$pids" \
			-heap-url "$heap_url" -heap-format "$heap_fmt" -upstream-stats "$UPSTREAM_URL/_stats")
		echo "$line" >"$OUT/hold-$t-$n.txt"
		stop "$PID"
		get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $line"; }
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$n" "$(get ok)" "$(get failed)" \
			"$(get upstream_max_held)" "$(get elapsed_ms)" "$(get idle_rss)" "$(get vm_hwm)" \
			"$(get idle_heap_inuse)" "$(get peak_heap_inuse)" "$(get idle_stack_inuse)" "$(get peak_stack_inuse)" \
			"$(get idle_goroutines)" "$(get peak_goroutines)" >>"$OUT/memory.tsv"
		log "$t N=$n: ok $(get ok), failed $(get failed), held at once $(get upstream_max_held), peak RSS $(($(get vm_hwm) >> 20)) MiB"
		[ "$(get failed)" = 0 ] || log "  first error: $(get first_error)"
	done
done

{
	echo "| target | N | answered 200 | held at once | idle RSS MiB | peak RSS MiB | RSS KiB / request | peak heap MiB | heap KiB / request | peak stacks MiB | stack KiB / request | goroutines / request |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	awk -F'\t' 'NR > 1 {
		mib = 1048576; kib = 1024
		heap = ($10 > 0) ? sprintf("%.1f | %.1f", $10 / mib, ($10 - $9) / kib / $2) : "– | –"
		stack = ($12 > 0) ? sprintf("%.1f | %.1f", $12 / mib, ($12 - $11) / kib / $2) : "– | –"
		gor = ($14 > 0) ? sprintf("%.2f", ($14 - $13) / $2) : "–"
		printf "| %s | %d | %d | %d | %.1f | %.1f | %.1f | %s | %s | %s |\n", $1, $2, $3, $5, $7 / mib, $8 / mib, ($8 - $7) / kib / $2, heap, stack, gor
	}' "$OUT/memory.tsv"
	echo
	echo "Stand-in delay $DELAY; per request = (peak - idle) / N; peak RSS is VmHWM of a process started for that N alone."
	for n in $NS; do
		awk -F'\t' -v n="$n" 'NR > 1 && $2 == n {rss[$1] = $8}
			END {if (("enrichproxy" in rss) && ("reverseproxy" in rss)) printf "- N=%d: peak RSS enrichproxy / ReverseProxy = %.3f\n", n, rss["enrichproxy"] / rss["reverseproxy"]}' "$OUT/memory.tsv"
	done
} | tee "$OUT/memory.md"

stop_all
log "memory done in $(($(date +%s) - began)) s; results in $OUT"
