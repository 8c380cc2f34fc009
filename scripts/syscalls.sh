#!/usr/bin/env bash
# The system calls each server makes per handshake: the servers run alone on
# CPU 0 (GOMAXPROCS=1) while the benchmark client (bench/cmd/upgate-bench
# latency) opens handshakes at a fixed rate from CPU 1, and perf counts the
# server's system call entries (tracepoints syscalls:sys_enter_*, so every
# call is counted, none sampled). The table gives calls per handshake, over
# the handshakes the client completed.
#
#   scripts/syscalls.sh [--rate N] [--seconds S] [SERVER...]
#
# SERVER among upgate (cmd/upgate, as scripts/bench.sh starts it), ceiling,
# gnetws, nbio, gws, gobwas, gorilla (bench/peers/*); default: upgate
# ceiling gnetws. Needs perf and read access to the tracepoints (root, or
# kernel.perf_event_paranoid <= -1). perf slows every traced call: the
# counts hold, the CPU times of such a run do not.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" syscalls.sh

RATE=5000
SECONDS_RUN=4
SERVERS=()
while [ $# -gt 0 ]; do
	case $1 in
	--rate) RATE=$2; shift ;;
	--seconds) SECONDS_RUN=$2; shift ;;
	-h | --help) sed -n '2,16p' "$0"; exit 0 ;;
	-*) die "unknown option $1" ;;
	*) SERVERS+=("$1") ;;
	esac
	shift
done
[ ${#SERVERS[@]} -gt 0 ] || SERVERS=(upgate ceiling gnetws)
command -v perf >/dev/null 2>&1 || die "needs perf (Debian: apt-get install linux-perf)"

CALLS="accept4 epoll_pwait epoll_wait epoll_ctl read write writev close shutdown
getsockopt setsockopt fcntl futex nanosleep sched_yield getpid tgkill
rt_sigreturn mmap munmap madvise"

BIN=$(mktemp -d "${TMPDIR:-/tmp}/upgate-syscalls.XXXXXX")
SRV_PID=""
PERF_PID=""
cleanup() {
	stop_pids 10 "$PERF_PID" "$SRV_PID"
	rm -rf "$BIN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
pin_cpus

echo "==> build" >&2
go build -o "$BIN/upgate" ./cmd/upgate
(cd bench && go build -o "$BIN/" ./cmd/upgate-bench)
for s in "${SERVERS[@]}"; do
	[ "$s" = upgate ] || (cd bench && go build -o "$BIN/peer-$s" "./peers/$s") || die "no server $s"
done

events=()
for c in $CALLS; do
	if perf list "syscalls:sys_enter_$c" 2>/dev/null | grep -q "sys_enter_$c"; then
		events+=(-e "syscalls:sys_enter_$c")
	fi
done

declare -A per
for s in "${SERVERS[@]}"; do
	next_port
	addr=127.0.0.1:$PORT
	verify=()
	if [ "$s" = upgate ]; then
		cmd=("$BIN/upgate" --listen "$addr" --admin off --loops 1 --log-level error)
	else
		cmd=("$BIN/peer-$s" -addr "$addr")
		# The ceiling answers a canned Sec-WebSocket-Accept.
		[ "$s" = ceiling ] && verify=(-verify-accept=false)
	fi
	GOMAXPROCS=1 ${SERVER_CPU[@]+"${SERVER_CPU[@]}"} "${cmd[@]}" >"$BIN/$s.log" 2>&1 &
	SRV_PID=$!
	await_listen "$PORT" || die "$s is not listening on $addr"
	perf stat -x, "${events[@]}" -p "$SRV_PID" -o "$BIN/$s.perf" &
	PERF_PID=$!
	sleep 0.5
	${CLIENT_CPU[@]+"${CLIENT_CPU[@]}"} "$BIN/upgate-bench" -addr "$addr" -d "${SECONDS_RUN}s" -warmup 0s \
		-rate "$RATE" -progress=false ${verify[@]+"${verify[@]}"} -out "$BIN/$s.json" latency >/dev/null
	kill -INT "$PERF_PID"
	wait "$PERF_PID" 2>/dev/null || true
	PERF_PID=""
	stop_pids 30 "$SRV_PID"
	SRV_PID=""
	n=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["handshakes"]) if not r["failed"] else sys.exit("failed handshakes: %d" % r["failed"])' "$BIN/$s.json")
	[ "$n" -gt 0 ] || die "$s: no handshake completed"
	while IFS=, read -r count _ event _; do
		case $count in '' | *[!0-9]*) continue ;; esac
		per[$s,${event#syscalls:sys_enter_}]=$(awk -v c="$count" -v n="$n" 'BEGIN { printf "%.2f", c / n }')
	done <"$BIN/$s.perf"
	per[$s,handshakes]=$n
done

printf '\nSystem calls per handshake, %s handshakes/s for %ss (commit %s)\n\n' "$RATE" "$SECONDS_RUN" "$(commit_desc)"
printf '| call |'
for s in "${SERVERS[@]}"; do printf ' %s |' "$s"; done
printf '\n|---|'
for s in "${SERVERS[@]}"; do printf -- '---|'; done
printf '\n'
for c in $CALLS; do
	line="| \`$c\` |" any=0
	for s in "${SERVERS[@]}"; do
		v=${per[$s,$c]:-0.00}
		[ "$v" = 0.00 ] || any=1
		line+=" $v |"
	done
	[ $any = 1 ] && echo "$line"
done
line="| handshakes counted |"
for s in "${SERVERS[@]}"; do line+=" ${per[$s,handshakes]} |"; done
echo "$line"
