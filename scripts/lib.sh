# Helpers shared by scripts/bench.sh and scripts/soak.sh: processes, ports,
# CPU pinning and the facts of the machine. Source it with the script's name,
# which its messages start with:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh" bench.sh
#
# Sourcing it moves to the repository root (ROOT) and puts Go on PATH.

SCRIPT=${1:?lib.sh: source it with the name of the script}

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	PATH="/usr/local/go/bin:$PATH"
fi

# die MESSAGE...: print "SCRIPT: MESSAGE" on stderr and exit 1.
die() {
	echo "$SCRIPT: $*" >&2
	exit 1
}

# stop_pids TENTHS PID...: SIGTERM every PID, give each TENTHS tenths of a
# second to exit, then SIGKILL and reap it. Empty PIDs are skipped.
stop_pids() {
	local tenths=$1 pid i
	shift
	for pid in "$@"; do
		if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; fi
	done
	for pid in "$@"; do
		[ -n "$pid" ] || continue
		for i in $(seq "$tenths"); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
}

# pin_cpus: set SERVER_CPU and CLIENT_CPU, the commands that put the server
# on CPU 0 and the client on CPU 1; both empty, with a warning, when there is
# no taskset or fewer than 2 CPUs.
pin_cpus() {
	SERVER_CPU=(taskset -c 0)
	CLIENT_CPU=(taskset -c 1)
	if ! command -v taskset >/dev/null 2>&1 || [ "$(nproc)" -lt 2 ]; then
		echo "$SCRIPT: WARNING: no taskset or fewer than 2 CPUs: server and client are not pinned" >&2
		SERVER_CPU=() CLIENT_CPU=()
	fi
}

# Ports below the ephemeral range (32768 on), so that no client socket of
# another program holds them.
PORT=$((10000 + RANDOM % 20000))
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# next_port: set PORT to the next port nobody listens on.
next_port() {
	PORT=$((PORT + 1))
	while port_open "$PORT"; do PORT=$((PORT + 1)); done
}

# await_listen PORT...: wait up to 20 s for the server SRV_PID to listen on
# every PORT. Returns 0 once it does; 1 when the server exited (it is reaped
# and SRV_PID cleared); 2 when it still does not listen after 20 s.
await_listen() {
	local i port up
	for i in $(seq 400); do
		if ! kill -0 "$SRV_PID" 2>/dev/null; then
			wait "$SRV_PID" 2>/dev/null || true
			SRV_PID=""
			return 1
		fi
		up=1
		for port in "$@"; do
			port_open "$port" || { up=0; break; }
		done
		[ $up = 1 ] && return 0
		sleep 0.05
	done
	return 2
}

# commit_desc: the short commit checked out, and whether it has local changes.
commit_desc() {
	echo "$(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- 2>/dev/null || echo ' (with local changes)')"
}

# cpu_desc: the number of CPUs and their model.
cpu_desc() {
	echo "$(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
}

# load_desc: the load averages now.
load_desc() {
	echo "$(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min, at start)"
}
