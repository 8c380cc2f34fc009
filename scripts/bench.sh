#!/usr/bin/env bash
# upgate's benchmark: one client (bench/cmd/upgate-bench) against upgate, its
# peers and a canned-101 ceiling, in one run, with identical settings.
#
#   scripts/bench.sh            full run: 3 repetitions, every scenario, the
#                               kernel levers; results in bench/results/DATE/
#   scripts/bench.sh --quick    a few seconds per server, one repetition, no
#                               levers; results in bench/results/tmp/quick.*/
#                               Fails only on errors (a server that does not
#                               start, a client error, no handshake), never
#                               on the numbers.
#
# Options:
#   --reps N             repetitions (full: 3)
#   --servers "A B ..."  servers to run (default: upgate ceiling tlsfloor
#                        writefloor splice gnetws nbio gws gobwas gorilla)
#   --scenarios "..."    among: handshake latency hold echo broadcast levers
#                        tls-handshake tls-hold tls-echo deflate-echo
#                        deflate-hold deflate-broadcast tunnel
#   --latency-rate N     handshakes started per second in the latency scenario
#                        (full: 10000, --quick: 5000); the rate must be one the
#                        client sustains, or its queueing is what gets measured
#   --port N             first port to try for the servers (default: random
#                        in 10001-30000); each server takes the next free one
#   --out DIR            results directory
#
# The TLS scenarios (wss://, TLS 1.3, full handshakes) run against the
# servers that speak TLS: upgate, tlsfloor (crypto/tls with a canned 101:
# the floor), nbio, gws and gorilla; tlsfloor runs only there. The script
# makes an ECDSA P-256 certificate in OUT/tls/ first (the key is deleted at
# the end). tls-handshake and tls-hold run once with the client offering
# an X25519 key share only and once with Go's default key shares
# (X25519MLKEM768 and X25519); tls-echo with the defaults (--quick: the
# defaults only, but for tls-handshake).
#
# broadcast runs against upgate and writefloor (the floor: one write(2)
# of the same frame to every subscriber, nothing else; it runs only
# there), first with one loop as every other scenario, then with two: the
# server on CPUs 0 and 1 (GOMAXPROCS=2 taskset -c 0-1; upgate --loops 2,
# writefloor -loops 2), so that the client shares CPU 1 with it. The
# results record the loops (-server-loops), the report has a row for each.
#
# deflate-echo (permessage-deflate, RFC 7692) runs against upgate, nbio, gws
# and gorilla: 16 JSON messages of about 2 KiB cycled, once without the
# extension (the baseline: the same messages, the server without its
# -deflate), once with the client offering no context takeover both ways;
# gws once more with -deflate-takeover and an offer that lets it keep its
# context. upgate needs no flag: it negotiates by default. A server that
# answers without the extension is recorded as declined, and the script
# goes on. deflate-hold holds connections (1 000 then 10 000; --quick 100
# then 400) that each echoed one of those messages, against the same
# servers, without and with the extension: the server's memory per
# connection. deflate-broadcast publishes them to 10 000 subscribers
# (--quick 300) of upgate, without and with the extension: the server's CPU
# time and the wire bytes per delivery.
#
# tunnel runs against upgate (bench/peers/upgatetunnel: a gateway with one
# tcp route) and splice (a Go io.Copy proxy, splice(2) underneath; it runs
# only there): TUNNEL_COUNTS tunnels (full: 1 16 256, --quick: 16) opened
# with "Upgrade: tcp", each pushing a stream one way (TUNNEL_DIRS, default
# up down) for TUNNEL_SECONDS (full: 10, --quick: 1) after TUNNEL_WARMUP
# seconds (full: 2, --quick: 0.2), to an upstream sink or from a source
# that the client serves itself on a port of its own (on CPU 1): MiB/s,
# the server's CPU time per MiB, and the setup latency of tunnels opened
# one at a time.
#
# Each server runs alone on CPU 0 (GOMAXPROCS=1 taskset -c 0; broadcast's
# two-loop runs excepted), a fresh process for every run; the client runs
# on CPU 1 (taskset -c 1). Servers take turns within each repetition, in an
# order that rotates between repetitions. Every process started here is
# stopped on exit, also on error.
#
# The machine may be shared: the client measures how much CPU other work
# used during each run, and a full run measures a run again (up to twice)
# when that exceeded BENCH_MAX_OTHER_CPU cores (default 0.25); set-aside runs
# are kept in disturbed/.
#
# Environment: UPGATE_TEST_BENCH_IMPL=loop benchmarks upgate through
# bench/peers/upgate (package loop with an echo handler) even when
# cmd/upgate builds; =binary insists on the binary.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" bench.sh

QUICK=0
REPS=""
OUT=""
SERVERS="upgate ceiling tlsfloor writefloor splice gnetws nbio gws gobwas gorilla"
TLS_SERVERS=" upgate tlsfloor nbio gws gorilla "
DEFLATE_SERVERS=" upgate nbio gws gorilla "
SCENARIOS=""
FIRST_PORT=""
LAT_RATE=""
while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1 ;;
	--reps) REPS=$2; shift ;;
	--servers) SERVERS=$2; shift ;;
	--scenarios) SCENARIOS=$2; shift ;;
	--port) FIRST_PORT=$2; shift ;;
	--latency-rate) LAT_RATE=$2; shift ;;
	--out) OUT=$2; shift ;;
	-h | --help) sed -n '2,/^set -e/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done

# A run during which other work used more than MAX_OTHER cores is measured
# again, up to RETRIES times (full runs only).
MAX_OTHER=${BENCH_MAX_OTHER_CPU:-0.25}
RETRIES=2
if [ "$QUICK" = 1 ]; then
	RETRIES=0
	: "${REPS:=1}" "${SCENARIOS:=handshake latency hold echo broadcast tls-handshake tls-hold tls-echo deflate-echo deflate-hold deflate-broadcast tunnel}"
	HS=(-d 1.5s -warmup 0.3s -c 64)
	LAT=(-rate "${LAT_RATE:-5000}" -c 1024 -d 1s -warmup 0.2s)
	HOLD=(-n 2000 -hold-from 500 -settle 0.3s -d 0.3s -c 128)
	ECHO=(-n 50 -size 64 -d 1s -warmup 0.2s)
	BCAST=(-n 500 -rate 10 -d 1s -warmup 0.2s)
	LEVER=(-d 1s -warmup 0.3s)
	TLS_HS=(-d 1s -warmup 0.3s -c 16)
	TLS_HOLD=(-n 500 -hold-from 100 -settle 0.3s -d 0.3s -c 32)
	TLS_ECHO=(-n 20 -size 128 -d 1s -warmup 0.2s)
	TLS_HS_SHARES="x25519 default" TLS_HOLD_SHARES="default" TLS_ECHO_SHARES="default"
	DEFLATE_ECHO=(-n 20 -d 1s -warmup 0.2s)
	DEFLATE_HOLD=(-n 400 -hold-from 100 -settle 0.3s -d 0.3s -c 64)
	DEFLATE_BCAST=(-n 300 -rate 10 -d 1s -warmup 0.2s)
	: "${TUNNEL_COUNTS:=16}" "${TUNNEL_SECONDS:=1}" "${TUNNEL_WARMUP:=0.2}"
	TUNNEL=(-setups 20 -c 64)
	if [ -z "$OUT" ]; then
		# one directory per run: several test runs may share the machine
		mkdir -p "$ROOT/bench/results/tmp"
		find "$ROOT/bench/results/tmp" -maxdepth 1 -name 'quick.*' -mmin +120 -exec rm -rf {} + 2>/dev/null || true
		OUT=$(mktemp -d "$ROOT/bench/results/tmp/quick.XXXXXX")
	fi
else
	: "${REPS:=3}" "${SCENARIOS:=handshake latency hold echo broadcast levers tls-handshake tls-hold tls-echo deflate-echo deflate-hold deflate-broadcast tunnel}"
	HS=(-d 10s -warmup 3s -c 64)
	LAT=(-rate "${LAT_RATE:-10000}" -c 1024 -d 10s -warmup 2s)
	HOLD=(-n 19000 -hold-from 1000 -settle 2s -d 5s -c 256)
	ECHO=(-n 100 -size 64 -d 10s -warmup 2s)
	BCAST=(-n 10000 -rate 5 -d 10s -warmup 1s)
	LEVER=(-d 6s -warmup 2s)
	# A TLS handshake costs the client ~20x a plain one: 64 in flight keep
	# its core busy. 10 000 connections: a goroutine-per-connection server
	# holds ~30 KB each with TLS.
	TLS_HS=(-d 10s -warmup 3s -c 64)
	TLS_HOLD=(-n 10000 -hold-from 1000 -settle 2s -d 5s -c 64)
	TLS_ECHO=(-n 100 -size 128 -d 10s -warmup 2s)
	TLS_HS_SHARES="x25519 default" TLS_HOLD_SHARES="x25519 default" TLS_ECHO_SHARES="default"
	DEFLATE_ECHO=(-n 100 -d 10s -warmup 2s)
	DEFLATE_HOLD=(-n 10000 -hold-from 1000 -settle 2s -d 5s -c 256)
	DEFLATE_BCAST=(-n 10000 -rate 5 -d 10s -warmup 1s)
	: "${TUNNEL_COUNTS:=1 16 256}" "${TUNNEL_SECONDS:=10}" "${TUNNEL_WARMUP:=2}"
	TUNNEL=(-setups 200 -c 64)
	if [ -z "$OUT" ]; then
		OUT=$ROOT/bench/results/$(date +%F)
		[ -e "$OUT" ] && OUT=$OUT-$(date +%H%M%S)
	fi
fi
: "${TUNNEL_DIRS:=up down}"
TUNNEL+=(-d "${TUNNEL_SECONDS}s" -warmup "${TUNNEL_WARMUP}s")
RAW=$OUT/raw
LOGS=$OUT/logs
mkdir -p "$RAW" "$LOGS"
BIN=$(mktemp -d "${TMPDIR:-/tmp}/upgate-bench.XXXXXX")

# ------------------------------------------------------------ processes --

SRV_PID=""
CLI_PID=""
cleanup() {
	stop_pids 10 "$CLI_PID" "$SRV_PID"
	SRV_PID="" CLI_PID=""
	rm -rf "$BIN"
	rm -f "$OUT/tls/key.pem"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pin_cpus
case ${LAT_RATE:-1} in '' | 0 | *[!0-9]*) die "--latency-rate wants a positive number" ;; esac
if [ -n "$FIRST_PORT" ]; then
	case $FIRST_PORT in '' | *[!0-9]*) die "--port wants a number" ;; esac
	PORT=$((FIRST_PORT - 1))
fi

# ---------------------------------------------------------------- build --

echo "==> build"
(cd bench && go build -o "$BIN/" ./cmd/upgate-bench) || die "building the client failed"
for p in bench/peers/*/; do
	p=$(basename "$p")
	(cd bench && go build -o "$BIN/peer-$p" "./peers/$p") || die "building peer $p failed"
done
IMPL=${UPGATE_TEST_BENCH_IMPL:-auto}
if [ "$IMPL" != loop ] && ls cmd/upgate/*.go >/dev/null 2>&1 &&
	go build -o "$BIN/upgate" ./cmd/upgate 2>"$LOGS/build-upgate.log"; then
	IMPL=binary
elif [ "$IMPL" = binary ]; then
	cat "$LOGS/build-upgate.log" >&2 2>/dev/null || true
	die "UPGATE_TEST_BENCH_IMPL=binary but cmd/upgate does not build"
else
	IMPL=loop
fi
echo "upgate: $([ $IMPL = binary ] && echo "cmd/upgate binary" || echo "bench/peers/upgate (package loop, echo handler)")"

case " $SCENARIOS " in
*" tls-"*)
	# The bench's certificate: ECDSA P-256, self-signed, for 127.0.0.1;
	# every TLS server gets it by flags, the client trusts it.
	"$BIN/upgate-bench" cert -o "$OUT/tls" || die "making the certificate failed"
	TLS_SARGS=(-tls-cert "$OUT/tls/cert.pem" -tls-key "$OUT/tls/key.pem")
	TLS_CARGS=(-tls -tls-ca "$OUT/tls/cert.pem")
	;;
esac

# -------------------------------------------------------------- servers --

# SRV_LOOPS: the loops of the servers started next (1: alone on CPU 0;
# N: GOMAXPROCS=N on CPUs 0 to N-1, the binary with --loops N; the peers
# get -loops N from the caller).
SRV_LOOPS=1

# start_server NAME LOGTAG [ARGS...]: start NAME on a fresh port, alone on
# CPU 0 (SRV_LOOPS CPUs from 0 on); sets SRV_PID and ADDR.
start_server() {
	local name=$1 tag=$2
	shift 2
	next_port
	ADDR=127.0.0.1:$PORT
	local cmd cpu=(${SERVER_CPU[@]+"${SERVER_CPU[@]}"})
	[ "$SRV_LOOPS" -gt 1 ] && [ ${#cpu[@]} -gt 0 ] && cpu=(taskset -c "0-$((SRV_LOOPS - 1))")
	if [ "$name" = upgate ] && [ "$IMPL" = binary ]; then
		cmd=("$BIN/upgate" --listen "$ADDR" --admin off --loops "$SRV_LOOPS" --log-level error --drain-timeout 1s)
		if [ "${1:-}" = -tls-cert ]; then
			# The peers' -tls-cert C -tls-key K: the binary's TLS listener
			# alone.
			cmd=("$BIN/upgate" --listen off --tls-listen "$ADDR" --tls-cert "$2" --tls-key "$4"
				--admin off --loops "$SRV_LOOPS" --log-level error --drain-timeout 1s)
			shift 4
		fi
	else
		cmd=("$BIN/peer-$name" -addr "$ADDR")
	fi
	local try up
	for try in 1 2 3; do
		GOMAXPROCS=$SRV_LOOPS ${cpu[@]+"${cpu[@]}"} "${cmd[@]}" "$@" >"$LOGS/$tag.server.log" 2>&1 &
		SRV_PID=$!
		up=0
		await_listen "${ADDR#*:}" || up=$?
		[ $up = 0 ] && return 0
		[ $up = 2 ] && die "server $name is not listening on $ADDR after 20s"
		if [ "$try" -lt 3 ] && grep -q "address already in use" "$LOGS/$tag.server.log"; then
			# another program took the port meanwhile: take the next one
			local old=$ADDR
			next_port
			ADDR=127.0.0.1:$PORT
			cmd=("${cmd[@]/#$old/$ADDR}")
			continue
		fi
		cat "$LOGS/$tag.server.log" >&2
		die "server $name did not start (${cmd[*]} $*)"
	done
}

stop_server() {
	stop_pids 30 "$SRV_PID"
	SRV_PID=""
}

# client TAG ARGS...: run the client on CPU 1 against the running server.
client() {
	local tag=$1
	shift
	GOMAXPROCS=1 ${CLIENT_CPU[@]+"${CLIENT_CPU[@]}"} "$BIN/upgate-bench" -addr "$ADDR" -server-pid "$SRV_PID" \
		-out "$RAW/$tag.json" "$@" </dev/null &
	CLI_PID=$!
	local rc=0
	wait "$CLI_PID" || rc=$?
	CLI_PID=""
	# 3: a -deflate server declined the extension; the result records it.
	[ $rc -eq 3 ] && [ "${DECLINE_OK:-0}" = 1 ] && rc=0
	[ $rc -eq 0 ] || die "client failed: $tag (exit $rc; server log: $LOGS/$tag.server.log)"
}

# disturbed TAG: whether other work used more than MAX_OTHER cores during
# the run (the client measures it from /proc/stat).
disturbed() {
	local v
	v=$(sed -n 's/.*"other_cpu_util": *\([0-9.eE+-]*\).*/\1/p' "$RAW/$1.json")
	awk -v v="${v:-0}" -v m="$MAX_OTHER" 'BEGIN { exit !(v > m) }'
}

# measure TAG SERVER SERVER-ARGS... -- CLIENT-ARGS...: one measured run on a
# fresh server process. A run disturbed by other work is set aside (in
# disturbed/) and measured again, up to RETRIES times; the last one counts.
measure() {
	local tag=$1 server=$2
	shift 2
	local sargs=() cargs=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do sargs+=("$1"); shift; done
	[ $# -gt 0 ] && shift
	cargs=("$@")
	local attempt
	for attempt in $(seq 0 "$RETRIES"); do
		start_server "$server" "$tag" ${sargs[@]+"${sargs[@]}"}
		client "$tag" ${cargs[@]+"${cargs[@]}"}
		stop_server
		if [ "$attempt" -lt "$RETRIES" ] && disturbed "$tag"; then
			mkdir -p "$OUT/disturbed"
			mv "$RAW/$tag.json" "$OUT/disturbed/$tag.try$((attempt + 1)).json"
			echo "   (other work used more than $MAX_OTHER of a core: measuring again)"
			sleep 2
			continue
		fi
		break
	done
}

# run SCENARIO SERVER REP [LOOPS]: one measured run of a scenario; broadcast
# takes the server's LOOPS (default 1).
run() {
	local scenario=$1 server=$2 rep=$3 loops=${4:-1} tag="$1-$2-r$3"
	local args=(-server "$server" -rep "$rep") notes=()
	[ "$server" = ceiling ] && args+=(-verify-accept=false)
	[ "$server" = upgate ] && [ "$IMPL" = loop ] && notes+=("upgate via bench/peers/upgate")
	[ ${#notes[@]} -gt 0 ] && [ "$scenario" != broadcast ] && args+=(-notes "${notes[0]}")
	case $scenario in
	handshake) measure "$tag" "$server" -- "${args[@]}" "${HS[@]}" handshake ;;
	latency) measure "$tag" "$server" -- "${args[@]}" "${LAT[@]}" latency ;;
	hold) measure "$tag" "$server" -- "${args[@]}" "${HOLD[@]}" hold ;;
	echo) measure "$tag" "$server" -- "${args[@]}" "${ECHO[@]}" echo ;;
	tls-handshake | tls-hold | tls-echo) die "run_tls runs $scenario" ;;
	broadcast)
		# The binary's /ws/{topic} route lets subscribers publish; the bench
		# server takes publishers on /pub/{topic}.
		local pub=/pub/bench sargs=()
		[ "$server" = upgate ] && [ "$IMPL" = binary ] && pub=/ws/bench
		if [ "$loops" -gt 1 ]; then
			tag="$1-${loops}loops-$2-r$3"
			# the binary takes --loops from start_server, the peers -loops
			[ "$server" = upgate ] && [ "$IMPL" = binary ] || sargs=(-loops "$loops")
			notes+=("server on CPUs 0-$((loops - 1)) (GOMAXPROCS=$loops), sharing CPU 1 with the client")
		fi
		[ ${#notes[@]} -gt 0 ] && args+=(-notes "$(IFS=';'; echo "${notes[*]}")")
		SRV_LOOPS=$loops
		measure "$tag" "$server" ${sargs[@]+"${sargs[@]}"} -- "${args[@]}" -server-loops "$loops" \
			"${BCAST[@]}" -path /ws/bench -pub-path "$pub" broadcast
		SRV_LOOPS=1
		;;
	esac
}

# run_tls SCENARIO SERVER REP KEYSHARES: one measured run of a TLS scenario
# (tls-handshake, tls-hold, tls-echo) with the client offering KEYSHARES
# (x25519 or default).
run_tls() {
	local scenario=$1 server=$2 rep=$3 shares=$4 tag="$1-$4-$2-r$3"
	local args=(-server "$server" -rep "$rep" "${TLS_CARGS[@]}" -tls-curves "$shares")
	[ "$server" = tlsfloor ] && args+=(-verify-accept=false)
	[ "$server" = upgate ] && [ "$IMPL" = loop ] && args+=(-notes "upgate via bench/peers/upgate (loop.Options.TLS)")
	case $scenario in
	tls-handshake) measure "$tag" "$server" "${TLS_SARGS[@]}" -- "${args[@]}" "${TLS_HS[@]}" handshake ;;
	tls-hold) measure "$tag" "$server" "${TLS_SARGS[@]}" -- "${args[@]}" "${TLS_HOLD[@]}" hold ;;
	tls-echo) measure "$tag" "$server" "${TLS_SARGS[@]}" -- "${args[@]}" "${TLS_ECHO[@]}" echo ;;
	esac
}

# run_deflate SCENARIO SERVER REP MODE: one measured run of deflate-echo,
# deflate-hold or deflate-broadcast with the client's -deflate MODE (none,
# no-takeover, takeover); the peers get -deflate (and -deflate-takeover for
# takeover), but for the baseline.
run_deflate() {
	local scenario=$1 server=$2 rep=$3 mode=$4 tag="$1-$4-$2-r$3"
	local args=(-server "$server" -rep "$rep" -deflate "$mode")
	local sargs=()
	[ "$server" = upgate ] && [ "$IMPL" = loop ] && args+=(-notes "upgate via bench/peers/upgate")
	if [ "$server" != upgate ] && [ "$mode" != none ]; then
		sargs=(-deflate)
		[ "$mode" = takeover ] && sargs+=(-deflate-takeover)
	fi
	case $scenario in
	deflate-echo) args+=("${DEFLATE_ECHO[@]}" echo) ;;
	deflate-hold) args+=("${DEFLATE_HOLD[@]}" hold) ;;
	deflate-broadcast)
		# as in run: the binary's publishers subscribe too
		local pub=/pub/bench
		[ "$server" = upgate ] && [ "$IMPL" = binary ] && pub=/ws/bench
		args+=("${DEFLATE_BCAST[@]}" -path /ws/bench -pub-path "$pub" broadcast)
		;;
	esac
	DECLINE_OK=1
	measure "$tag" "$server" ${sargs[@]+"${sargs[@]}"} -- "${args[@]}"
	DECLINE_OK=0
}

# run_tunnel SERVER REP COUNT DIR: one measured run of the tunnel scenario:
# COUNT tunnels pushing data DIR (up, down, both). upgate is
# bench/peers/upgatetunnel (cmd/upgate's --route takes no upstream yet);
# the client serves the upstream on a port of its own.
run_tunnel() {
	local server=$1 rep=$2 count=$3 dir=$4 tag="tunnel-$4-$3-$1-r$2" peer=$1
	local args=(-server "$server" -rep "$rep" "${TUNNEL[@]}" -n "$count" -dir "$dir")
	if [ "$server" = upgate ]; then
		peer=upgatetunnel
		args+=(-notes "upgate via bench/peers/upgatetunnel (gateway, tcp route)")
	fi
	next_port
	local up=127.0.0.1:$PORT
	measure "$tag" "$peer" -upstream "$up" -- "${args[@]}" -upstream "$up" tunnel
}

# lever SERVER VARIANT REP SERVER-ARGS -- CLIENT-ARGS: one kernel-lever run.
lever() {
	local server=$1 variant=$2 rep=$3
	shift 3
	local sargs=() cargs=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do sargs+=("$1"); shift; done
	[ $# -gt 0 ] && shift
	cargs=("$@")
	local tag="lever-$server-$(echo "$variant" | tr -c 'A-Za-z0-9\n' '-')-r$rep"
	local args=(-server "$server" -variant "$variant" -rep "$rep" "${HS[@]}" "${LEVER[@]}")
	[ "$server" = ceiling ] && args+=(-verify-accept=false)
	# The levers need the loop's options: always the bench server.
	local saved=$IMPL
	IMPL=loop
	measure "$tag" "$server" ${sargs[@]+"${sargs[@]}"} -- "${args[@]}" ${cargs[@]+"${cargs[@]}"} handshake
	IMPL=$saved
}

levers() {
	local rep=$1 s
	for s in upgate ceiling; do
		lever $s "default" "$rep"
		lever $s "TCP_DEFER_ACCEPT 1s" "$rep" -defer-accept 1s
		lever $s "2 loops, SO_REUSEPORT" "$rep" -loops 2 -reuseport
		lever $s "1 loop, SO_REUSEPORT (the loop accepts)" "$rep" -reuseport
		lever $s "client closes with FIN" "$rep" -- -close fin
		lever $s "1024 in flight" "$rep" -- -c 1024
	done
	lever ceiling "client closes with FIN, server SO_LINGER 0" "$rep" -linger0 -- -close fin
	lever ceiling "1024 in flight, backlog 64" "$rep" -backlog 64 -- -c 1024
}

# ------------------------------------------------------------------ run --

{
	echo "date:     $(date -u '+%F %T UTC')"
	echo "commit:   $(commit_desc)"
	echo "upgate:   $([ $IMPL = binary ] && echo "cmd/upgate binary" || echo "bench/peers/upgate (package loop, echo handler)")"
	echo "go:       $(go version | cut -d' ' -f3-)"
	echo "kernel:   $(uname -sr)"
	echo "cpu:      $(cpu_desc)"
	echo "load:     $(load_desc)"
	echo "mode:     $([ $QUICK = 1 ] && echo quick || echo full), $REPS repetition(s)"
	case " $SCENARIOS " in
	*" tls-"*) echo "tls:      upgate $([ $IMPL = binary ] && echo "with --listen off --tls-listen" || echo "as bench/peers/upgate (loop.Options.TLS)"); certificate ECDSA P-256, self-signed (tls/cert.pem)" ;;
	esac
	echo "somaxconn $(cat /proc/sys/net/core/somaxconn), tcp_max_syn_backlog $(cat /proc/sys/net/ipv4/tcp_max_syn_backlog), ports $(tr '\t' - </proc/sys/net/ipv4/ip_local_port_range)"
} >"$OUT/env.txt"
cat "$OUT/env.txt"

read -r -a servers <<<"$SERVERS"
n=${#servers[@]}
for rep in $(seq "$REPS"); do
	# rotate the order of servers between repetitions
	order=()
	for i in $(seq 0 $((n - 1))); do order+=("${servers[$(((i + rep - 1) % n))]}"); done
	for scenario in $SCENARIOS; do
		case $scenario in
		levers) echo "==> [rep $rep/$REPS] kernel levers"; levers "$rep" ;;
		broadcast)
			# Only servers with pub/sub, upgate, and the floor; with one
			# loop, then with two on both CPUs.
			for loops in 1 2; do
				if [ "$loops" -gt "$(nproc)" ]; then
					echo "==> [rep $rep/$REPS] broadcast, $loops loops: skipped, $(nproc) CPU(s)"
					continue
				fi
				echo "==> [rep $rep/$REPS] broadcast, $loops loop(s)"
				for s in "${order[@]}"; do
					case $s in upgate | writefloor) run broadcast "$s" "$rep" "$loops" ;; esac
				done
			done
			;;
		handshake | latency | hold | echo)
			echo "==> [rep $rep/$REPS] $scenario"
			for s in "${order[@]}"; do
				# the ceiling answers the handshake only: it cannot echo
				[ "$scenario" = echo ] && [ "$s" = ceiling ] && continue
				# the TLS floor speaks TLS only, the write floor broadcasts
				# only, splice tunnels only
				case $s in tlsfloor | writefloor | splice) continue ;; esac
				run "$scenario" "$s" "$rep"
			done
			;;
		tls-handshake | tls-hold | tls-echo)
			case $scenario in
			tls-handshake) shares=$TLS_HS_SHARES ;;
			tls-hold) shares=$TLS_HOLD_SHARES ;;
			*) shares=$TLS_ECHO_SHARES ;;
			esac
			for ks in $shares; do
				echo "==> [rep $rep/$REPS] $scenario, key shares: $ks"
				for s in "${order[@]}"; do
					case $TLS_SERVERS in *" $s "*) run_tls "$scenario" "$s" "$rep" "$ks" ;; esac
				done
			done
			;;
		deflate-echo | deflate-hold)
			echo "==> [rep $rep/$REPS] $scenario"
			for s in "${order[@]}"; do
				case $DEFLATE_SERVERS in *" $s "*) ;; *) continue ;; esac
				run_deflate "$scenario" "$s" "$rep" none
				run_deflate "$scenario" "$s" "$rep" no-takeover
				[ "$scenario" = deflate-echo ] && [ "$s" = gws ] && run_deflate deflate-echo gws "$rep" takeover
			done
			;;
		deflate-broadcast)
			echo "==> [rep $rep/$REPS] deflate-broadcast"
			# Only servers with pub/sub: upgate.
			case " $SERVERS " in *" upgate "*)
				run_deflate deflate-broadcast upgate "$rep" none
				run_deflate deflate-broadcast upgate "$rep" no-takeover
				;;
			esac
			;;
		tunnel)
			for dir in $TUNNEL_DIRS; do
				for count in $TUNNEL_COUNTS; do
					echo "==> [rep $rep/$REPS] tunnel, $count tunnel(s), $dir"
					for s in "${order[@]}"; do
						case $s in upgate | splice) run_tunnel "$s" "$rep" "$count" "$dir" ;; esac
					done
				done
			done
			;;
		*) die "unknown scenario $scenario" ;;
		esac
	done
done

find "$LOGS" -type f -empty -delete
rmdir "$LOGS" 2>/dev/null || true

echo "==> report"
TITLE="upgate benchmark"
[ "$QUICK" = 1 ] && TITLE="$TITLE (quick)"
"$BIN/upgate-bench" report -title "$TITLE" -o "$OUT" "$RAW" >/dev/null ||
	die "report failed"
cat "$OUT/results.md"
echo "bench.sh: results in ${OUT#"$ROOT"/}"
