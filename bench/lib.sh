# shellcheck shell=bash
# Shared by bench/run.sh, bench/memory.sh and bench/profile.sh: building the programs
# under test, free loopback ports, starting and stopping every process, and small number
# helpers. Source it after setting WORK (a temporary directory the caller owns).

# BENCH_PIDS are the processes this harness started; stop_all ends them (each by its pid).
BENCH_PIDS=()

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# build compiles the stand-in, the two Go baselines, the hold client and enrichproxy into
# $WORK/bin.
build() {
	mkdir -p "$WORK/bin"
	log "building into $WORK/bin"
	go build -o "$WORK/bin/" ./bench/upstream ./bench/reverseproxy ./bench/forwarder ./bench/hold
	go build -o "$WORK/bin/enrichproxy" ./cmd/proxy
}

# freeport prints a loopback TCP port nobody listens on, below the ephemeral range so
# that no client connection of the run can take it first.
freeport() {
	local lo hi p
	read -r lo hi </proc/sys/net/ipv4/ip_local_port_range
	hi=$((lo - 1))
	lo=$((hi > 20000 ? 20000 : 1024))
	for _ in $(seq 100); do
		p=$((lo + RANDOM % (hi - lo)))
		if [ -z "$(ss -Htln "sport = :$p")" ]; then
			echo "$p"
			return
		fi
	done
	die "no free port found"
}

# wait_file waits for a program's -addr-file and prints it.
wait_file() {
	for _ in $(seq 200); do
		if [ -s "$1" ]; then
			cat "$1"
			return
		fi
		sleep 0.05
	done
	die "timed out waiting for $1"
}

# wait_http waits until URL answers (any HTTP status).
wait_http() {
	for _ in $(seq 200); do
		if curl -s -o /dev/null --max-time 1 "$1"; then
			return
		fi
		sleep 0.05
	done
	die "timed out waiting for $1"
}

# stop PID ends one process this harness started and waits for it.
stop() {
	local pid=$1
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	local keep=()
	for p in "${BENCH_PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
	BENCH_PIDS=("${keep[@]}")
}

# stop_all ends every process still running (trap EXIT).
stop_all() {
	for pid in "${BENCH_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${BENCH_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	BENCH_PIDS=()
}

# start_upstream [DELAY] starts the stand-in; sets UPSTREAM_PID, UPSTREAM (host:port) and
# UPSTREAM_URL. With SCHEME=https the stand-in serves HTTPS (HTTP/2 to the Go proxies)
# with a self-signed certificate that every process started after trusts: SSL_CERT_FILE
# is exported.
start_upstream() {
	local f="$WORK/upstream.$RANDOM.addr" tls=()
	if [ "${SCHEME:-http}" = https ]; then
		tls=(-tls-cert-file "$WORK/stand-in.pem")
	fi
	"$WORK/bin/upstream" -listen 127.0.0.1:0 -addr-file "$f" -delay "${1:-0s}" "${tls[@]}" 2>"$WORK/upstream.log" &
	UPSTREAM_PID=$!
	BENCH_PIDS+=("$UPSTREAM_PID")
	UPSTREAM=$(wait_file "$f")
	UPSTREAM_URL="${SCHEME:-http}://$UPSTREAM"
	if [ "${SCHEME:-http}" = https ]; then
		export SSL_CERT_FILE="$WORK/stand-in.pem"
	fi
}

# start_gobaseline NAME (reverseproxy or forwarder) starts a Go baseline in front of
# $UPSTREAM; sets PID, ADDR and ADMIN (host:port of its /memstats listener).
start_gobaseline() {
	local name=$1 f="$WORK/$1.$RANDOM.addr" g="$WORK/$1.$RANDOM.admin"
	"$WORK/bin/$name" -upstream "$UPSTREAM_URL" -listen 127.0.0.1:0 -addr-file "$f" \
		-admin-listen 127.0.0.1:0 -admin-addr-file "$g" 2>>"$WORK/$name.log" &
	PID=$!
	BENCH_PIDS+=("$PID")
	ADDR=$(wait_file "$f")
	ADMIN=$(wait_file "$g")
	wait_http "http://$ADMIN/memstats"
}

# start_enrichproxy starts enrichproxy in front of $UPSTREAM as Enrow, with its defaults
# (log level info: the access log is part of the cost; its lines go to /dev/null).
# ENRICH_ENV may add environment settings (e.g. "GOMEMLIMIT=64MiB GOGC=50"). Sets PID,
# ADDR and ADMIN.
start_enrichproxy() {
	local port admin
	port=$(freeport)
	admin=$(freeport)
	# shellcheck disable=SC2086
	env ENROW_BASE_URL="$UPSTREAM_URL" ENROW_API_KEY=bench-key \
		PROXY_LISTEN="127.0.0.1:$port" PROXY_ADMIN_LISTEN="127.0.0.1:$admin" \
		${ENRICH_ENV:-} "$WORK/bin/enrichproxy" >/dev/null 2>>"$WORK/enrichproxy.log" &
	PID=$!
	BENCH_PIDS+=("$PID")
	ADDR="127.0.0.1:$port"
	ADMIN="127.0.0.1:$admin"
	wait_http "http://$ADMIN/readyz"
}

# start_nginx starts nginx (Debian's, as the current user, config generated under
# $WORK/nginx) as a reverse proxy to $UPSTREAM with keep-alive upstream connections. Sets
# PID (the master) and ADDR; nginx_pids lists the master and its workers.
start_nginx() {
	command -v nginx >/dev/null || die "nginx not found (apt-get install -y nginx-light)"
	local dir="$WORK/nginx" port user=""
	port=$(freeport)
	mkdir -p "$dir/tmp" "$dir/logs"
	rm -f "$dir/nginx.pid"
	# A master started by root drops its workers to "nobody" unless told otherwise.
	if [ "$(id -u)" = 0 ]; then user="user $(id -un) $(id -gn);"; fi
	cat >"$dir/nginx.conf" <<-EOF
		$user
		daemon off;
		master_process on;
		worker_processes 2;
		worker_rlimit_nofile 20000;
		pid $dir/nginx.pid;
		error_log $dir/logs/error.log warn;
		events { worker_connections 10000; }
		http {
		    access_log /dev/null combined;
		    client_body_temp_path $dir/tmp/client_body;
		    proxy_temp_path $dir/tmp/proxy;
		    fastcgi_temp_path $dir/tmp/fastcgi;
		    uwsgi_temp_path $dir/tmp/uwsgi;
		    scgi_temp_path $dir/tmp/scgi;
		    keepalive_requests 1000000;
		    keepalive_timeout 120s;
		    upstream vendor {
		        server $UPSTREAM;
		        keepalive 64;
		        keepalive_requests 1000000;
		    }
		    server {
		        listen 127.0.0.1:$port backlog=4096;
		        location / {
		            proxy_pass ${SCHEME:-http}://vendor;
		            proxy_http_version 1.1;
		            proxy_set_header Connection "";
		        }
		    }
		}
	EOF
	nginx -e "$dir/logs/error.log" -p "$dir" -c "$dir/nginx.conf" &
	PID=$!
	BENCH_PIDS+=("$PID")
	ADDR="127.0.0.1:$port"
	ADMIN=""
	wait_http "http://$ADDR/account/info"
}

# nginx_pids prints the nginx master's pid and its workers', comma-separated.
nginx_pids() {
	local all=$1 c
	# shellcheck disable=SC2013 # the file holds pids separated by spaces
	for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do all="$all,$c"; done
	echo "$all"
}

# cpu_ticks PIDS prints the user+system CPU clock ticks used so far by pids (comma-separated).
cpu_ticks() {
	local sum=0 p
	for p in ${1//,/ }; do
		if [ -r "/proc/$p/stat" ]; then
			# Fields after the command name (which may hold spaces): utime is 14, stime 15.
			sum=$((sum + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
		fi
	done
	echo "$sum"
}

# median reads numbers, one a line, and prints their median.
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) {print "nan"} else if (NR%2) {print a[(NR+1)/2]} else {print (a[NR/2]+a[NR/2+1])/2}}'; }

# machine_ticks prints the CPU clock ticks the whole machine has spent busy so far (user,
# nice, system, irq, softirq, steal: every CPU, every process).
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }

# background_pct SECONDS prints how busy the machine is, in % of all its CPUs, over
# SECONDS while this harness runs nothing: other work on the machine skews every figure.
background_pct() {
	local t0 t1
	t0=$(machine_ticks)
	sleep "$1"
	t1=$(machine_ticks)
	awk -v d=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v n="$(nproc)" -v s="$1" 'BEGIN {printf "%.0f", d / hz / (n * s) * 100}'
}
